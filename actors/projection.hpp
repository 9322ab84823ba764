// Projection actors: each runs detached (its own thread and PostgreSQL connection), folds the
// journal into read models from its checkpoint (persistence/read_models.hpp), then waits on
// LISTEN until the journal grows. Its progress goes to a projection_monitor, which any thread
// may read or wait on. No CAF headers here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "persistence/read_models.hpp"

namespace caf {
class actor;
class actor_system;
}  // namespace caf

namespace saga::actors {

struct projection_options {
  persistence::projector_options projector;
  /// Longest wait for a journal notification before looking again; also bounds how long an
  /// exit message waits and how late a missed notification is noticed.
  std::chrono::milliseconds idle_wait{std::chrono::milliseconds(150)};
  /// Batches run back to back for at most this long before the mailbox (exit) is looked at.
  std::chrono::milliseconds max_drain{std::chrono::milliseconds(200)};
  /// After a batch that applied events but did not fill up, the next one starts this much
  /// later, so that under load one batch takes several events of each stream (a saga's whole
  /// run, say) and writes its row once instead of once per event. An idle projection still
  /// applies the first new event at once. 0 = read again right away.
  std::chrono::milliseconds batch_interval{std::chrono::milliseconds(100)};
  /// Delay after a failed batch; doubled per consecutive failure up to max_retry_backoff.
  std::chrono::milliseconds retry_backoff{std::chrono::milliseconds(100)};
  std::chrono::milliseconds max_retry_backoff{std::chrono::seconds(10)};
};

/// What a projection is doing, for status pages, metrics and tests.
struct projection_status {
  std::string name;
  bool running = false;         ///< the actor is alive
  bool busy = false;            ///< another instance (e.g. on another node) holds the checkpoint
  std::int64_t checkpoint = 0;  ///< every event at or below it is in the views
  std::int64_t lag = 0;       ///< journal head - checkpoint (positions; filled in by the read side)
  std::uint64_t batches = 0;  ///< committed batches since start
  std::uint64_t events_applied = 0;        ///< since start
  std::uint64_t failures = 0;              ///< failed batches since start
  std::uint64_t consecutive_failures = 0;  ///< of the current streak (0 = healthy)
  std::string last_error;       ///< message of the current streak's latest failure ("" = healthy)
  std::string last_error_code;  ///< "retryable", "undecodable" or "internal"
  std::int64_t error_position = 0;  ///< journal position of the offending event, if any
};

/// Shared between a projection actor (writes) and any number of readers. Thread-safe.
class projection_monitor {
 public:
  explicit projection_monitor(std::string name);

  /// The actor started (running) or stopped for good.
  void started();
  void stopped();
  /// A batch committed (or found the checkpoint busy): the checkpoint it reported.
  void batch_done(const persistence::batch_result& result);
  void batch_failed(const persistence::projection_error& error);

  [[nodiscard]] projection_status status() const;
  /// Blocks until the checkpoint reaches `position`, the projection stops, or `deadline`;
  /// true when the checkpoint is at or past `position`. Never call from a CAF scheduler thread.
  bool wait_for(std::int64_t position, std::chrono::steady_clock::time_point deadline) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  projection_status status_;
  bool stopped_ = false;  ///< stopped for good (unlike !running, which also holds before start)
};

/// Spawns a detached projection actor that runs until it receives an exit message (or the
/// system shuts down). It never crashes on a failed batch: it logs, reports to `monitor` and
/// retries with backoff. Send it an exit message and wait for it before destroying the system.
[[nodiscard]] caf::actor spawn_projection(caf::actor_system& system, projection_options options,
                                          std::shared_ptr<projection_monitor> monitor);

}  // namespace saga::actors

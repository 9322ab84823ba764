// PostgreSQL `event_store`: the journal tables of persistence/migrations. One connection per
// instance, opened lazily and re-opened after a failure. NOT thread-safe: an instance is owned by
// one thread (a journal writer thread or a detached actor); never use it from CAF worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "persistence/event_store.hpp"

namespace saga::persistence {

struct pg_store_options {
  std::string database_url;
  /// Schema holding the journal tables; empty = the connection's default search_path.
  std::string schema;
  std::string application_name = "saga-journal";
  /// How many streams' last known versions this store remembers (see the class comment).
  std::size_t known_versions_capacity = 100'000;
  /// Fault-injection hook for tests: called inside an appending transaction after its rows
  /// are written, before COMMIT is sent (the journal lock is held while it runs). Setting it
  /// costs a round trip per batch: the rows and COMMIT then go in separate query strings.
  std::function<void()> before_commit;
};

/// The PostgreSQL journal.
///
/// A batch is one transaction, sent as one simple-protocol query string when this store can
/// vouch for every request: BEGIN, `journal_append` (the journal lock, then one INSERT of the
/// batch's events from a JSON array, with a plan cached per session), COMMIT and reading the
/// last position drawn — one round trip whatever the batch size. The UNIQUE (stream_id,
/// version) and UNIQUE (event_id) indexes are the fence; `journal_check` looks up a stream's
/// version only when this store cannot vouch for the expected one (it can for a new stream, and
/// for the version it last committed or saw under the lock, since events are never deleted: no
/// gap is possible, and a stream moved on by someone else makes the insert fail). A round with
/// such requests costs one more round trip (its check's answer decides what is inserted). If
/// the insert hits an index, the transaction is redone with every request checked, which
/// classifies each one (conflict, idempotent duplicate, reused id). Measured here, this costs
/// far less per batch than a single INSERT … SELECT statement checking every stream.
///
/// Positions are commit-ordered because every appending transaction takes a transaction-scoped
/// advisory lock before drawing positions and holds it through COMMIT: a position is only
/// handed out once every transaction holding a smaller one has committed, so a reader that sees
/// position p will never later see a new event below p. (Alternatives: a sequence alone lets a
/// smaller position commit after a larger one; reading only below the oldest running
/// transaction's xmin needs an xid column and makes every reader lag.) The lock makes appenders
/// take turns, which is what group commit wants anyway: few writers, big batches. Writing to
/// `events` by any other path breaks the guarantee.
class pg_event_store final : public event_store {
 public:
  explicit pg_event_store(pg_store_options options);
  explicit pg_event_store(const std::string& database_url);
  ~pg_event_store() override;
  pg_event_store(const pg_event_store&) = delete;
  pg_event_store& operator=(const pg_event_store&) = delete;

  std::vector<append_result> append_batch(const std::vector<append_request>& requests) override;
  std::vector<append_result> append_checked_batch(
      const std::vector<append_request>& requests) override;
  expected<std::vector<recorded_event>, store_error> read_stream(
      const std::string& stream_id, std::int64_t from_version = 1,
      std::size_t limit = std::numeric_limits<std::size_t>::max()) override;
  expected<std::vector<recorded_event>, store_error> read_all(std::int64_t after_position,
                                                              std::size_t limit) override;
  expected<bool, store_error> save_snapshot(const snapshot& snap) override;
  expected<std::optional<snapshot>, store_error> load_snapshot(
      const std::string& stream_id) override;
  expected<std::vector<stream_head>, store_error> stream_heads(
      const std::string& stream_type, const std::vector<std::string>& last_event_types) override;

  /// Connects now if not connected (otherwise the next call does).
  expected<done, store_error> connect();
  /// The server process id of the current connection (connecting if needed); for fault tests.
  expected<int, store_error> backend_pid();
  /// Statements sent to the server so far, each one round trip (connection set-up included).
  [[nodiscard]] std::uint64_t round_trips() const noexcept;
  /// Connections opened so far.
  [[nodiscard]] std::uint64_t connections_opened() const noexcept;

 private:
  /// append_batch; `checked`: the requests passed validate_and_normalize already.
  std::vector<append_result> write_requests(const std::vector<append_request>& requests,
                                            bool checked);
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::persistence

// The read side facade: starts the projection actor(s) that keep orders_view, payments_view,
// inventory_view and sagas_view up to date, and detached query actors (one PostgreSQL connection
// each) that answer queries on them and on the journal. No CAF headers here. Thread-safe: any
// thread may query; wait_* block the caller, so never call them from a CAF scheduler thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/projection.hpp"
#include "domain/expected.hpp"
#include "persistence/event_store.hpp"
#include "persistence/read_models.hpp"

namespace caf {
class actor_system;
}

namespace saga::actors {

struct read_side_options {
  std::string database_url;
  /// Schema of the journal and the views; empty = the connection's default search_path.
  std::string schema;
  /// Checkpoint name of the projection (with projection_per_view: the prefix, e.g.
  /// "read_models.orders"). Nodes running the same name take turns instead of both writing.
  std::string projection_name = "read_models";
  /// One projection (thread, connection, checkpoint) per view instead of one for all four.
  bool projection_per_view = false;
  std::size_t batch_size = 2000;  ///< journal events per projection transaction
  std::chrono::milliseconds idle_wait{std::chrono::milliseconds(150)};
  std::chrono::milliseconds max_drain{std::chrono::milliseconds(200)};
  /// See projection_options::batch_interval.
  std::chrono::milliseconds batch_interval{std::chrono::milliseconds(100)};
  std::chrono::milliseconds retry_backoff{std::chrono::milliseconds(100)};
  std::chrono::milliseconds max_retry_backoff{std::chrono::seconds(10)};
  /// Detached query actors (connections); queries are spread over them round-robin.
  std::size_t query_actors = 2;
  /// How long a query may take before its future holds a `timeout` error.
  std::chrono::milliseconds query_timeout{std::chrono::seconds(5)};
  /// How long the destructor waits for the actors to stop.
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(5)};
};

enum class query_errc {
  invalid_argument,  ///< bad input (empty or oversized id, negative offset): a 4xx
  timeout,           ///< no answer within query_timeout
  unavailable,       ///< the database or the query actor is (temporarily) unreachable
  internal,          ///< a bug or a broken database (e.g. a corrupt view row)
};
[[nodiscard]] std::string_view to_string(query_errc code) noexcept;

struct query_error {
  query_errc code = query_errc::internal;
  std::string message;
};

template <class T>
using query_result = expected<T, query_error>;

/// The projections' progress against the journal.
struct read_side_status {
  std::int64_t journal_head = 0;
  /// One per projection; `checkpoint` is the stored one and `lag` = head - checkpoint.
  std::vector<projection_status> projections;
};

class read_side {
 public:
  /// Spawns the projection actor(s) and the query actors on `system`, which must outlive this
  /// object. Connections are opened by the actors, so a database that is down shows up in
  /// status() and query errors, not here.
  read_side(caf::actor_system& system, read_side_options options);
  /// Stops every actor and waits for them (up to stop_timeout). Destroy it before the actor
  /// system (e.g. before the runtime that owns it), never on a CAF scheduler thread.
  ~read_side();
  read_side(const read_side&) = delete;
  read_side& operator=(const read_side&) = delete;

  // Every future below is always satisfied: errors (invalid input, timeout, database down) are
  // values. List limits are clamped to 1..persistence::max_query_limit.

  std::future<query_result<std::optional<persistence::order_view>>> order(
      const std::string& order_id);
  /// Newest first.
  std::future<query_result<std::vector<persistence::order_view>>> orders_by_customer(
      const std::string& customer_id, int limit = 50, int offset = 0);
  std::future<query_result<std::optional<persistence::payment_view>>> payment_by_order(
      const std::string& order_id);
  std::future<query_result<std::optional<persistence::inventory_view>>> product(
      const std::string& product_id);
  /// By product id.
  std::future<query_result<std::vector<persistence::inventory_view>>> products(int limit = 100,
                                                                               int offset = 0);
  std::future<query_result<std::optional<persistence::saga_view>>> saga(const std::string& saga_id);
  /// The newest saga of a correlation id.
  std::future<query_result<std::optional<persistence::saga_view>>> saga_by_correlation(
      const std::string& correlation_id);
  /// RUNNING and COMPENSATING sagas, oldest first.
  std::future<query_result<std::vector<persistence::saga_view>>> active_sagas(int limit = 100,
                                                                              int offset = 0);
  /// FAILED sagas (waiting for an operator), oldest first.
  std::future<query_result<std::vector<persistence::saga_view>>> failed_sagas(int limit = 100,
                                                                              int offset = 0);
  /// A correlation id's journal events in position order.
  std::future<query_result<std::vector<persistence::recorded_event>>> events_by_correlation(
      const std::string& correlation_id, int limit = persistence::max_query_limit);
  /// Checkpoints (stored), journal head, lag and each projection's health.
  std::future<query_result<read_side_status>> status();

  /// Journal events with a position above `after_position`, in position order (the feed of
  /// GET /trace/events and its live stream).
  std::future<query_result<std::vector<persistence::recorded_event>>> events_after(
      std::int64_t after_position, int limit = persistence::max_query_limit);

  // ---- callback forms (for the HTTP front: nothing waits) ----
  // Same queries; `done` is called exactly once, on a CAF thread (or at once on the caller's
  // thread for invalid input). It must be quick and must not block.
  template <class T>
  using callback = std::function<void(query_result<T>)>;

  void order(const std::string& order_id, callback<std::optional<persistence::order_view>> done);
  void orders_by_customer(const std::string& customer_id, int limit, int offset,
                          callback<std::vector<persistence::order_view>> done);
  void payment_by_order(const std::string& order_id,
                        callback<std::optional<persistence::payment_view>> done);
  void product(const std::string& product_id,
               callback<std::optional<persistence::inventory_view>> done);
  void products(int limit, int offset, callback<std::vector<persistence::inventory_view>> done);
  void saga(const std::string& saga_id, callback<std::optional<persistence::saga_view>> done);
  void saga_by_correlation(const std::string& correlation_id,
                           callback<std::optional<persistence::saga_view>> done);
  void active_sagas(int limit, int offset, callback<std::vector<persistence::saga_view>> done);
  void failed_sagas(int limit, int offset, callback<std::vector<persistence::saga_view>> done);
  void events_by_correlation(const std::string& correlation_id, int limit,
                             callback<std::vector<persistence::recorded_event>> done);
  void events_after(std::int64_t after_position, int limit,
                    callback<std::vector<persistence::recorded_event>> done);
  void status(callback<read_side_status> done);

  /// Blocks until every projection's checkpoint is at or past `position` (true), or `timeout`
  /// passes or a projection stopped (false). For tests and benchmarks.
  bool wait_caught_up(std::int64_t position, std::chrono::milliseconds timeout);
  /// Reads the journal head, then waits as wait_caught_up does, all within `timeout`.
  bool wait_caught_up_to_head(std::chrono::milliseconds timeout);

  /// The projections' health from memory (no database access; checkpoints as last reported).
  [[nodiscard]] std::vector<projection_status> projection_health() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::actors

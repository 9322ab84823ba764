// Read models: the projector that folds the journal into orders_view, payments_view,
// inventory_view and sagas_view (persistence/migrations/0004_read_models.sql), and the queries
// that read them. Plain view structs, no libpqxx here. Each projector or query object owns one
// PostgreSQL connection and is NOT thread-safe: one thread (a detached actor) owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/expected.hpp"
#include "domain/order.hpp"
#include "domain/saga.hpp"
#include "domain/types.hpp"
#include "persistence/event_store.hpp"

namespace saga::persistence {

// ---- views ----

struct order_view {
  std::string order_id;
  std::string customer_id;
  std::vector<domain::order::line_item> items;
  std::int64_t total = 0;
  std::string status;  ///< "PENDING", "CONFIRMED" or "CANCELLED"
  std::string shipping_address;
  std::string correlation_id;
  std::string saga_id;
  std::string failure_reason;
  domain::timestamp created_at = 0;
  domain::timestamp updated_at = 0;
  std::int64_t version = 0;
};

struct payment_view {
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  std::int64_t amount = 0;
  std::string status;  ///< "PROCESSED", "FAILED" or "REFUNDED"
  std::string transaction_id;
  std::string failure_reason;
  std::string refund_transaction_id;
  std::string refund_reason;
  std::string correlation_id;  ///< of the event that created the payment
  domain::timestamp created_at = 0;
  domain::timestamp updated_at = 0;
  std::int64_t version = 0;
};

struct inventory_view {
  std::string product_id;
  std::string name;
  std::int64_t price = 0;
  std::int64_t available = 0;  ///< can be reserved now
  std::int64_t reserved = 0;   ///< held by orders
  domain::timestamp updated_at = 0;
  std::int64_t version = 0;
};

struct saga_step_view {
  std::string name;
  std::string status;  ///< domain step status: "PENDING", "RUNNING", "SUCCEEDED", …
};

struct saga_view {
  std::string saga_id;
  std::string saga_type;
  std::string correlation_id;
  std::string order_id;
  std::string status;        ///< "RUNNING", "COMPLETED", "COMPENSATING", "COMPENSATED", "FAILED"
  std::string current_step;  ///< a step name, "on_compensated", or "" before the first step
  std::vector<saga_step_view> steps;
  std::string failure_reason;
  std::string compensation_reason;
  domain::timestamp started_at = 0;
  domain::timestamp updated_at = 0;
  std::int64_t version = 0;
};

/// The sagas_view row of a saga in this state (what the projection writes for it).
[[nodiscard]] saga_view saga_view_of(const domain::sagas::state& s);

/// A projection's stored progress.
struct projection_checkpoint {
  std::string name;
  std::int64_t position = 0;  ///< every event at or below it has been applied
  std::int64_t updated_at_ms = 0;
};

// ---- which views a projector maintains ----

enum class read_model : unsigned { orders = 1, payments = 2, inventory = 4, sagas = 8 };
/// A set of read models (bit per read_model).
using read_model_set = unsigned;
inline constexpr read_model_set all_read_models = 15;
[[nodiscard]] constexpr read_model_set set_of(read_model m) noexcept {
  return static_cast<read_model_set>(m);
}
[[nodiscard]] constexpr bool contains(read_model_set s, read_model m) noexcept {
  return (s & set_of(m)) != 0;
}
/// "orders", "payments", "inventory", "sagas".
[[nodiscard]] std::string_view to_string(read_model m) noexcept;
/// The journal stream type that feeds `m` ("order", "payment", "inventory", "saga").
[[nodiscard]] std::string_view stream_type_of(read_model m) noexcept;

// ---- projector ----

struct projector_options {
  std::string database_url;
  /// Schema holding the journal and the views; empty = the connection's default search_path.
  std::string schema;
  /// The checkpoint row; projectors with the same name take turns (see run_batch).
  std::string name = "read_models";
  read_model_set models = all_read_models;
  /// Journal rows read and applied per transaction (clamped to 1..10,000).
  std::size_t batch_size = 2000;
  std::string application_name = "saga-projection";
  /// Fault-injection hook for tests: called inside a batch's transaction after the views are
  /// written, before the checkpoint is updated and the transaction commits.
  std::function<void()> before_commit;
};

enum class projection_errc {
  retryable,    ///< connection lost, serialization failure…: the batch was rolled back
  undecodable,  ///< an event's payload cannot be decoded: a bug or corrupt data; stops here
  internal,     ///< a broken invariant (version gap, schema missing, unexpected SQL error)
};
[[nodiscard]] std::string_view to_string(projection_errc code) noexcept;

struct projection_error {
  projection_errc code = projection_errc::internal;
  std::string message;
  std::int64_t position = 0;  ///< journal position of the offending event (0 = none)
};

/// What one run_batch did.
struct batch_result {
  std::int64_t checkpoint = 0;     ///< the stored checkpoint afterwards
  std::size_t events_read = 0;     ///< journal rows consumed (skipped stream types included)
  std::size_t events_applied = 0;  ///< of those, folded into a view
  bool full = false;               ///< a whole batch was read: more events may be waiting
  bool busy = false;  ///< another projector of the same name holds the checkpoint; nothing done
};

/// Folds the journal into the views of `options.models`.
///
/// A batch is one transaction: lock the checkpoint row (FOR UPDATE SKIP LOCKED, so a second
/// projector of the same name on another node idles instead of queueing), read up to
/// batch_size events after it in position order, decode them (domain codecs; 'user' and unknown
/// stream types are skipped on purpose), group them by stream, load the rows of streams already
/// in a view with one query per view, fold in memory with the domain's evolve, write each view
/// with one multi-row upsert, and store the last position read as the checkpoint. About a dozen
/// round trips whatever the batch size. The checkpoint commits with the views, so after a crash
/// or restart the next batch starts exactly where the last committed one ended: no gap (journal
/// positions are commit-ordered), no double apply (rows also carry their stream version, and an
/// event at or below it is never applied again).
///
/// An undecodable event or a version gap fails the batch (rolled back) and every later one until
/// the cause is fixed: the projection stops there rather than skipping silently.
class read_model_projector {
 public:
  explicit read_model_projector(projector_options options);
  ~read_model_projector();
  read_model_projector(const read_model_projector&) = delete;
  read_model_projector& operator=(const read_model_projector&) = delete;

  /// Connects now if not connected, starts listening for journal notifications and creates the
  /// checkpoint row (at 0) if missing.
  expected<done, projection_error> connect();
  /// Applies the next batch (connecting if needed).
  expected<batch_result, projection_error> run_batch();
  /// The stored checkpoint (connecting if needed).
  expected<std::int64_t, projection_error> checkpoint();
  /// Waits up to `timeout` for a journal notification; true if one came. Notifications that
  /// arrived since the last call (e.g. during a batch) count at once, so none is missed.
  expected<bool, projection_error> wait_for_journal(std::chrono::milliseconds timeout);

  [[nodiscard]] const projector_options& options() const noexcept;
  /// Statements sent so far, each one round trip (connection set-up included).
  [[nodiscard]] std::uint64_t round_trips() const noexcept;
  /// Connections opened so far.
  [[nodiscard]] std::uint64_t connections_opened() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// ---- queries ----

/// Page size limits of every list query.
inline constexpr int max_query_limit = 500;
/// Largest accepted id, correlation id or projection name, in bytes.
inline constexpr std::size_t max_query_id_bytes = max_stream_id_bytes;

/// `limit` clamped to 1..max_query_limit.
[[nodiscard]] int clamp_query_limit(int limit) noexcept;
/// Why `id` is not a valid lookup key (empty, over max_query_id_bytes, contains NUL), naming it
/// `what`; nullopt when valid.
[[nodiscard]] std::optional<std::string> query_id_error(std::string_view what,
                                                        const std::string& id);

enum class saga_filter {
  active,  ///< RUNNING or COMPENSATING
  failed,  ///< FAILED: waiting for an operator
};

struct query_options {
  std::string database_url;
  std::string schema;  ///< empty = the connection's default search_path
  std::string application_name = "saga-read-models";
  /// Server-side limit per statement, so a stuck query cannot hold its owner for ever (0 = none).
  std::chrono::milliseconds statement_timeout{std::chrono::seconds(10)};
};

/// Reads the views and the journal. Invalid input (see query_id_error; a negative offset) is an
/// `invalid_request` error before any I/O; list limits are clamped with clamp_query_limit.
class read_model_queries {
 public:
  explicit read_model_queries(query_options options);
  ~read_model_queries();
  read_model_queries(const read_model_queries&) = delete;
  read_model_queries& operator=(const read_model_queries&) = delete;

  expected<std::optional<order_view>, store_error> order(const std::string& order_id);
  /// A customer's orders, newest first (created_at, then order id, descending).
  expected<std::vector<order_view>, store_error> orders_by_customer(const std::string& customer_id,
                                                                    int limit, int offset);
  expected<std::optional<payment_view>, store_error> payment_by_order(const std::string& order_id);
  expected<std::optional<inventory_view>, store_error> product(const std::string& product_id);
  /// Every product, by product id.
  expected<std::vector<inventory_view>, store_error> products(int limit, int offset);
  expected<std::optional<saga_view>, store_error> saga(const std::string& saga_id);
  /// The newest saga (by started_at) of a correlation id.
  expected<std::optional<saga_view>, store_error> saga_by_correlation(
      const std::string& correlation_id);
  /// Sagas in `filter`'s statuses, oldest first (started_at, then saga id).
  expected<std::vector<saga_view>, store_error> sagas(saga_filter filter, int limit, int offset);
  /// A correlation id's journal events in position order (at most `limit`, clamped).
  expected<std::vector<recorded_event>, store_error> events_by_correlation(
      const std::string& correlation_id, int limit);
  /// Journal events above `after_position` in position order (at most `limit`, clamped).
  /// Positions are commit-ordered (one writer under the journal lock), so a reader that keeps
  /// the last position it saw never skips an event.
  expected<std::vector<recorded_event>, store_error> events_after(std::int64_t after_position,
                                                                  int limit);
  /// Stored checkpoints of the named projections (missing names are left out).
  expected<std::vector<projection_checkpoint>, store_error> checkpoints(
      const std::vector<std::string>& names);
  /// The journal's highest position (0 when empty).
  expected<std::int64_t, store_error> journal_head();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::persistence

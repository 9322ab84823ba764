#include "persistence/read_models.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include <pqxx/pqxx>

#include "domain/aggregate_codec.hpp"
#include "domain/saga.hpp"
#include "domain/saga_codec.hpp"
#include "persistence/pg_error.hpp"
#include "persistence/pg_rows.hpp"

namespace saga::persistence {

namespace dom = saga::domain;

namespace {

constexpr const char* journal_channel = "saga_journal";
constexpr std::size_t max_batch_size = 10'000;

// ---- SQL ----

constexpr const char* ensure_checkpoint_stmt = "rm_ensure_checkpoint";
constexpr const char* ensure_checkpoint_sql =
    "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";

// SKIP LOCKED: a second projector of the same name (another node) finds nothing and idles
// instead of queueing behind the first one's transactions.
constexpr const char* lock_checkpoint_stmt = "rm_lock_checkpoint";
constexpr const char* lock_checkpoint_sql =
    "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED";

constexpr const char* read_checkpoint_stmt = "rm_read_checkpoint";
constexpr const char* read_checkpoint_sql =
    "SELECT position FROM projection_checkpoints WHERE name = $1";

constexpr const char* store_checkpoint_stmt = "rm_store_checkpoint";
constexpr const char* store_checkpoint_sql =
    "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1";

// Payloads only of the stream types this projector folds: the others only move the checkpoint.
constexpr const char* read_journal_stmt = "rm_read_journal";
constexpr const char* read_journal_sql =
    "SELECT position, stream_id, stream_type, version, event_type, schema_version, "
    "CASE WHEN stream_type = ANY($3::text[]) THEN payload::text END, "
    "coalesce(correlation_id, '') "
    "FROM events WHERE position > $1 ORDER BY position LIMIT $2";

constexpr const char* load_orders_stmt = "rm_load_orders";
constexpr const char* load_orders_sql =
    "SELECT stream_id, position, state::text FROM orders_view WHERE stream_id = ANY($1::text[])";

constexpr const char* upsert_orders_stmt = "rm_upsert_orders";
constexpr const char* upsert_orders_sql =
    "INSERT INTO orders_view AS v (stream_id, order_id, customer_id, status, total, "
    "correlation_id, saga_id, created_at, updated_at, version, position, state) "
    "SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, r->>5, r->>6, (r->>7)::bigint, "
    "(r->>8)::bigint, (r->>9)::bigint, (r->>10)::bigint, r->11 "
    "FROM jsonb_array_elements($1::jsonb) AS x(r) "
    "ON CONFLICT (stream_id) DO UPDATE SET order_id = EXCLUDED.order_id, "
    "customer_id = EXCLUDED.customer_id, status = EXCLUDED.status, total = EXCLUDED.total, "
    "correlation_id = EXCLUDED.correlation_id, saga_id = EXCLUDED.saga_id, "
    "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, "
    "version = EXCLUDED.version, position = EXCLUDED.position, state = EXCLUDED.state "
    "WHERE v.version < EXCLUDED.version";

constexpr const char* load_payments_stmt = "rm_load_payments";
constexpr const char* load_payments_sql =
    "SELECT stream_id, position, payment_id, order_id, customer_id, amount, status, "
    "transaction_id, failure_reason, refund_transaction_id, refund_reason, correlation_id, "
    "created_at, updated_at, version FROM payments_view WHERE stream_id = ANY($1::text[])";

constexpr const char* upsert_payments_stmt = "rm_upsert_payments";
constexpr const char* upsert_payments_sql =
    "INSERT INTO payments_view AS v (stream_id, payment_id, order_id, customer_id, amount, "
    "status, transaction_id, failure_reason, refund_transaction_id, refund_reason, "
    "correlation_id, created_at, updated_at, version, position) "
    "SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, r->>5, r->>6, r->>7, r->>8, r->>9, "
    "r->>10, (r->>11)::bigint, (r->>12)::bigint, (r->>13)::bigint, (r->>14)::bigint "
    "FROM jsonb_array_elements($1::jsonb) AS x(r) "
    "ON CONFLICT (stream_id) DO UPDATE SET payment_id = EXCLUDED.payment_id, "
    "order_id = EXCLUDED.order_id, customer_id = EXCLUDED.customer_id, "
    "amount = EXCLUDED.amount, status = EXCLUDED.status, "
    "transaction_id = EXCLUDED.transaction_id, failure_reason = EXCLUDED.failure_reason, "
    "refund_transaction_id = EXCLUDED.refund_transaction_id, "
    "refund_reason = EXCLUDED.refund_reason, correlation_id = EXCLUDED.correlation_id, "
    "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, "
    "version = EXCLUDED.version, position = EXCLUDED.position "
    "WHERE v.version < EXCLUDED.version";

constexpr const char* load_inventory_stmt = "rm_load_inventory";
constexpr const char* load_inventory_sql =
    "SELECT stream_id, position, product_id, name, price, available, reserved, updated_at, "
    "version FROM inventory_view WHERE stream_id = ANY($1::text[])";

constexpr const char* upsert_inventory_stmt = "rm_upsert_inventory";
constexpr const char* upsert_inventory_sql =
    "INSERT INTO inventory_view AS v (stream_id, product_id, name, price, available, reserved, "
    "updated_at, version, position) "
    "SELECT r->>0, r->>1, r->>2, (r->>3)::bigint, (r->>4)::bigint, (r->>5)::bigint, "
    "(r->>6)::bigint, (r->>7)::bigint, (r->>8)::bigint "
    "FROM jsonb_array_elements($1::jsonb) AS x(r) "
    "ON CONFLICT (stream_id) DO UPDATE SET product_id = EXCLUDED.product_id, "
    "name = EXCLUDED.name, price = EXCLUDED.price, available = EXCLUDED.available, "
    "reserved = EXCLUDED.reserved, updated_at = EXCLUDED.updated_at, "
    "version = EXCLUDED.version, position = EXCLUDED.position "
    "WHERE v.version < EXCLUDED.version";

constexpr const char* load_sagas_stmt = "rm_load_sagas";
constexpr const char* load_sagas_sql =
    "SELECT stream_id, position, state::text FROM sagas_view WHERE stream_id = ANY($1::text[])";

constexpr const char* upsert_sagas_stmt = "rm_upsert_sagas";
constexpr const char* upsert_sagas_sql =
    "INSERT INTO sagas_view AS v (stream_id, saga_id, saga_type, correlation_id, order_id, "
    "status, started_at, updated_at, version, position, state) "
    "SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::bigint, (r->>7)::bigint, "
    "(r->>8)::bigint, (r->>9)::bigint, r->10 "
    "FROM jsonb_array_elements($1::jsonb) AS x(r) "
    "ON CONFLICT (stream_id) DO UPDATE SET saga_id = EXCLUDED.saga_id, "
    "saga_type = EXCLUDED.saga_type, correlation_id = EXCLUDED.correlation_id, "
    "order_id = EXCLUDED.order_id, status = EXCLUDED.status, "
    "started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at, "
    "version = EXCLUDED.version, position = EXCLUDED.position, state = EXCLUDED.state "
    "WHERE v.version < EXCLUDED.version";

// ---- helpers ----

/// Builds a batch of view rows as one JSON array of arrays (one per row, its columns in order),
/// the single parameter of an upsert that reads it with jsonb_array_elements. A row's state,
/// already JSON, is spliced in as it is, so PostgreSQL parses it once; as array literals (the
/// earlier form) every state was scanned by array_in and then parsed again as jsonb.
class json_rows {
 public:
  void text(std::size_t column, const std::string& value) {
    open(column);
    append_json_string(out_, value);
  }
  void text(std::size_t column, std::string_view value) { text(column, std::string(value)); }
  void number(std::size_t column, std::int64_t value) {
    open(column);
    out_ += std::to_string(value);
  }
  /// `value` is one JSON value (the domain codec's encoding of a state).
  void json(std::size_t column, const std::string& value) {
    open(column);
    out_ += value;
  }

  std::string finish() && {
    out_ += rows_ > 0 ? "]]" : "[]";
    return std::move(out_);
  }

 private:
  // Columns come in order, each row starting at column 0.
  void open(std::size_t column) {
    if (column == 0) {
      out_ += rows_++ == 0 ? "[[" : "],[";
    } else {
      out_.push_back(',');
    }
  }
  std::string out_;
  std::size_t rows_ = 0;
};

/// The text form of a PostgreSQL text[] literal (for `= ANY($1::text[])` lookups).
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& value : values) {
    if (out.size() > 1) out.push_back(',');
    detail::append_array_text(out, value);
  }
  out.push_back('}');
  return out;
}

template <class Variant>
dom::timestamp at_of(const Variant& e) {
  return std::visit([](const auto& alternative) { return alternative.at; }, e);
}

projection_error to_projection_error(const store_error& e) {
  return projection_error{
      e.code == store_errc::retryable ? projection_errc::retryable : projection_errc::internal,
      e.message, 0};
}

std::string setup_sql(pqxx::transaction_base& tx, const std::string& application_name,
                      const std::string& schema) {
  std::string sql = "SET application_name TO " + tx.quote(application_name);
  if (!schema.empty()) sql += "; SET search_path TO " + tx.quote_name(schema);
  return sql;
}

// ---- one row of the journal, as the projector reads it ----

struct journal_row {
  std::int64_t position = 0;
  std::string stream_id;
  std::string stream_type;
  std::int64_t version = 0;
  std::string event_type;
  int schema_version = 1;
  bool has_payload = false;
  std::string payload;
  std::string correlation_id;
};

// ---- per read model: how its rows are decoded, folded, loaded and written ----

struct order_model {
  static constexpr read_model model = read_model::orders;
  using event = dom::order::event;
  struct row {
    dom::order::state state;
    std::int64_t position = 0;
  };
  static constexpr const char* load_stmt = load_orders_stmt;
  static constexpr const char* upsert_stmt = upsert_orders_stmt;

  static dom::decoded<event> decode(const dom::encoded_event& e) {
    return dom::decode_order_event(e);
  }
  static std::int64_t version(const row& r) { return r.state.version; }
  static void apply(row& r, const event& e, const journal_row&) {
    r.state = dom::order::evolve(std::move(r.state), e);
    // Views answer queries, not retries: the idempotency memory is not kept.
    r.state.handled = decltype(r.state.handled){};
  }
  static expected<row, std::string> load(const pqxx::row& db) {
    auto state = dom::decode_order_state(db[2].c_str());
    if (!state) return unexpected{state.error().field + ": " + state.error().message};
    return row{std::move(*state), db[1].as<std::int64_t>()};
  }
  static void write(json_rows& a, const std::string& stream_id, const row& r) {
    const auto& s = r.state;
    a.text(0, stream_id);
    a.text(1, s.order_id);
    a.text(2, s.customer_id);
    a.text(3, dom::order::to_string(s.status_));
    a.number(4, s.total);
    a.text(5, s.correlation_id);
    a.text(6, s.saga_id);
    a.number(7, s.created_at);
    a.number(8, s.updated_at);
    a.number(9, s.version);
    a.number(10, r.position);
    a.json(11, dom::encode_state(s));
  }
};

struct payment_model {
  static constexpr read_model model = read_model::payments;
  using event = dom::payment::event;
  struct row {
    dom::payment::state state;
    std::string refund_transaction_id;
    std::string refund_reason;
    std::string correlation_id;
    dom::timestamp created_at = 0;
    dom::timestamp updated_at = 0;
    std::int64_t position = 0;
  };
  static constexpr const char* load_stmt = load_payments_stmt;
  static constexpr const char* upsert_stmt = upsert_payments_stmt;

  static dom::decoded<event> decode(const dom::encoded_event& e) {
    return dom::decode_payment_event(e);
  }
  static std::int64_t version(const row& r) { return r.state.version; }
  static void apply(row& r, const event& e, const journal_row& j) {
    if (r.state.version == 0) r.created_at = at_of(e);
    if (r.correlation_id.empty()) r.correlation_id = j.correlation_id;
    r.updated_at = at_of(e);
    if (const auto* refunded = std::get_if<dom::payment::payment_refunded>(&e)) {
      r.refund_transaction_id = refunded->refund_transaction_id;
      r.refund_reason = refunded->reason;
    }
    r.state = dom::payment::evolve(std::move(r.state), e);
    r.state.handled = decltype(r.state.handled){};
  }
  static expected<row, std::string> load(const pqxx::row& db) {
    row r;
    r.position = db[1].as<std::int64_t>();
    auto& s = r.state;
    s.payment_id = db[2].c_str();
    s.order_id = db[3].c_str();
    s.customer_id = db[4].c_str();
    s.amount = db[5].as<std::int64_t>();
    const auto status = dom::payment::parse_status(db[6].c_str());
    if (!status) return unexpected{std::string("unknown payment status '") + db[6].c_str() + "'"};
    s.status_ = *status;
    s.transaction_id = db[7].c_str();
    s.failure_reason = db[8].c_str();
    r.refund_transaction_id = db[9].c_str();
    r.refund_reason = db[10].c_str();
    r.correlation_id = db[11].c_str();
    r.created_at = db[12].as<std::int64_t>();
    r.updated_at = db[13].as<std::int64_t>();
    s.version = db[14].as<std::int64_t>();
    return r;
  }
  static void write(json_rows& a, const std::string& stream_id, const row& r) {
    const auto& s = r.state;
    a.text(0, stream_id);
    a.text(1, s.payment_id);
    a.text(2, s.order_id);
    a.text(3, s.customer_id);
    a.number(4, s.amount);
    a.text(5, dom::payment::to_string(s.status_));
    a.text(6, s.transaction_id);
    a.text(7, s.failure_reason);
    a.text(8, r.refund_transaction_id);
    a.text(9, r.refund_reason);
    a.text(10, r.correlation_id);
    a.number(11, r.created_at);
    a.number(12, r.updated_at);
    a.number(13, s.version);
    a.number(14, r.position);
  }
};

struct inventory_model {
  static constexpr read_model model = read_model::inventory;
  using event = dom::inventory::event;
  struct row {
    dom::inventory::state state;
    dom::timestamp updated_at = 0;
    std::int64_t position = 0;
  };
  static constexpr const char* load_stmt = load_inventory_stmt;
  static constexpr const char* upsert_stmt = upsert_inventory_stmt;

  static dom::decoded<event> decode(const dom::encoded_event& e) {
    return dom::decode_inventory_event(e);
  }
  static std::int64_t version(const row& r) { return r.state.version; }
  static void apply(row& r, const event& e, const journal_row&) {
    r.updated_at = at_of(e);
    r.state = dom::inventory::evolve(std::move(r.state), e);
    // The view shows totals; per-order reservations (one entry per order ever placed) and the
    // idempotency memory would only grow the fold's working set. evolve does not read them.
    r.state.handled = decltype(r.state.handled){};
    r.state.reservations.clear();
  }
  static expected<row, std::string> load(const pqxx::row& db) {
    row r;
    r.position = db[1].as<std::int64_t>();
    auto& s = r.state;
    s.product_id = db[2].c_str();
    s.registered = !s.product_id.empty();
    s.name = db[3].c_str();
    s.price = db[4].as<std::int64_t>();
    s.available = db[5].as<std::int64_t>();
    s.reserved = db[6].as<std::int64_t>();
    r.updated_at = db[7].as<std::int64_t>();
    s.version = db[8].as<std::int64_t>();
    return r;
  }
  static void write(json_rows& a, const std::string& stream_id, const row& r) {
    const auto& s = r.state;
    a.text(0, stream_id);
    a.text(1, s.product_id);
    a.text(2, s.name);
    a.number(3, s.price);
    a.number(4, s.available);
    a.number(5, s.reserved);
    a.number(6, r.updated_at);
    a.number(7, s.version);
    a.number(8, r.position);
  }
};

struct saga_model {
  static constexpr read_model model = read_model::sagas;
  using event = dom::sagas::event;
  struct row {
    dom::sagas::state state;
    std::int64_t position = 0;
  };
  static constexpr const char* load_stmt = load_sagas_stmt;
  static constexpr const char* upsert_stmt = upsert_sagas_stmt;

  static dom::decoded<event> decode(const dom::encoded_event& e) {
    return dom::decode_saga_event(e);
  }
  static std::int64_t version(const row& r) { return r.state.version; }
  static void apply(row& r, const event& e, const journal_row&) {
    r.state = dom::sagas::evolve(std::move(r.state), e);
  }
  static expected<row, std::string> load(const pqxx::row& db) {
    auto state = dom::decode_saga_state(db[2].c_str());
    if (!state) return unexpected{state.error().field + ": " + state.error().message};
    return row{std::move(*state), db[1].as<std::int64_t>()};
  }
  static void write(json_rows& a, const std::string& stream_id, const row& r) {
    const auto& s = r.state;
    a.text(0, stream_id);
    a.text(1, s.saga_id);
    a.text(2, s.saga_type);
    a.text(3, s.correlation_id);
    a.text(4, s.input.order_id);
    a.text(5, dom::sagas::to_string(s.status_));
    a.number(6, s.started_at);
    a.number(7, s.updated_at);
    a.number(8, s.version);
    a.number(9, r.position);
    a.json(10, dom::encode_state(s));
  }
};

/// A journal event decoded for one model.
template <class Model>
struct pending_event {
  const journal_row* source = nullptr;
  typename Model::event event;
};

/// One batch's events of one model, grouped by stream (streams in order of first appearance,
/// events in journal order).
template <class Model>
struct model_batch {
  std::vector<std::string> streams;
  std::unordered_map<std::string, std::vector<pending_event<Model>>> events;

  [[nodiscard]] bool empty() const { return streams.empty(); }

  std::optional<projection_error> add(const journal_row& j) {
    auto decoded = Model::decode(dom::encoded_event{j.event_type, j.schema_version, j.payload});
    if (!decoded) {
      const auto& e = decoded.error();
      return projection_error{
          projection_errc::undecodable,
          "event at position " + std::to_string(j.position) + " (stream " + j.stream_id + ", " +
              j.event_type + " v" + std::to_string(j.schema_version) +
              ") cannot be decoded: " + (e.field.empty() ? "" : e.field + ": ") + e.message,
          j.position};
    }
    auto [it, inserted] = events.try_emplace(j.stream_id);
    if (inserted) streams.push_back(j.stream_id);
    it->second.push_back(pending_event<Model>{&j, std::move(*decoded)});
    return std::nullopt;
  }
};

/// Any failure inside a batch that is not an SQL error; carries the projection_error.
struct batch_failure {
  projection_error error;
};

}  // namespace

// ---- names ----

std::string_view to_string(read_model m) noexcept {
  switch (m) {
    case read_model::orders:
      return "orders";
    case read_model::payments:
      return "payments";
    case read_model::inventory:
      return "inventory";
    case read_model::sagas:
      return "sagas";
  }
  return "unknown";
}

std::string_view stream_type_of(read_model m) noexcept {
  switch (m) {
    case read_model::orders:
      return "order";
    case read_model::payments:
      return "payment";
    case read_model::inventory:
      return "inventory";
    case read_model::sagas:
      return "saga";
  }
  return "";
}

std::string_view to_string(projection_errc code) noexcept {
  switch (code) {
    case projection_errc::retryable:
      return "retryable";
    case projection_errc::undecodable:
      return "undecodable";
    case projection_errc::internal:
      return "internal";
  }
  return "unknown";
}

// ---- projector ----

struct read_model_projector::impl {
  /// Counts LISTEN notifications; get_notifs() reports them too, this keeps the receiver alive.
  class listener final : public pqxx::notification_receiver {
   public:
    explicit listener(pqxx::connection_base& c) : pqxx::notification_receiver(c, journal_channel) {}
    void operator()(const std::string&, int) override { ++received; }
    std::uint64_t received = 0;
  };

  projector_options options;
  std::string stream_types;  // text[] literal of the folded stream types
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<listener> listen;  // destroyed before conn
  std::uint64_t round_trips = 0;
  std::uint64_t connections = 0;

  ~impl() { disconnect(); }

  void disconnect() {
    listen.reset();
    conn.reset();
  }

  std::optional<projection_error> ensure_connected();
  projection_error fail(const std::string& context);
  template <class Model>
  void fold(pqxx::work& tx, model_batch<Model>& batch, batch_result& out);
  batch_result batch();
};

std::optional<projection_error> read_model_projector::impl::ensure_connected() {
  if (conn && conn->is_open()) return std::nullopt;
  disconnect();
  try {
    auto c = std::make_unique<pqxx::connection>(options.database_url);
    ++connections;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    c->inhibit_reactivation(true);  // we reconnect ourselves (and LISTEN again)
#pragma GCC diagnostic pop
    {
      pqxx::nontransaction tx(*c);
      // A crash may lose the last committed batches, but views and checkpoint together: the
      // projection redoes them. So the projector need not wait for WAL flushes.
      std::string sql =
          setup_sql(tx, options.application_name, options.schema) +
          "; SET synchronous_commit TO off"
          "; SELECT 'projection_checkpoints'::regclass, 'journal_notify()'::regprocedure";
      ++round_trips;
      tx.exec(sql);
    }
    c->prepare(ensure_checkpoint_stmt, ensure_checkpoint_sql);
    c->prepare(lock_checkpoint_stmt, lock_checkpoint_sql);
    c->prepare(read_checkpoint_stmt, read_checkpoint_sql);
    c->prepare(store_checkpoint_stmt, store_checkpoint_sql);
    c->prepare(read_journal_stmt, read_journal_sql);
    c->prepare(load_orders_stmt, load_orders_sql);
    c->prepare(upsert_orders_stmt, upsert_orders_sql);
    c->prepare(load_payments_stmt, load_payments_sql);
    c->prepare(upsert_payments_stmt, upsert_payments_sql);
    c->prepare(load_inventory_stmt, load_inventory_sql);
    c->prepare(upsert_inventory_stmt, upsert_inventory_sql);
    c->prepare(load_sagas_stmt, load_sagas_sql);
    c->prepare(upsert_sagas_stmt, upsert_sagas_sql);
    // LISTEN before the first read: a commit after that read is then always noticed.
    auto l = std::make_unique<listener>(*c);
    ++round_trips;
    {
      pqxx::nontransaction tx(*c);
      ++round_trips;
      tx.exec_prepared(ensure_checkpoint_stmt, options.name);
    }
    conn = std::move(c);
    listen = std::move(l);
    return std::nullopt;
  } catch (...) {
    listen.reset();
    auto c = detail::classify_current_exception("projection " + options.name + ": connecting");
    return to_projection_error(c.error);
  }
}

projection_error read_model_projector::impl::fail(const std::string& context) {
  auto c = detail::classify_current_exception("projection " + options.name + ": " + context);
  if (c.connection_unusable || (conn && !conn->is_open())) {
    disconnect();
    c.error.code = store_errc::retryable;
  }
  return to_projection_error(c.error);
}

template <class Model>
void read_model_projector::impl::fold(pqxx::work& tx, model_batch<Model>& batch,
                                      batch_result& out) {
  if (batch.empty()) return;
  const auto view = std::string(to_string(Model::model));
  // Every stream is looked up, new ones too (one indexed probe each, in one statement): a
  // projection replaying from an older checkpoint then finds its rows and skips what they hold.
  std::unordered_map<std::string, typename Model::row> rows;
  {
    ++round_trips;
    for (const auto& db : tx.exec_prepared(Model::load_stmt, text_array(batch.streams))) {
      auto loaded = Model::load(db);
      if (!loaded) {
        throw batch_failure{projection_error{
            projection_errc::internal,
            "the " + view + " row of stream " + db[0].c_str() + " is corrupt: " + loaded.error(),
            0}};
      }
      rows.emplace(db[0].c_str(), std::move(*loaded));
    }
  }

  json_rows columns;
  std::size_t written = 0;
  for (const auto& stream : batch.streams) {
    auto& row = rows[stream];  // a new stream starts from the empty state
    bool changed = false;
    for (const auto& p : batch.events[stream]) {
      const auto& j = *p.source;
      const auto at = Model::version(row);
      if (j.version <= at) continue;  // already in the view (the checkpoint was moved back)
      if (j.version != at + 1) {
        throw batch_failure{projection_error{
            projection_errc::internal,
            "the " + view + " view holds stream " + stream + " at version " + std::to_string(at) +
                " but the next journal event (position " + std::to_string(j.position) +
                ") has version " + std::to_string(j.version) +
                ": events are missing from the view (was it truncated without resetting the "
                "checkpoint?)",
            j.position}};
      }
      Model::apply(row, p.event, j);
      row.position = j.position;
      changed = true;
      ++out.events_applied;
    }
    if (!changed) continue;
    Model::write(columns, stream, row);
    ++written;
  }
  if (written == 0) return;
  ++round_trips;
  const auto result = tx.exec_prepared(Model::upsert_stmt, std::move(columns).finish());
  if (result.affected_rows() != written) {
    // Only a writer bypassing the checkpoint lock can get here; never overwrite its rows.
    throw batch_failure{projection_error{projection_errc::internal,
                                         "the " + view + " view changed while projection " +
                                             options.name + " held its " + "checkpoint (" +
                                             std::to_string(result.affected_rows()) + " of " +
                                             std::to_string(written) + " rows written)",
                                         0}};
  }
}

batch_result read_model_projector::impl::batch() {
  batch_result out;
  pqxx::work tx(*conn);
  ++round_trips;  // BEGIN
  ++round_trips;
  const auto locked = tx.exec_prepared(lock_checkpoint_stmt, options.name);
  if (locked.empty()) {
    ++round_trips;
    const auto stored = tx.exec_prepared(read_checkpoint_stmt, options.name);
    if (stored.empty()) {
      // Someone deleted the row: start again from 0. Rows remember their stream version, so
      // events already in the views are not applied twice.
      ++round_trips;
      tx.exec_prepared(ensure_checkpoint_stmt, options.name);
      out.full = true;  // nothing done yet: call again at once
    } else {
      out.busy = true;
      out.checkpoint = stored[0][0].as<std::int64_t>();
    }
    ++round_trips;
    tx.commit();
    return out;
  }
  const auto from = locked[0][0].as<std::int64_t>();
  out.checkpoint = from;

  ++round_trips;
  const auto db_rows = tx.exec_prepared(
      read_journal_stmt, from, static_cast<std::int64_t>(options.batch_size), stream_types);
  std::vector<journal_row> rows;
  rows.reserve(db_rows.size());
  for (const auto& r : db_rows) {
    journal_row j;
    j.position = r[0].as<std::int64_t>();
    j.stream_id = r[1].c_str();
    j.stream_type = r[2].c_str();
    j.version = r[3].as<std::int64_t>();
    j.event_type = r[4].c_str();
    j.schema_version = r[5].as<int>();
    j.has_payload = !r[6].is_null();
    if (j.has_payload) j.payload = r[6].c_str();
    j.correlation_id = r[7].c_str();
    rows.push_back(std::move(j));
  }
  out.events_read = rows.size();
  out.full = rows.size() == options.batch_size;
  if (rows.empty()) {
    ++round_trips;
    tx.commit();
    return out;
  }

  model_batch<order_model> orders;
  model_batch<payment_model> payments;
  model_batch<inventory_model> inventory;
  model_batch<saga_model> sagas;
  for (const auto& j : rows) {
    if (!j.has_payload) continue;  // a stream type this projector does not fold
    std::optional<projection_error> error;
    if (j.stream_type == stream_type_of(read_model::orders)) {
      error = orders.add(j);
    } else if (j.stream_type == stream_type_of(read_model::payments)) {
      error = payments.add(j);
    } else if (j.stream_type == stream_type_of(read_model::inventory)) {
      error = inventory.add(j);
    } else if (j.stream_type == stream_type_of(read_model::sagas)) {
      error = sagas.add(j);
    }
    if (error) throw batch_failure{std::move(*error)};
  }
  fold(tx, orders, out);
  fold(tx, payments, out);
  fold(tx, inventory, out);
  fold(tx, sagas, out);

  if (options.before_commit) options.before_commit();
  out.checkpoint = rows.back().position;
  ++round_trips;
  tx.exec_prepared(store_checkpoint_stmt, options.name, out.checkpoint);
  ++round_trips;
  tx.commit();
  return out;
}

read_model_projector::read_model_projector(projector_options options)
    : impl_(std::make_unique<impl>()) {
  options.batch_size = std::clamp<std::size_t>(options.batch_size, 1, max_batch_size);
  std::vector<std::string> types;
  for (const auto m :
       {read_model::orders, read_model::payments, read_model::inventory, read_model::sagas}) {
    if (contains(options.models, m)) types.emplace_back(stream_type_of(m));
  }
  impl_->stream_types = text_array(types);
  impl_->options = std::move(options);
}

read_model_projector::~read_model_projector() = default;

expected<done, projection_error> read_model_projector::connect() {
  if (auto error = impl_->ensure_connected()) return unexpected{std::move(*error)};
  return done{};
}

expected<batch_result, projection_error> read_model_projector::run_batch() {
  if (auto error = impl_->ensure_connected()) return unexpected{std::move(*error)};
  try {
    return impl_->batch();
  } catch (batch_failure& f) {
    return unexpected{std::move(f.error)};
  } catch (...) {
    return unexpected{impl_->fail("applying a batch")};
  }
}

expected<std::int64_t, projection_error> read_model_projector::checkpoint() {
  if (auto error = impl_->ensure_connected()) return unexpected{std::move(*error)};
  try {
    pqxx::nontransaction tx(*impl_->conn);
    ++impl_->round_trips;
    const auto rows = tx.exec_prepared(read_checkpoint_stmt, impl_->options.name);
    return rows.empty() ? std::int64_t{0} : rows[0][0].as<std::int64_t>();
  } catch (...) {
    return unexpected{impl_->fail("reading the checkpoint")};
  }
}

expected<bool, projection_error> read_model_projector::wait_for_journal(
    std::chrono::milliseconds timeout) {
  if (auto error = impl_->ensure_connected()) return unexpected{std::move(*error)};
  try {
    if (impl_->conn->get_notifs() > 0) return true;
    const auto us = std::max<std::int64_t>(0, std::chrono::microseconds(timeout).count());
    const int n = impl_->conn->await_notification(static_cast<long>(us / 1'000'000),
                                                  static_cast<long>(us % 1'000'000));
    if (n > 0) return true;
    // await_notification returns 0 on a timeout and on a dead socket alike.
    if (!impl_->conn->is_open()) {
      impl_->disconnect();
      return unexpected{projection_error{
          projection_errc::retryable,
          "projection " + impl_->options.name + ": the connection was lost while waiting", 0}};
    }
    return false;
  } catch (...) {
    return unexpected{impl_->fail("waiting for journal notifications")};
  }
}

const projector_options& read_model_projector::options() const noexcept { return impl_->options; }

std::uint64_t read_model_projector::round_trips() const noexcept { return impl_->round_trips; }

std::uint64_t read_model_projector::connections_opened() const noexcept {
  return impl_->connections;
}

// ---- queries ----

int clamp_query_limit(int limit) noexcept { return std::clamp(limit, 1, max_query_limit); }

std::optional<std::string> query_id_error(std::string_view what, const std::string& id) {
  if (id.empty()) return std::string(what) + " must not be empty";
  if (id.size() > max_query_id_bytes) {
    return std::string(what) + " is longer than " + std::to_string(max_query_id_bytes) + " bytes";
  }
  if (id.find('\0') != std::string::npos) return std::string(what) + " contains a NUL byte";
  return std::nullopt;
}

namespace {

constexpr const char* q_order_stmt = "rq_order";
constexpr const char* q_order_sql =
    "SELECT stream_id, state::text FROM orders_view WHERE order_id = $1 ORDER BY stream_id "
    "LIMIT 1";
constexpr const char* q_orders_by_customer_stmt = "rq_orders_by_customer";
constexpr const char* q_orders_by_customer_sql =
    "SELECT stream_id, state::text FROM orders_view WHERE customer_id = $1 "
    "ORDER BY created_at DESC, order_id DESC LIMIT $2 OFFSET $3";

#define SAGA_PAYMENT_COLUMNS                                                            \
  "payment_id, order_id, customer_id, amount, status, transaction_id, failure_reason, " \
  "refund_transaction_id, refund_reason, correlation_id, created_at, updated_at, version"
constexpr const char* q_payment_by_order_stmt = "rq_payment_by_order";
constexpr const char* q_payment_by_order_sql =
    "SELECT " SAGA_PAYMENT_COLUMNS
    " FROM payments_view WHERE order_id = $1 ORDER BY created_at DESC, stream_id LIMIT 1";
#undef SAGA_PAYMENT_COLUMNS

#define SAGA_PRODUCT_COLUMNS "product_id, name, price, available, reserved, updated_at, version"
constexpr const char* q_product_stmt = "rq_product";
constexpr const char* q_product_sql = "SELECT " SAGA_PRODUCT_COLUMNS
                                      " FROM inventory_view WHERE product_id = $1 "
                                      "ORDER BY stream_id LIMIT 1";
constexpr const char* q_products_stmt = "rq_products";
constexpr const char* q_products_sql = "SELECT " SAGA_PRODUCT_COLUMNS
                                       " FROM inventory_view ORDER BY product_id, stream_id "
                                       "LIMIT $1 OFFSET $2";
#undef SAGA_PRODUCT_COLUMNS

constexpr const char* q_saga_stmt = "rq_saga";
constexpr const char* q_saga_sql =
    "SELECT stream_id, state::text FROM sagas_view WHERE saga_id = $1 ORDER BY stream_id "
    "LIMIT 1";
constexpr const char* q_saga_by_correlation_stmt = "rq_saga_by_correlation";
constexpr const char* q_saga_by_correlation_sql =
    "SELECT stream_id, state::text FROM sagas_view WHERE correlation_id = $1 "
    "ORDER BY started_at DESC, saga_id DESC LIMIT 1";
constexpr const char* q_active_sagas_stmt = "rq_active_sagas";
constexpr const char* q_active_sagas_sql =
    "SELECT stream_id, state::text FROM sagas_view WHERE status IN ('RUNNING', 'COMPENSATING') "
    "ORDER BY started_at, saga_id LIMIT $1 OFFSET $2";
constexpr const char* q_failed_sagas_stmt = "rq_failed_sagas";
constexpr const char* q_failed_sagas_sql =
    "SELECT stream_id, state::text FROM sagas_view WHERE status = 'FAILED' "
    "ORDER BY started_at, saga_id LIMIT $1 OFFSET $2";

constexpr const char* q_events_by_correlation_stmt = "rq_events_by_correlation";
constexpr const char* q_events_by_correlation_sql =
    "SELECT position, stream_id, stream_type, version, event_id::text, event_type, "
    "schema_version, payload::text, metadata::text, "
    "(extract(epoch FROM recorded_at) * 1000)::bigint "
    "FROM events WHERE correlation_id = $1 ORDER BY position LIMIT $2";

constexpr const char* q_events_after_stmt = "rq_events_after";
constexpr const char* q_events_after_sql =
    "SELECT position, stream_id, stream_type, version, event_id::text, event_type, "
    "schema_version, payload::text, metadata::text, "
    "(extract(epoch FROM recorded_at) * 1000)::bigint "
    "FROM events WHERE position > $1 ORDER BY position LIMIT $2";

constexpr const char* q_checkpoints_stmt = "rq_checkpoints";
constexpr const char* q_checkpoints_sql =
    "SELECT name, position, (extract(epoch FROM updated_at) * 1000)::bigint "
    "FROM projection_checkpoints WHERE name = ANY($1::text[]) ORDER BY name";

constexpr const char* q_journal_head_stmt = "rq_journal_head";
constexpr const char* q_journal_head_sql = "SELECT coalesce(max(position), 0) FROM events";

store_error invalid(std::string message) {
  return store_error{store_errc::invalid_request, std::move(message), -1};
}

/// Thrown inside a query when a stored view row cannot be turned into a view.
struct corrupt_row {
  std::string message;
};

order_view order_view_of(const dom::order::state& s) {
  order_view v;
  v.order_id = s.order_id;
  v.customer_id = s.customer_id;
  v.items = s.items;
  v.total = s.total;
  v.status = std::string(dom::order::to_string(s.status_));
  v.shipping_address = s.shipping_address;
  v.correlation_id = s.correlation_id;
  v.saga_id = s.saga_id;
  v.failure_reason = s.failure_reason;
  v.created_at = s.created_at;
  v.updated_at = s.updated_at;
  v.version = s.version;
  return v;
}

}  // namespace

saga_view saga_view_of(const dom::sagas::state& s) {
  saga_view v;
  v.saga_id = s.saga_id;
  v.saga_type = s.saga_type;
  v.correlation_id = s.correlation_id;
  v.order_id = s.input.order_id;
  v.status = std::string(dom::sagas::to_string(s.status_));
  if (s.status_ != dom::sagas::status::none && s.current_step >= 0) {
    const auto step = static_cast<std::size_t>(s.current_step);
    if (step < s.step_names.size()) {
      v.current_step = s.step_names[step];
    } else if (step == s.step_names.size()) {
      v.current_step = std::string(dom::sagas::to_string(dom::sagas::phase::on_compensated));
    }
  }
  for (std::size_t i = 0; i < s.step_names.size(); ++i) {
    const auto status = i < s.steps.size() ? s.steps[i].status_ : dom::sagas::step_status::pending;
    v.steps.push_back(saga_step_view{s.step_names[i], std::string(dom::sagas::to_string(status))});
  }
  v.failure_reason = s.failure_reason;
  v.compensation_reason = s.compensation_reason;
  v.started_at = s.started_at;
  v.updated_at = s.updated_at;
  v.version = s.version;
  return v;
}

namespace {

order_view order_from_row(const pqxx::row& r) {
  auto state = dom::decode_order_state(r[1].c_str());
  if (!state) {
    throw corrupt_row{std::string("orders_view row ") + r[0].c_str() +
                      " has an undecodable state: " + state.error().field + ": " +
                      state.error().message};
  }
  return order_view_of(*state);
}

saga_view saga_from_row(const pqxx::row& r) {
  auto state = dom::decode_saga_state(r[1].c_str());
  if (!state) {
    throw corrupt_row{std::string("sagas_view row ") + r[0].c_str() +
                      " has an undecodable state: " + state.error().field + ": " +
                      state.error().message};
  }
  return saga_view_of(*state);
}

payment_view payment_from_row(const pqxx::row& r) {
  payment_view v;
  v.payment_id = r[0].c_str();
  v.order_id = r[1].c_str();
  v.customer_id = r[2].c_str();
  v.amount = r[3].as<std::int64_t>();
  v.status = r[4].c_str();
  v.transaction_id = r[5].c_str();
  v.failure_reason = r[6].c_str();
  v.refund_transaction_id = r[7].c_str();
  v.refund_reason = r[8].c_str();
  v.correlation_id = r[9].c_str();
  v.created_at = r[10].as<std::int64_t>();
  v.updated_at = r[11].as<std::int64_t>();
  v.version = r[12].as<std::int64_t>();
  return v;
}

inventory_view product_from_row(const pqxx::row& r) {
  inventory_view v;
  v.product_id = r[0].c_str();
  v.name = r[1].c_str();
  v.price = r[2].as<std::int64_t>();
  v.available = r[3].as<std::int64_t>();
  v.reserved = r[4].as<std::int64_t>();
  v.updated_at = r[5].as<std::int64_t>();
  v.version = r[6].as<std::int64_t>();
  return v;
}

template <class T, class F>
std::vector<T> map_rows(const pqxx::result& rows, F&& convert) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(convert(r));
  return out;
}

template <class T, class F>
std::optional<T> first_row(const pqxx::result& rows, F&& convert) {
  if (rows.empty()) return std::nullopt;
  return convert(rows[0]);
}

}  // namespace

struct read_model_queries::impl {
  query_options options;
  std::unique_ptr<pqxx::connection> conn;

  std::optional<store_error> ensure_connected() {
    if (conn && conn->is_open()) return std::nullopt;
    conn.reset();
    try {
      auto c = std::make_unique<pqxx::connection>(options.database_url);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      {
        pqxx::nontransaction tx(*c);
        std::string sql =
            setup_sql(tx, options.application_name, options.schema) +
            "; SET default_transaction_read_only TO on"
            "; SET statement_timeout TO " +
            std::to_string(std::max<std::int64_t>(0, options.statement_timeout.count())) +
            "; SELECT 'orders_view'::regclass";
        tx.exec(sql);
      }
      c->prepare(q_order_stmt, q_order_sql);
      c->prepare(q_orders_by_customer_stmt, q_orders_by_customer_sql);
      c->prepare(q_payment_by_order_stmt, q_payment_by_order_sql);
      c->prepare(q_product_stmt, q_product_sql);
      c->prepare(q_products_stmt, q_products_sql);
      c->prepare(q_saga_stmt, q_saga_sql);
      c->prepare(q_saga_by_correlation_stmt, q_saga_by_correlation_sql);
      c->prepare(q_active_sagas_stmt, q_active_sagas_sql);
      c->prepare(q_failed_sagas_stmt, q_failed_sagas_sql);
      c->prepare(q_events_by_correlation_stmt, q_events_by_correlation_sql);
      c->prepare(q_events_after_stmt, q_events_after_sql);
      c->prepare(q_checkpoints_stmt, q_checkpoints_sql);
      c->prepare(q_journal_head_stmt, q_journal_head_sql);
      conn = std::move(c);
      return std::nullopt;
    } catch (...) {
      return detail::classify_current_exception("read models: connecting").error;
    }
  }

  /// Runs `body(tx)` on a fresh autocommit transaction; errors become store_errors.
  template <class T, class F>
  expected<T, store_error> run(const char* context, F&& body) {
    if (auto error = ensure_connected()) return unexpected{std::move(*error)};
    try {
      pqxx::nontransaction tx(*conn);
      return body(tx);
    } catch (const corrupt_row& e) {
      return unexpected{store_error{store_errc::internal, e.message, -1}};
    } catch (...) {
      auto c = detail::classify_current_exception(std::string("read models: ") + context);
      if (c.connection_unusable || (conn && !conn->is_open())) {
        conn.reset();
        c.error.code = store_errc::retryable;
      }
      return unexpected{std::move(c.error)};
    }
  }
};

read_model_queries::read_model_queries(query_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
}

read_model_queries::~read_model_queries() = default;

expected<std::optional<order_view>, store_error> read_model_queries::order(
    const std::string& order_id) {
  if (auto bad = query_id_error("order id", order_id)) return unexpected{invalid(*bad)};
  return impl_->run<std::optional<order_view>>("order", [&](pqxx::transaction_base& tx) {
    return first_row<order_view>(tx.exec_prepared(q_order_stmt, order_id), order_from_row);
  });
}

expected<std::vector<order_view>, store_error> read_model_queries::orders_by_customer(
    const std::string& customer_id, int limit, int offset) {
  if (auto bad = query_id_error("customer id", customer_id)) return unexpected{invalid(*bad)};
  if (offset < 0) return unexpected{invalid("offset must not be negative")};
  return impl_->run<std::vector<order_view>>("orders by customer", [&](auto& tx) {
    return map_rows<order_view>(
        tx.exec_prepared(q_orders_by_customer_stmt, customer_id, clamp_query_limit(limit), offset),
        order_from_row);
  });
}

expected<std::optional<payment_view>, store_error> read_model_queries::payment_by_order(
    const std::string& order_id) {
  if (auto bad = query_id_error("order id", order_id)) return unexpected{invalid(*bad)};
  return impl_->run<std::optional<payment_view>>("payment by order", [&](auto& tx) {
    return first_row<payment_view>(tx.exec_prepared(q_payment_by_order_stmt, order_id),
                                   payment_from_row);
  });
}

expected<std::optional<inventory_view>, store_error> read_model_queries::product(
    const std::string& product_id) {
  if (auto bad = query_id_error("product id", product_id)) return unexpected{invalid(*bad)};
  return impl_->run<std::optional<inventory_view>>("product", [&](auto& tx) {
    return first_row<inventory_view>(tx.exec_prepared(q_product_stmt, product_id),
                                     product_from_row);
  });
}

expected<std::vector<inventory_view>, store_error> read_model_queries::products(int limit,
                                                                                int offset) {
  if (offset < 0) return unexpected{invalid("offset must not be negative")};
  return impl_->run<std::vector<inventory_view>>("products", [&](auto& tx) {
    return map_rows<inventory_view>(
        tx.exec_prepared(q_products_stmt, clamp_query_limit(limit), offset), product_from_row);
  });
}

expected<std::optional<saga_view>, store_error> read_model_queries::saga(
    const std::string& saga_id) {
  if (auto bad = query_id_error("saga id", saga_id)) return unexpected{invalid(*bad)};
  return impl_->run<std::optional<saga_view>>("saga", [&](auto& tx) {
    return first_row<saga_view>(tx.exec_prepared(q_saga_stmt, saga_id), saga_from_row);
  });
}

expected<std::optional<saga_view>, store_error> read_model_queries::saga_by_correlation(
    const std::string& correlation_id) {
  if (auto bad = query_id_error("correlation id", correlation_id)) {
    return unexpected{invalid(*bad)};
  }
  return impl_->run<std::optional<saga_view>>("saga by correlation", [&](auto& tx) {
    return first_row<saga_view>(tx.exec_prepared(q_saga_by_correlation_stmt, correlation_id),
                                saga_from_row);
  });
}

expected<std::vector<saga_view>, store_error> read_model_queries::sagas(saga_filter filter,
                                                                        int limit, int offset) {
  if (offset < 0) return unexpected{invalid("offset must not be negative")};
  const char* stmt = filter == saga_filter::failed ? q_failed_sagas_stmt : q_active_sagas_stmt;
  return impl_->run<std::vector<saga_view>>("sagas by status", [&](auto& tx) {
    return map_rows<saga_view>(tx.exec_prepared(stmt, clamp_query_limit(limit), offset),
                               saga_from_row);
  });
}

expected<std::vector<recorded_event>, store_error> read_model_queries::events_by_correlation(
    const std::string& correlation_id, int limit) {
  if (auto bad = query_id_error("correlation id", correlation_id)) {
    return unexpected{invalid(*bad)};
  }
  return impl_->run<std::vector<recorded_event>>("events by correlation", [&](auto& tx) {
    return map_rows<recorded_event>(
        tx.exec_prepared(q_events_by_correlation_stmt, correlation_id, clamp_query_limit(limit)),
        detail::event_from_row);
  });
}

expected<std::vector<recorded_event>, store_error> read_model_queries::events_after(
    std::int64_t after_position, int limit) {
  if (after_position < 0) return unexpected{invalid("after must not be negative")};
  return impl_->run<std::vector<recorded_event>>("events after a position", [&](auto& tx) {
    return map_rows<recorded_event>(
        tx.exec_prepared(q_events_after_stmt, after_position, clamp_query_limit(limit)),
        detail::event_from_row);
  });
}

expected<std::vector<projection_checkpoint>, store_error> read_model_queries::checkpoints(
    const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (auto bad = query_id_error("projection name", name)) return unexpected{invalid(*bad)};
  }
  return impl_->run<std::vector<projection_checkpoint>>("checkpoints", [&](auto& tx) {
    return map_rows<projection_checkpoint>(
        tx.exec_prepared(q_checkpoints_stmt, text_array(names)), [](const pqxx::row& r) {
          return projection_checkpoint{r[0].c_str(), r[1].as<std::int64_t>(),
                                       r[2].as<std::int64_t>()};
        });
  });
}

expected<std::int64_t, store_error> read_model_queries::journal_head() {
  return impl_->run<std::int64_t>("journal head", [&](auto& tx) {
    return tx.exec_prepared(q_journal_head_stmt)[0][0].template as<std::int64_t>();
  });
}

}  // namespace saga::persistence

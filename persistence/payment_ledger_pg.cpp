// The payment ledger on PostgreSQL (table payment_ledger, migration 0003). One connection per
// ledger, guarded by a mutex (any thread, one call at a time); re-opened after a failure.
#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <pqxx/pqxx>

#include "domain/validation.hpp"
#include "persistence/payment_gateway.hpp"
#include "persistence/pg_error.hpp"
#include "persistence/pg_rows.hpp"

namespace saga::persistence {

namespace {

#define SAGA_LEDGER_COLUMNS                                                              \
  "idempotency_key, operation, payment_id, order_id, amount, approved, transaction_id, " \
  "reason, (extract(epoch FROM recorded_at) * 1000)::bigint"

// One round trip for the usual batch: the INSERT skips keys already stored (first writer wins;
// DISTINCT ON keeps the first of a key repeated within the batch) and inserts in key order, so
// concurrent ledgers lock keys in the same order and never deadlock; RETURNING gives the new rows,
// and the main query adds the stored rows of the other keys. The main query reads the snapshot
// taken before the INSERT, so it never sees this statement's own rows, but it also misses a row
// that a concurrent transaction committed after that snapshot and that the INSERT then
// conflicted with: such keys are read again by read_keys_sql.
constexpr const char* record_stmt = "saga_ledger_record";
constexpr const char* record_sql =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
    "                       $6::boolean[], $7::text[], $8::text[])"
    "    WITH ORDINALITY AS t(idempotency_key, operation, payment_id, order_id, amount, approved,"
    "                         transaction_id, reason, idx)),"
    " firsts AS ("
    "  SELECT DISTINCT ON (idempotency_key) * FROM input ORDER BY idempotency_key, idx),"
    " inserted AS ("
    "  INSERT INTO payment_ledger (idempotency_key, operation, payment_id, order_id, amount,"
    "                              approved, transaction_id, reason)"
    "  SELECT idempotency_key, operation, payment_id, order_id, amount, approved, transaction_id,"
    "         reason FROM firsts ORDER BY idempotency_key"
    "  ON CONFLICT (idempotency_key) DO NOTHING"
    "  RETURNING " SAGA_LEDGER_COLUMNS
    ")"
    " SELECT true, * FROM inserted"
    " UNION ALL"
    " SELECT false, " SAGA_LEDGER_COLUMNS
    "   FROM payment_ledger WHERE idempotency_key IN (SELECT idempotency_key FROM firsts)";

constexpr const char* read_keys_stmt = "saga_ledger_read_keys";
constexpr const char* read_keys_sql =
    "SELECT false, " SAGA_LEDGER_COLUMNS
    " FROM payment_ledger WHERE idempotency_key = ANY($1::text[])";

constexpr const char* of_order_stmt = "saga_ledger_of_order";
constexpr const char* of_order_sql =
    "SELECT false, " SAGA_LEDGER_COLUMNS " FROM payment_ledger WHERE order_id = $1 ORDER BY seq";

constexpr const char* charged_twice_stmt = "saga_ledger_charged_twice";
constexpr const char* charged_twice_sql =
    "SELECT order_id FROM payment_ledger WHERE approved GROUP BY order_id"
    " HAVING count(*) FILTER (WHERE operation = 'charge')"
    "      - count(*) FILTER (WHERE operation = 'refund') > 1"
    " ORDER BY order_id";

// Voids (rare: compensations only) run statement by statement in one READ COMMITTED transaction,
// where each statement sees what concurrent transactions committed before it began. The
// tombstone INSERT waits for a concurrent insert of the same key to finish; if that one
// commits, the key is taken and the stored charge is read and locked (FOR UPDATE), so two voids
// of one charge take turns and the second sees the first one's refund.
constexpr const char* tombstone_stmt = "saga_ledger_tombstone";
constexpr const char* tombstone_sql =
    "INSERT INTO payment_ledger (idempotency_key, operation, payment_id, order_id, amount,"
    "                            approved, transaction_id, reason)"
    " VALUES ($1, 'charge', $2, $3, $4, false, '', $5)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
    " RETURNING true, " SAGA_LEDGER_COLUMNS;

constexpr const char* lock_key_stmt = "saga_ledger_lock_key";
constexpr const char* lock_key_sql = "SELECT false, " SAGA_LEDGER_COLUMNS
                                     " FROM payment_ledger WHERE idempotency_key = $1 FOR UPDATE";

constexpr const char* read_key_stmt = "saga_ledger_read_key";
constexpr const char* read_key_sql =
    "SELECT false, " SAGA_LEDGER_COLUMNS " FROM payment_ledger WHERE idempotency_key = $1";

// Net approved charges of one payment, and its newest approved refund (if any).
constexpr const char* payment_net_stmt = "saga_ledger_payment_net";
constexpr const char* payment_net_sql =
    "SELECT count(*) FILTER (WHERE operation = 'charge')"
    "       - count(*) FILTER (WHERE operation = 'refund'),"
    "       max(seq) FILTER (WHERE operation = 'refund')"
    " FROM payment_ledger WHERE approved AND order_id = $1 AND payment_id = $2";

constexpr const char* read_seq_stmt = "saga_ledger_read_seq";
constexpr const char* read_seq_sql =
    "SELECT false, " SAGA_LEDGER_COLUMNS " FROM payment_ledger WHERE seq = $1";

constexpr const char* insert_refund_stmt = "saga_ledger_insert_refund";
constexpr const char* insert_refund_sql =
    "INSERT INTO payment_ledger (idempotency_key, operation, payment_id, order_id, amount,"
    "                            approved, transaction_id, reason)"
    " VALUES ($1, 'refund', $2, $3, $4, true, $5, $6)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
    " RETURNING true, " SAGA_LEDGER_COLUMNS;

#undef SAGA_LEDGER_COLUMNS

// The next element of a PostgreSQL array literal under construction ("{" so far: the first).
void append_array_text(std::string& out, const std::string& value) {
  if (out.size() > 1) out.push_back(',');
  detail::append_array_text(out, value);
}

void append_array_plain(std::string& out, const std::string& value) {
  if (out.size() > 1) out.push_back(',');
  out += value;
}

// A row of the shape (new?, SAGA_LEDGER_COLUMNS); the flag is the caller's business.
ledger_entry entry_from_row(const pqxx::row& row) {
  ledger_entry e;
  e.idempotency_key = row[1].c_str();
  const std::string op = row[2].c_str();
  if (op == "charge") {
    e.operation = gateway_operation::charge;
  } else if (op == "refund") {
    e.operation = gateway_operation::refund;
  } else {
    throw std::runtime_error("payment_ledger holds an unknown operation '" + op + "'");
  }
  e.payment_id = row[3].c_str();
  e.order_id = row[4].c_str();
  e.amount = row[5].as<std::int64_t>();
  e.approved = row[6].as<bool>();
  e.transaction_id = row[7].c_str();
  e.reason = row[8].c_str();
  e.recorded_at_ms = row[9].as<std::int64_t>();
  return e;
}

class pg_ledger final : public payment_ledger {
 public:
  pg_ledger(std::string database_url, std::string schema)
      : database_url_(std::move(database_url)), schema_(std::move(schema)) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto error = ensure_connected()) throw std::runtime_error(*error);
  }

  expected<std::vector<ledger_entry>, std::string> record(
      const std::vector<ledger_entry>& entries) override {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (auto e = validate_entry(entries[i])) {
        return unexpected{"payment ledger: entry " + std::to_string(i) + " is invalid: " + *e};
      }
    }
    if (entries.empty()) return std::vector<ledger_entry>{};
    std::lock_guard<std::mutex> lock(mutex_);
    return guarded<std::vector<ledger_entry>>("recording payments", [&] {
      std::string keys = "{", ops = "{", payments = "{", orders = "{", amounts = "{",
                  approved = "{", transactions = "{", reasons = "{";
      for (const auto& e : entries) {
        append_array_text(keys, e.idempotency_key);
        append_array_plain(ops, to_string(e.operation));
        append_array_text(payments, e.payment_id);
        append_array_text(orders, e.order_id);
        append_array_plain(amounts, std::to_string(e.amount));
        append_array_plain(approved, e.approved ? "t" : "f");
        append_array_text(transactions, e.transaction_id);
        append_array_text(reasons, e.reason);
      }
      for (auto* a :
           {&keys, &ops, &payments, &orders, &amounts, &approved, &transactions, &reasons}) {
        a->push_back('}');
      }
      // Key → (stored entry, written by this call).
      std::unordered_map<std::string, std::pair<ledger_entry, bool>> stored;
      {
        pqxx::nontransaction tx(*conn_);
        for (const auto& row : tx.exec_prepared(record_stmt, keys, ops, payments, orders, amounts,
                                                approved, transactions, reasons)) {
          const bool fresh = row[0].as<bool>();
          auto entry = entry_from_row(row);
          auto key = entry.idempotency_key;
          stored.emplace(std::move(key), std::make_pair(std::move(entry), fresh));
        }
        // Keys a concurrent transaction stored after this statement's snapshot.
        std::string missing = "{";
        for (const auto& e : entries) {
          if (stored.count(e.idempotency_key) == 0) append_array_text(missing, e.idempotency_key);
        }
        if (missing.size() > 1) {
          missing.push_back('}');
          for (const auto& row : tx.exec_prepared(read_keys_stmt, missing)) {
            auto entry = entry_from_row(row);
            auto key = entry.idempotency_key;
            stored.emplace(std::move(key), std::make_pair(std::move(entry), false));
          }
        }
      }
      std::vector<ledger_entry> out;
      out.reserve(entries.size());
      std::unordered_set<std::string> answered;
      for (const auto& e : entries) {
        const auto it = stored.find(e.idempotency_key);
        if (it == stored.end()) {
          throw std::runtime_error("payment_ledger has no row for a key just recorded");
        }
        ledger_entry entry = it->second.first;
        // Only the first input of a key this call wrote is new; the rest replay it.
        entry.replayed = !it->second.second || !answered.insert(e.idempotency_key).second;
        out.push_back(std::move(entry));
      }
      return out;
    });
  }

  expected<std::vector<void_outcome>, std::string> void_charges(
      const std::vector<void_request>& requests) override {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (auto e = validate_void(requests[i])) {
        return unexpected{"payment ledger: void " + std::to_string(i) + " is invalid: " + *e};
      }
    }
    if (requests.empty()) return std::vector<void_outcome>{};
    std::lock_guard<std::mutex> lock(mutex_);
    return guarded<std::vector<void_outcome>>("voiding payments", [&] {
      pqxx::work tx(*conn_);
      tx.exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
      std::vector<void_outcome> out;
      out.reserve(requests.size());
      for (const auto& r : requests) out.push_back(void_one(tx, r));
      tx.commit();
      return out;
    });
  }

  expected<std::vector<ledger_entry>, std::string> entries_of_order(
      const std::string& order_id) override {
    if (!domain::is_valid_text(order_id)) {
      return unexpected{std::string("payment ledger: order_id must be UTF-8 text without NUL")};
    }
    std::lock_guard<std::mutex> lock(mutex_);
    return guarded<std::vector<ledger_entry>>("reading an order's payments", [&] {
      pqxx::nontransaction tx(*conn_);
      std::vector<ledger_entry> out;
      for (const auto& row : tx.exec_prepared(of_order_stmt, order_id)) {
        out.push_back(entry_from_row(row));
      }
      return out;
    });
  }

  expected<std::vector<std::string>, std::string> orders_charged_twice() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return guarded<std::vector<std::string>>("counting charges per order", [&] {
      pqxx::nontransaction tx(*conn_);
      std::vector<std::string> out;
      for (const auto& row : tx.exec_prepared(charged_twice_stmt)) out.emplace_back(row[0].c_str());
      return out;
    });
  }

 private:
  static void_outcome void_one(pqxx::work& tx, const void_request& r) {
    void_outcome o;
    const auto tomb = detail::tombstone_for(r);
    const auto written = tx.exec_prepared(tombstone_stmt, tomb.idempotency_key, tomb.payment_id,
                                          tomb.order_id, tomb.amount, tomb.reason);
    if (!written.empty()) {
      o.charge = entry_from_row(written[0]);
      return o;
    }
    const auto charge = tx.exec_prepared(lock_key_stmt, r.charge_key);
    if (charge.empty()) throw std::runtime_error("payment_ledger lost the row of a taken key");
    o.charge = entry_from_row(charge[0]);
    o.replayed = true;
    if (auto e = detail::charge_misuse(r, o.charge)) {
      o.error = std::move(*e);
      return o;
    }
    if (!o.charge.approved) return o;
    if (refund_by_key(tx, r, o)) return o;
    // Net per payment: a refund under another key may already have undone this charge.
    const auto net =
        tx.exec_prepared(payment_net_stmt, o.charge.order_id, o.charge.payment_id).at(0);
    if (net[0].as<std::int64_t>() <= 0 && !net[1].is_null()) {
      const auto refund = tx.exec_prepared(read_seq_stmt, net[1].as<std::int64_t>());
      if (refund.empty()) throw std::runtime_error("payment_ledger lost a refund row");
      o.refunded = true;
      o.refund = entry_from_row(refund[0]);
      return o;
    }
    const auto fresh = detail::refund_for(r, o.charge);
    const auto inserted =
        tx.exec_prepared(insert_refund_stmt, fresh.idempotency_key, fresh.payment_id,
                         fresh.order_id, fresh.amount, fresh.transaction_id, fresh.reason);
    if (inserted.empty()) {
      // A concurrent void took the refund key meanwhile.
      if (!refund_by_key(tx, r, o)) {
        throw std::runtime_error("payment_ledger lost the row of a taken refund key");
      }
      return o;
    }
    o.refunded = true;
    o.refund = entry_from_row(inserted[0]);
    o.replayed = false;
    return o;
  }

  // The entry under the refund key, if any, settles the void (as its refund, or as misuse).
  static bool refund_by_key(pqxx::work& tx, const void_request& r, void_outcome& o) {
    const auto known = tx.exec_prepared(read_key_stmt, r.refund_key);
    if (known.empty()) return false;
    auto stored = entry_from_row(known[0]);
    if (auto e = detail::refund_misuse(r, o.charge, stored)) {
      o.error = std::move(*e);
      return true;
    }
    o.refunded = true;
    o.refund = std::move(stored);
    return true;
  }

  // Connects if not connected; returns why it could not.
  std::optional<std::string> ensure_connected() {
    if (conn_ && conn_->is_open()) return std::nullopt;
    conn_.reset();
    try {
      auto c = std::make_unique<pqxx::connection>(database_url_);
      // libpqxx 6 would silently reconnect a broken connection and lose the session settings
      // below; we reconnect ourselves instead.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      {
        pqxx::nontransaction tx(*c);
        // An answered charge must be durable whatever the server default is. The schema in the
        // application name lets operators (and fault tests) find this connection.
        std::string app = "saga-ledger";
        if (!schema_.empty()) app += "/" + schema_;
        app.resize(std::min<std::size_t>(app.size(), 63));  // NAMEDATALEN - 1
        // Every hot statement here finds rows by key (or by order): a sequential scan is never
        // the plan we want. A table that is young or grew since it was last analyzed looks tiny
        // to the planner, which then caches a generic plan that scans it whole for each batch's
        // key lookup (the ledger cost grew with its size: O(n) per batch). Audits that read the
        // whole table still get a scan where no index serves them.
        std::string setup =
            "SET synchronous_commit TO on; SET enable_seqscan TO off; SET application_name TO " +
            tx.quote(app);
        if (!schema_.empty()) setup += "; SET search_path TO " + tx.quote_name(schema_);
        // Fail here, clearly, if migration 0003 has not been applied.
        setup += "; SELECT 'payment_ledger'::regclass";
        tx.exec(setup);
      }
      c->prepare(record_stmt, record_sql);
      c->prepare(read_keys_stmt, read_keys_sql);
      c->prepare(of_order_stmt, of_order_sql);
      c->prepare(charged_twice_stmt, charged_twice_sql);
      c->prepare(tombstone_stmt, tombstone_sql);
      c->prepare(lock_key_stmt, lock_key_sql);
      c->prepare(read_key_stmt, read_key_sql);
      c->prepare(payment_net_stmt, payment_net_sql);
      c->prepare(read_seq_stmt, read_seq_sql);
      c->prepare(insert_refund_stmt, insert_refund_sql);
      conn_ = std::move(c);
      return std::nullopt;
    } catch (...) {
      return "payment ledger: " +
             detail::classify_current_exception("connecting to PostgreSQL").error.message;
    }
  }

  template <class T, class F>
  expected<T, std::string> guarded(const char* context, F&& body) {
    if (auto error = ensure_connected()) return unexpected{std::move(*error)};
    try {
      return body();
    } catch (...) {
      auto c = detail::classify_current_exception(context);
      if (c.connection_unusable || (conn_ && !conn_->is_open())) conn_.reset();
      return unexpected{"payment ledger: " + c.error.message};
    }
  }

  std::string database_url_;
  std::string schema_;
  std::mutex mutex_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

std::unique_ptr<payment_ledger> make_pg_ledger(const std::string& database_url,
                                               const std::string& schema) {
  return std::make_unique<pg_ledger>(database_url, schema);
}

}  // namespace saga::persistence

#include "persistence/pg_event_store.hpp"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>

#include <pqxx/pqxx>

#include "persistence/pg_error.hpp"
#include "persistence/pg_rows.hpp"

namespace saga::persistence {

namespace {

#define SAGA_EVENT_COLUMNS                                                                  \
  "position, stream_id, stream_type, version, event_id::text, event_type, schema_version, " \
  "payload::text, metadata::text, (extract(epoch FROM recorded_at) * 1000)::bigint"

constexpr const char* read_stream_stmt = "saga_read_stream";
constexpr const char* read_stream_sql =
    "SELECT " SAGA_EVENT_COLUMNS
    " FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3";

constexpr const char* read_all_stmt = "saga_read_all";
constexpr const char* read_all_sql =
    "SELECT " SAGA_EVENT_COLUMNS " FROM events WHERE position > $1 ORDER BY position LIMIT $2";

#undef SAGA_EVENT_COLUMNS

// A whole batch the store vouches for: one statement in its own transaction (0007).
constexpr const char* append_stmt = "saga_journal_append";
constexpr const char* append_sql = "SELECT journal_append($1::jsonb)";

constexpr const char* stream_version_stmt = "saga_stream_version";
constexpr const char* stream_version_sql =
    "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1";

constexpr const char* save_snapshot_stmt = "saga_save_snapshot";
constexpr const char* save_snapshot_sql =
    "INSERT INTO snapshots AS s (stream_id, stream_type, version, schema_version, payload) "
    "VALUES ($1, $2, $3, $4, $5::jsonb) "
    "ON CONFLICT (stream_id) DO UPDATE SET stream_type = EXCLUDED.stream_type, "
    "version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, "
    "payload = EXCLUDED.payload, taken_at = now() "
    "WHERE s.version < EXCLUDED.version RETURNING 1";

constexpr const char* load_snapshot_stmt = "saga_load_snapshot";
constexpr const char* load_snapshot_sql =
    "SELECT stream_type, version, schema_version, payload::text, "
    "(extract(epoch FROM taken_at) * 1000)::bigint FROM snapshots WHERE stream_id = $1";

// The newest event per stream of a type (DISTINCT ON walks the (stream_id, version) order),
// then the filter on its type: a filter inside the scan would find older events instead.
constexpr const char* stream_heads_sql =
    "SELECT stream_id, version, event_type, payload::text FROM ("
    " SELECT DISTINCT ON (stream_id) stream_id, version, event_type, payload FROM events"
    " WHERE stream_type = $1 ORDER BY stream_id, version DESC) AS heads"
    " WHERE cardinality($2::text[]) = 0 OR event_type = ANY($2::text[]) ORDER BY stream_id";

// Appends one event to a journal_append JSON array (see 0006_journal_append.sql). The payload
// and metadata are spliced in as they are: validate_append checked that the payload is one
// storable JSON object, and metadata_to_json renders an object, so the array stays well formed;
// only the plain strings need escaping.
void append_event_json(std::string& out, const append_request& r, std::int64_t version,
                       const new_event& ev) {
  out.push_back('[');
  append_json_string(out, r.stream_id);
  out.push_back(',');
  append_json_string(out, r.stream_type);
  out.push_back(',');
  out += std::to_string(version);
  out += ",\"";
  out += ev.event_id;  // validated: hex digits and dashes only
  out += "\",";
  append_json_string(out, ev.event_type);
  out.push_back(',');
  out += std::to_string(ev.schema_version);
  out.push_back(',');
  out += ev.payload;
  out.push_back(',');
  out += metadata_to_json(ev.metadata);
  out.push_back(',');
  if (ev.metadata.correlation_id.empty()) {
    out += "null";
  } else {
    append_json_string(out, ev.metadata.correlation_id);
  }
  out.push_back(']');
}

// A journal_append call carries at most about this much JSON (jsonb values are limited to
// 256 MB, and one huge literal would need as much memory again on both sides), and a query
// string is sent mid-transaction once it holds this much. Events are up to 1 MB each, so a
// batch at the writer's limits may need several of each.
constexpr std::size_t append_call_bytes = std::size_t{8} << 20;
constexpr std::size_t query_send_bytes = std::size_t{32} << 20;

std::int64_t clamp_limit(std::size_t limit) {
  constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(limit, max));
}

store_error conflict(const append_request& request, std::int64_t actual) {
  return store_error{store_errc::version_conflict,
                     "stream " + request.stream_id + " is at version " + std::to_string(actual) +
                         ", expected " + std::to_string(request.expected_version),
                     actual};
}

/// host_of entry of a request that is not a rider.
constexpr std::size_t no_host = static_cast<std::size_t>(-1);

store_error not_written() {
  return store_error{store_errc::internal, "not written (bug: no outcome recorded)", -1};
}

}  // namespace

struct pg_event_store::impl {
  pg_store_options options;
  std::unique_ptr<pqxx::connection> conn;
  std::uint64_t round_trips = 0;
  std::uint64_t connections = 0;
  // Stream → a version this store knows is committed (it wrote, or was told under the journal
  // lock). Events are never deleted, so that version exists for ever: a request expecting it
  // cannot leave a gap, and if the stream has moved on the unique index stops the insert. Such
  // requests (and new streams) skip journal_check's per-stream lookups. With it, the id of the
  // event at that version when this store wrote it (empty when unknown): a rider naming that
  // event (append_request::after_event_id) is vouched for; riders are never looked up.
  struct known_stream {
    std::int64_t version = 0;
    std::string last_event_id;
  };
  // In two generations of at most half the capacity each: when the newer one is full it becomes
  // the older one and the older one is dropped, and a stream found in the older one moves to the
  // newer. So a stream written to lately is never forgotten (a popular product, whose actor
  // appends behind its own appends in flight and names the event it follows).
  std::unordered_map<std::string, known_stream> known_versions;
  std::unordered_map<std::string, known_stream> known_before;

  [[nodiscard]] const known_stream* known(const std::string& stream) const {
    if (const auto k = known_versions.find(stream); k != known_versions.end()) return &k->second;
    if (const auto k = known_before.find(stream); k != known_before.end()) return &k->second;
    return nullptr;
  }
  void remember(const std::string& stream, std::int64_t version, const std::string& last_id);
  void remember_written(const std::vector<const append_request*>& valid,
                        const std::vector<append_result>& out);

  std::optional<store_error> ensure_connected();
  detail::classified_error fail(const std::string& context);
  std::string check_statement(pqxx::transaction_base& tx,
                              const std::vector<const append_request*>& valid,
                              const std::vector<std::size_t>& members, bool probe_all) const;
  std::vector<append_result> write(const std::vector<const append_request*>& valid,
                                   const std::vector<std::size_t>& host_of,
                                   const std::vector<std::vector<std::size_t>>& rounds,
                                   bool probe_all);
  template <class T, class F>
  expected<T, store_error> guarded(const char* context, F&& body);
};

std::optional<store_error> pg_event_store::impl::ensure_connected() {
  if (conn && conn->is_open()) return std::nullopt;
  conn.reset();
  try {
    auto c = std::make_unique<pqxx::connection>(options.database_url);
    ++connections;
    // libpqxx 6 would silently reconnect a broken connection and lose the session settings
    // below; we reconnect ourselves instead.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    {
      pqxx::nontransaction tx(*c);
      // An acknowledged append must be durable whatever the server default is.
      std::string setup = "SET synchronous_commit TO on; SET application_name TO " +
                          tx.quote(options.application_name);
      if (!options.schema.empty()) setup += "; SET search_path TO " + tx.quote_name(options.schema);
      // Fail here, clearly, if the journal's migrations have not been applied.
      setup +=
          "; SELECT 'journal_check(boolean,text[],bigint[],integer[],uuid[])'::regprocedure, "
          "'journal_append(jsonb)'::regprocedure";
      ++round_trips;
      tx.exec(setup);
    }
    c->prepare(append_stmt, append_sql);
    c->prepare(read_stream_stmt, read_stream_sql);
    c->prepare(read_all_stmt, read_all_sql);
    c->prepare(stream_version_stmt, stream_version_sql);
    c->prepare(save_snapshot_stmt, save_snapshot_sql);
    c->prepare(load_snapshot_stmt, load_snapshot_sql);
    conn = std::move(c);
    return std::nullopt;
  } catch (...) {
    return detail::classify_current_exception("connecting to PostgreSQL").error;
  }
}

// Classifies the exception being handled and drops the connection if it cannot be reused.
detail::classified_error pg_event_store::impl::fail(const std::string& context) {
  auto c = detail::classify_current_exception(context);
  if (c.connection_unusable || (conn && !conn->is_open())) {
    conn.reset();
    c.error.code = store_errc::retryable;
    c.connection_unusable = true;
  }
  return c;
}

template <class T, class F>
expected<T, store_error> pg_event_store::impl::guarded(const char* context, F&& body) {
  if (auto error = ensure_connected()) return unexpected{std::move(*error)};
  try {
    return body();
  } catch (...) {
    return unexpected{fail(context).error};
  }
}

void pg_event_store::impl::remember(const std::string& stream, std::int64_t version,
                                    const std::string& last_id) {
  if (version <= 0) return;
  auto it = known_versions.find(stream);
  if (it == known_versions.end()) {
    // Bounded; a miss only costs a lookup in journal_check (or, for an append that names the
    // event it follows, a conflict: its actor decides again).
    if (known_versions.size() >= std::max<std::size_t>(1, options.known_versions_capacity / 2)) {
      known_before = std::move(known_versions);
      known_versions.clear();
    }
    known_stream seed;
    if (const auto old = known_before.find(stream); old != known_before.end()) {
      seed = std::move(old->second);
      known_before.erase(old);
    }
    it = known_versions.emplace(stream, std::move(seed)).first;
  }
  auto& entry = it->second;
  if (version > entry.version) {
    entry.version = version;
    entry.last_event_id = last_id;
  } else if (version == entry.version && !last_id.empty()) {
    entry.last_event_id = last_id;
  }
}

// A call of journal_check for `members` as SQL text: literals instead of parameters, so that it
// can share a simple-protocol query string (and so a round trip) with BEGIN.
std::string pg_event_store::impl::check_statement(pqxx::transaction_base& tx,
                                                  const std::vector<const append_request*>& valid,
                                                  const std::vector<std::size_t>& members,
                                                  bool probe_all) const {
  std::string streams = "{", expected = "{", counts = "{", event_ids = "{";
  for (const auto i : members) {
    const auto& r = *valid[i];
    if (streams.size() > 1) {
      streams.push_back(',');
      expected.push_back(',');
      counts.push_back(',');
    }
    detail::append_array_text(streams, r.stream_id);
    expected += std::to_string(r.expected_version);
    counts += std::to_string(r.events.size());
    for (const auto& ev : r.events) {
      if (event_ids.size() > 1) event_ids.push_back(',');
      event_ids += ev.event_id;  // validated: hex digits and dashes only
    }
  }
  streams.push_back('}');
  expected.push_back('}');
  counts.push_back('}');
  event_ids.push_back('}');
  return std::string("SELECT request, outcome, stream_version, last_position FROM journal_check(") +
         (probe_all ? "true, " : "false, ") + tx.quote(streams) + "::text[], '" + expected +
         "'::bigint[], '" + counts + "'::integer[], '" + event_ids + "'::uuid[])";
}

// One attempt at the batch in one transaction, in as few round trips as the checks allow.
//
// A batch whose every request this store vouches for, and whose events fit one journal_append
// call, is that call alone: a prepared statement in its own implicit transaction, which
// returns the last position drawn. One round trip, and the server lexes no SQL around the JSON.
//
// Otherwise SQL is queued in one simple-protocol query string and sent only when an answer is
// needed: the results of journal_check for a round with requests this store cannot vouch for
// (BEGIN and the events approved in earlier rounds go along), and at the end COMMIT. Each round
// that needs a check costs one more round trip. (options.before_commit, a test hook, costs one
// more: the rows are sent before it runs, COMMIT after; so does every query_send_bytes of
// events.) Throws on any failure, after rolling back.
std::vector<append_result> pg_event_store::impl::write(
    const std::vector<const append_request*>& valid, const std::vector<std::size_t>& host_of,
    const std::vector<std::vector<std::size_t>>& rounds, bool probe_all) {
  std::vector<append_result> out(valid.size(), unexpected{not_written()});
  pqxx::nontransaction tx(*conn);
  std::vector<std::pair<std::size_t, std::size_t>> inserted;  // request, events, in insert order
  std::vector<std::size_t> unsent;  // approved requests not yet in `sql`, in insert order
  // Versions written earlier in this transaction (a later round builds on them), with the id of
  // the last event written to each stream.
  std::unordered_map<std::string_view, std::int64_t> in_transaction_versions;
  std::unordered_map<std::string_view, std::string_view> in_transaction_last_ids;
  const auto approve = [&](std::size_t i) {
    const auto& request = *valid[i];
    const auto version =
        request.expected_version + static_cast<std::int64_t>(request.events.size());
    out[i] = append_ok{version, 0, false, {}};  // last_position once committed
    in_transaction_versions[request.stream_id] = version;
    in_transaction_last_ids[request.stream_id] = request.events.back().event_id;
    inserted.emplace_back(i, request.events.size());
    unsent.push_back(i);
  };
  // A stream's version and last event id as this transaction's writes or the store's memory of
  // its own writes have them, if either does; never looked up (see append_request).
  struct head {
    std::int64_t version;
    std::string_view last_event_id;
  };
  const auto head_of = [&](const std::string& stream) -> std::optional<head> {
    if (const auto p = in_transaction_versions.find(stream); p != in_transaction_versions.end())
      return head{p->second, in_transaction_last_ids[stream]};
    if (const auto* k = known(stream)) return head{k->version, k->last_event_id};
    return std::nullopt;
  };
  // Whether this store can vouch that r's stream is at r's expected version and ends there with
  // the event r.after_event_id names (if it names one).
  const auto follows = [&](const append_request& r) {
    const auto h = head_of(r.stream_id);
    // A stream it knows nothing of: a new stream, as for any request (the unique index stops
    // the rest); it has no event to follow.
    if (!h) return r.expected_version == 0 && r.after_event_id.empty();
    return h->version == r.expected_version &&
           (r.after_event_id.empty() || h->last_event_id == r.after_event_id);
  };
  // A rider goes in only with its host written afresh, and only where the store vouches for it.
  const auto rider_applies = [&](std::size_t i) {
    const auto& host = out[host_of[i]];
    return !probe_all && host && !host->duplicate && follows(*valid[i]);
  };
  std::string sql = "BEGIN; ";
  bool in_transaction = false;
  const auto send = [&] {
    ++round_trips;
    in_transaction = true;
    auto result = tx.exec(sql);
    sql.clear();
    return result;
  };
  // The approved events not yet queued, in order, as journal_append arguments: one JSON array,
  // or several for a huge batch (positions stay contiguous: the calls run one after the other
  // under the lock).
  std::string json;
  std::vector<std::string> calls;
  const auto take_unsent = [&] {
    const auto close_call = [&] {
      json.push_back(']');
      calls.push_back(std::move(json));
      json.clear();
    };
    for (const auto i : unsent) {
      const auto& r = *valid[i];
      std::int64_t version = r.expected_version;
      for (const auto& ev : r.events) {
        json.push_back(json.empty() ? '[' : ',');
        append_event_json(json, r, ++version, ev);
        if (json.size() >= append_call_bytes) close_call();
      }
    }
    if (!json.empty()) close_call();
    unsent.clear();
  };
  // Queues them in `sql`, so that what follows there sees them.
  const auto queue_inserts = [&] {
    take_unsent();
    for (auto& call : calls) {
      sql += "SELECT journal_append(";
      sql += tx.quote(call);
      sql += "::jsonb); ";
      if (sql.size() >= query_send_bytes) send();
    }
    calls.clear();
  };
  // Hands out the positions of `inserted`, given the last one drawn.
  const auto assign_positions = [&](std::int64_t last) {
    for (auto it = inserted.rbegin(); it != inserted.rend(); ++it) {
      out[it->first]->last_position = last;
      last -= static_cast<std::int64_t>(it->second);
    }
  };
  try {
    for (const auto& round : rounds) {
      std::vector<std::size_t> approved, to_check, riders;
      for (const auto i : round) {
        if (host_of[i] != no_host) {
          riders.push_back(i);
          continue;
        }
        const auto& r = *valid[i];
        bool vouched = !probe_all && r.expected_version == 0;
        if (!probe_all && !vouched) {
          const auto h = head_of(r.stream_id);
          vouched = h && h->version == r.expected_version;
        }
        (vouched ? approved : to_check).push_back(i);
      }
      if (!to_check.empty()) {
        // The check sees the rows of earlier rounds: they precede it in the query string.
        queue_inserts();
        sql += check_statement(tx, valid, to_check, probe_all);
        const auto rows = send();
        if (rows.size() != to_check.size()) {
          throw std::runtime_error("journal_check returned " + std::to_string(rows.size()) +
                                   " rows for " + std::to_string(to_check.size()) + " requests");
        }
        for (const auto& row : rows) {
          const auto k = static_cast<std::size_t>(row[0].as<int>() - 1);
          if (k >= to_check.size()) throw std::runtime_error("journal_check: bad request index");
          const auto i = to_check[k];
          const auto& request = *valid[i];
          const std::string_view outcome = row[1].c_str();
          const auto version = row[2].as<std::int64_t>();
          if (outcome == "ok") {
            approved.push_back(i);
          } else if (outcome == "duplicate") {
            out[i] = append_ok{version, row[3].as<std::int64_t>(), true, {}};
          } else if (outcome == "conflict") {
            out[i] = unexpected{conflict(request, version)};
          } else if (outcome == "invalid") {
            out[i] = unexpected{store_error{store_errc::invalid_request,
                                            "an event_id is already used by another stream", -1}};
          } else {
            throw std::runtime_error("journal_check: unknown outcome '" + std::string(outcome) +
                                     "'");
          }
        }
        std::sort(approved.begin(), approved.end());  // request order, for positions
      }
      for (const auto i : approved) {
        // A request that names the event it must follow: only on top of that very event.
        if (valid[i]->after_event_id.empty() || follows(*valid[i])) {
          approve(i);
        } else {
          out[i] = unexpected{store_error{store_errc::version_conflict,
                                          "stream " + valid[i]->stream_id +
                                              " does not end with the event the append follows, "
                                              "or the store cannot vouch that it does",
                                          -1}};
        }
      }
      // After their hosts: a rider's round is never earlier than its host's.
      for (const auto i : riders) {
        if (rider_applies(i)) {
          approve(i);
        } else {
          out[i] = unexpected{store_error{store_errc::version_conflict,
                                          "rider not written: its host was not, or the store "
                                          "cannot vouch for its stream's last event",
                                          -1}};
        }
      }
    }
    if (!in_transaction && !options.before_commit) {
      take_unsent();
      if (calls.size() == 1) {
        ++round_trips;
        assign_positions(tx.exec_prepared1(append_stmt, calls.front())[0].as<std::int64_t>());
        calls.clear();
        remember_written(valid, out);
        return out;
      }
    }
    queue_inserts();
    if (options.before_commit) {
      if (!sql.empty()) send();
      options.before_commit();
    }
    if (inserted.empty()) {
      sql += "COMMIT";
      send();
    } else {
      // Under the journal lock this transaction drew its positions contiguously, in insert
      // order, so the last one tells them all. currval is per session and survives COMMIT.
      sql += "COMMIT; SELECT currval(pg_get_serial_sequence('events', 'position'))";
      assign_positions(send()[0][0].as<std::int64_t>());
    }
  } catch (...) {
    if (in_transaction && conn && conn->is_open()) {
      try {
        tx.exec("ROLLBACK");
      } catch (...) {
        // The original failure is what the caller needs to see.
      }
    }
    throw;
  }
  remember_written(valid, out);
  return out;
}

void pg_event_store::impl::remember_written(const std::vector<const append_request*>& valid,
                                            const std::vector<append_result>& out) {
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (out[i]) {
      remember(valid[i]->stream_id, out[i]->version,
               out[i]->duplicate ? std::string{} : valid[i]->events.back().event_id);
    } else if (out[i].error().code == store_errc::version_conflict) {
      remember(valid[i]->stream_id, out[i].error().actual_version, {});  // seen under the lock
    }
  }
}

pg_event_store::pg_event_store(pg_store_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
}

pg_event_store::pg_event_store(const std::string& database_url)
    : pg_event_store([&] {
        pg_store_options o;
        o.database_url = database_url;
        return o;
      }()) {}

pg_event_store::~pg_event_store() = default;

std::vector<append_result> pg_event_store::append_batch(
    const std::vector<append_request>& requests) {
  return write_requests(requests, false);
}

std::vector<append_result> pg_event_store::append_checked_batch(
    const std::vector<append_request>& requests) {
  return write_requests(requests, true);
}

std::vector<append_result> pg_event_store::write_requests(
    const std::vector<append_request>& requests, bool checked) {
  std::vector<append_result> results(requests.size(), unexpected{not_written()});
  // A request's riders follow it in `valid`, each with its host's index in host_of.
  std::vector<const append_request*> valid;
  std::vector<std::size_t> origin;        // valid index → request index (riders: no_host)
  std::vector<std::size_t> host_of;       // valid index → its host's valid index, or no_host
  std::deque<append_request> normalized;  // lower-cased copies, only when a request needs one
  valid.reserve(requests.size());
  origin.reserve(requests.size());
  host_of.reserve(requests.size());
  const auto has_upper = [](const append_request& r) {
    const auto upper = [](const std::string& id) {
      return std::any_of(id.begin(), id.end(), [](char c) { return c >= 'A' && c <= 'F'; });
    };
    return upper(r.after_event_id) ||
           std::any_of(r.events.begin(), r.events.end(),
                       [&](const new_event& ev) { return upper(ev.event_id); });
  };
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (auto error = checked ? std::nullopt : validate_append(requests[i])) {
      results[i] = unexpected{std::move(*error)};
      continue;
    }
    const auto& riders = requests[i].riders;
    const append_request* request = &requests[i];
    if (!checked && (has_upper(*request) || std::any_of(riders.begin(), riders.end(), has_upper))) {
      normalized.push_back(requests[i]);
      normalize_event_ids(normalized.back());
      request = &normalized.back();
    }
    const auto host = valid.size();
    valid.push_back(request);
    origin.push_back(i);
    host_of.push_back(no_host);
    for (const auto& rider : request->riders) {
      valid.push_back(&rider);
      origin.push_back(no_host);
      host_of.push_back(host);
    }
  }
  if (valid.empty()) return results;

  // journal_check takes each stream and event id at most once per call; a request that
  // repeats an earlier one's stream or event id goes to a later round of the same transaction,
  // where it sees the earlier request's rows (so it builds on it, or is a duplicate of it).
  std::vector<std::vector<std::size_t>> rounds(1);
  {
    std::unordered_map<std::string_view, std::size_t> stream_round, id_round;
    std::vector<std::size_t> round_of(valid.size());
    stream_round.reserve(valid.size());
    id_round.reserve(valid.size());
    for (std::size_t i = 0; i < valid.size(); ++i) {
      std::size_t round = 0;
      const auto bump = [&round](auto& seen, std::string_view key) {
        const auto it = seen.find(key);
        if (it != seen.end()) round = std::max(round, it->second + 1);
      };
      bump(stream_round, valid[i]->stream_id);
      for (const auto& ev : valid[i]->events) bump(id_round, ev.event_id);
      // A rider never goes before its host, whose outcome it depends on.
      if (host_of[i] != no_host) round = std::max(round, round_of[host_of[i]]);
      round_of[i] = round;
      stream_round[valid[i]->stream_id] = round;
      for (const auto& ev : valid[i]->events) id_round[ev.event_id] = round;
      if (round >= rounds.size()) rounds.resize(round + 1);
      rounds[round].push_back(i);
    }
  }

  std::vector<std::size_t> hosts;  // valid indexes of the requests themselves
  for (std::size_t k = 0; k < valid.size(); ++k) {
    if (host_of[k] == no_host) hosts.push_back(k);
  }
  const auto fail_all = [&](const store_error& error) {
    for (const auto k : hosts) results[origin[k]] = unexpected{error};
    return results;
  };
  if (auto error = impl_->ensure_connected()) return fail_all(*error);

  store_error error;
  for (bool probe_all : {false, true}) {
    try {
      auto written = impl_->write(valid, host_of, rounds, probe_all);
      for (std::size_t k = 0; k < valid.size(); ++k) {
        if (host_of[k] == no_host) {
          results[origin[k]] = std::move(written[k]);
        } else if (auto& host = results[origin[host_of[k]]]) {
          host->riders_written.push_back(written[k] ? 1 : 0);
        }
      }
      return results;
    } catch (...) {
      const auto c = impl_->fail("appending to the journal");
      error = c.error;
      // A fresh request reused a stored event id (or a writer bypassed the journal lock): the
      // insert hit a unique index. Check again, looking up every id this time.
      if (!(c.unique_violation && !probe_all && impl_->conn)) break;
    }
  }

  const bool request_level =
      error.code == store_errc::invalid_request || error.code == store_errc::version_conflict;
  if (!request_level || !impl_->conn) return fail_all(error);
  if (hosts.size() == 1 && valid.size() > 1) {
    // The request or one of its riders: the request alone, then.
    auto alone = *valid[0];
    alone.riders.clear();
    results[origin[0]] = std::move(append_batch({alone}).front());
    if (results[origin[0]]) results[origin[0]]->riders_written.assign(valid.size() - 1, 0);
    return results;
  }
  if (hosts.size() == 1) {
    if (error.code == store_errc::version_conflict) {
      try {
        pqxx::nontransaction tx(*impl_->conn);
        ++impl_->round_trips;
        error.actual_version =
            tx.exec_prepared1(stream_version_stmt, valid[0]->stream_id)[0].as<std::int64_t>();
      } catch (...) {
        (void)impl_->fail("reading the stream version");
      }
    }
    results[origin[0]] = unexpected{std::move(error)};
    return results;
  }
  // The database rejected one request's data for the whole batch (e.g. a constraint added
  // outside the migrations); isolate it by writing the requests one by one, in order.
  for (const auto k : hosts) results[origin[k]] = std::move(append_batch({*valid[k]}).front());
  return results;
}

expected<std::vector<recorded_event>, store_error> pg_event_store::read_stream(
    const std::string& stream_id, std::int64_t from_version, std::size_t limit) {
  return impl_->guarded<std::vector<recorded_event>>("reading a stream", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    ++impl_->round_trips;
    const auto rows =
        tx.exec_prepared(read_stream_stmt, stream_id, from_version, clamp_limit(limit));
    std::vector<recorded_event> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(detail::event_from_row(row));
    return out;
  });
}

expected<std::vector<recorded_event>, store_error> pg_event_store::read_all(
    std::int64_t after_position, std::size_t limit) {
  return impl_->guarded<std::vector<recorded_event>>("reading the journal", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    ++impl_->round_trips;
    const auto rows = tx.exec_prepared(read_all_stmt, after_position, clamp_limit(limit));
    std::vector<recorded_event> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(detail::event_from_row(row));
    return out;
  });
}

expected<std::vector<stream_head>, store_error> pg_event_store::stream_heads(
    const std::string& stream_type, const std::vector<std::string>& last_event_types) {
  std::string types = "{";
  for (std::size_t i = 0; i < last_event_types.size(); ++i) {
    if (i > 0) types.push_back(',');
    detail::append_array_text(types, last_event_types[i]);
  }
  types.push_back('}');
  return impl_->guarded<std::vector<stream_head>>("finding stream heads", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    ++impl_->round_trips;
    const auto rows = tx.exec_params(stream_heads_sql, stream_type, types);
    std::vector<stream_head> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      stream_head head;
      head.stream_id = row[0].as<std::string>();
      head.version = row[1].as<std::int64_t>();
      head.event_type = row[2].as<std::string>();
      head.payload = row[3].as<std::string>();
      out.push_back(std::move(head));
    }
    return out;
  });
}

expected<bool, store_error> pg_event_store::save_snapshot(const snapshot& snap) {
  if (auto error = validate_snapshot(snap)) return unexpected{std::move(*error)};
  return impl_->guarded<bool>("saving a snapshot", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    ++impl_->round_trips;
    const auto rows = tx.exec_prepared(save_snapshot_stmt, snap.stream_id, snap.stream_type,
                                       snap.version, snap.schema_version, snap.payload);
    return !rows.empty();
  });
}

expected<std::optional<snapshot>, store_error> pg_event_store::load_snapshot(
    const std::string& stream_id) {
  return impl_->guarded<std::optional<snapshot>>("loading a snapshot", [&] {
    pqxx::nontransaction tx(*impl_->conn);
    ++impl_->round_trips;
    const auto rows = tx.exec_prepared(load_snapshot_stmt, stream_id);
    if (rows.empty()) return std::optional<snapshot>{};
    const auto& row = rows[0];
    snapshot s;
    s.stream_id = stream_id;
    s.stream_type = row[0].c_str();
    s.version = row[1].as<std::int64_t>();
    s.schema_version = row[2].as<int>();
    s.payload = row[3].c_str();
    s.taken_at_ms = row[4].as<std::int64_t>();
    return std::optional<snapshot>{std::move(s)};
  });
}

expected<done, store_error> pg_event_store::connect() {
  if (auto error = impl_->ensure_connected()) return unexpected{std::move(*error)};
  return done{};
}

expected<int, store_error> pg_event_store::backend_pid() {
  return impl_->guarded<int>("reading the backend pid", [&] { return impl_->conn->backendpid(); });
}

std::uint64_t pg_event_store::round_trips() const noexcept { return impl_->round_trips; }

std::uint64_t pg_event_store::connections_opened() const noexcept { return impl_->connections; }

namespace detail {

recorded_event event_from_row(const pqxx::row& row) {
  recorded_event e;
  e.position = row[0].as<std::int64_t>();
  e.stream_id = row[1].c_str();
  e.stream_type = row[2].c_str();
  e.version = row[3].as<std::int64_t>();
  e.event_id = row[4].c_str();
  e.event_type = row[5].c_str();
  e.schema_version = row[6].as<int>();
  e.payload = row[7].c_str();
  e.metadata = metadata_from_json(row[8].c_str());
  e.recorded_at_ms = row[9].as<std::int64_t>();
  return e;
}

void append_array_text(std::string& out, const std::string& value) {
  out.push_back('"');
  for (const char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace detail

}  // namespace saga::persistence

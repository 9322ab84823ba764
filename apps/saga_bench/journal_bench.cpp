// `saga-bench journal`: events/s of (a) one event per transaction through pg_event_store,
// (b) the raw batch path (plain libpqxx COPY into `events`, no framework, as many events per
// transaction as the writer gets streams, so both pay the same commits) and (c) the group-commit
// writer fed by many concurrent streams, all in one run against one database. (b) and (c)
// alternate in rounds so that a change in machine load hits both alike. Runs in a scratch
// schema (dropped afterwards): the figures neither depend on nor pollute the real journal.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "apps/saga_bench/common.hpp"
#include "apps/saga_bench/modes.hpp"
#include "persistence/group_commit_writer.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_admin.hpp"
#include "persistence/pg_event_store.hpp"

namespace saga::bench {

namespace {

namespace sp = saga::persistence;
using clock_type = std::chrono::steady_clock;

struct journal_config {
  std::string database_url;
  std::string schema;
  bool keep_schema = false;
  std::size_t events = 60000;         // raw and writer paths, each
  std::size_t one_per_tx_events = 0;  // 0: events / 20
  std::size_t streams = 256;
  std::size_t raw_batch = 0;  // 0: streams
  std::size_t rounds = 3;
  std::size_t payload_bytes = 200;
  sp::writer_options writer;
};

bool known_option(const std::string& key) {
  static const char* const keys[] = {
      "--database-url", "--schema", "--events",        "--one-per-tx-events", "--streams",
      "--raw-batch",    "--rounds", "--payload-bytes", "--max-batch-events",  "--linger-us"};
  return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

journal_config parse(const std::vector<std::string>& args) {
  journal_config c;
  if (const char* url = std::getenv("DATABASE_URL")) c.database_url = url;
  c.writer.linger = std::chrono::microseconds(0);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string key = args[i];
    std::string value;
    const auto eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (key == "--keep-schema") {
      c.keep_schema = true;
      continue;
    } else if (key.rfind("--", 0) != 0 || !known_option(key)) {
      throw bad_args("unknown option " + key);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw bad_args(key + " needs a value");
    }
    if (key == "--database-url") {
      c.database_url = value;
    } else if (key == "--schema") {
      c.schema = value;
    } else if (key == "--events") {
      c.events = parse_count(key, value, 1);
    } else if (key == "--one-per-tx-events") {
      c.one_per_tx_events = parse_count(key, value, 1);
    } else if (key == "--streams") {
      c.streams = parse_count(key, value, 1);
    } else if (key == "--raw-batch") {
      c.raw_batch = parse_count(key, value, 1);
    } else if (key == "--rounds") {
      c.rounds = parse_count(key, value, 1);
    } else if (key == "--payload-bytes") {
      c.payload_bytes = parse_count(key, value, 64);
    } else if (key == "--max-batch-events") {
      c.writer.max_batch_events = parse_count(key, value, 1);
      c.writer.max_batch_requests = c.writer.max_batch_events;
    } else if (key == "--linger-us") {
      c.writer.linger = std::chrono::microseconds(parse_count(key, value, 0));
    } else {
      throw bad_args("unknown option " + key);
    }
  }
  if (c.database_url.empty()) throw bad_args("set DATABASE_URL or pass --database-url");
  if (c.one_per_tx_events == 0) c.one_per_tx_events = std::max<std::size_t>(c.events / 20, 100);
  if (c.raw_batch == 0) c.raw_batch = c.streams;
  c.rounds = std::min(c.rounds, c.events);
  return c;
}

// A realistic ~payload_bytes JSON object (an order-ish event), different per event.
std::string make_payload(std::size_t i, std::size_t bytes) {
  std::string p = "{\"orderId\":\"" + sp::new_uuid() + "\",\"customerId\":\"c-" +
                  std::to_string(i % 9973) +
                  "\",\"items\":[{\"productId\":\"p-42\",\"quantity\":2,\"price\":1999}],"
                  "\"total\":3998,\"note\":\"";
  const std::size_t tail = 2;  // "}
  if (p.size() + tail < bytes) p.append(bytes - p.size() - tail, 'x');
  p += "\"}";
  return p;
}

struct bench_event {
  std::string event_id;
  std::string payload;
};

std::vector<bench_event> make_events(std::size_t n, std::size_t bytes) {
  std::vector<bench_event> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back({sp::new_uuid(), make_payload(i, bytes)});
  return out;
}

sp::new_event to_new_event(const bench_event& e) {
  sp::new_event ev;
  ev.event_id = e.event_id;
  ev.event_type = "BenchEventRecorded";
  ev.schema_version = 1;
  ev.payload = e.payload;
  ev.metadata.correlation_id = "bench";
  return ev;
}

sp::pg_store_options store_options(const journal_config& c, const std::string& application) {
  sp::pg_store_options o;
  o.database_url = c.database_url;
  o.schema = c.schema;
  o.application_name = application;
  return o;
}

struct figure {
  std::size_t events = 0;
  double seconds = 0;
  [[nodiscard]] double eps() const {
    return seconds > 0 ? static_cast<double>(events) / seconds : 0;
  }
  figure& operator+=(const figure& other) {
    events += other.events;
    seconds += other.seconds;
    return *this;
  }
};

// (a) Sequential append() calls, one single-event request (so one transaction) each.
figure one_per_transaction(const journal_config& c, const std::string& run) {
  sp::pg_event_store store(store_options(c, "saga-bench"));
  if (auto ok = store.connect(); !ok) throw std::runtime_error(ok.error().message);
  const auto events = make_events(c.one_per_tx_events, c.payload_bytes);
  std::vector<std::int64_t> versions(c.streams, 0);
  const auto start = clock_type::now();
  std::size_t i = 0;
  // Bounded in time too: this path is slow and its rate steady, so a few seconds tell it.
  for (; i < events.size() && (i % 64 != 0 || seconds_since(start) < 4.0); ++i) {
    const auto s = i % c.streams;
    sp::append_request r{"bench-1tx-" + run + "-" + std::to_string(s),
                         "bench",
                         versions[s],
                         {to_new_event(events[i])}};
    auto result = store.append(r);
    if (!result) throw std::runtime_error("one-per-tx append failed: " + result.error().message);
    versions[s] = result->version;
  }
  return figure{i, seconds_since(start)};
}

// (b) The best the database does without the framework: COPY batches straight into `events`.
figure raw_copy(const journal_config& c, const std::string& run, std::size_t n) {
  pqxx::connection conn(c.database_url);
  {
    pqxx::nontransaction tx(conn);
    tx.exec("SET synchronous_commit TO on; SET search_path TO " + tx.quote_name(c.schema));
  }
  const auto events = make_events(n, c.payload_bytes);
  const std::string metadata = "{\"correlation_id\": \"bench\"}";
  const std::vector<std::string> columns = {"stream_id",  "stream_type",    "version", "event_id",
                                            "event_type", "schema_version", "payload", "metadata"};
  std::vector<std::string> stream_ids;
  for (std::size_t s = 0; s < c.streams; ++s) {
    stream_ids.push_back("bench-raw-" + run + "-" + std::to_string(s));
  }
  std::vector<std::int64_t> versions(c.streams, 0);
  const auto start = clock_type::now();
  for (std::size_t first = 0; first < events.size(); first += c.raw_batch) {
    const auto last = std::min(events.size(), first + c.raw_batch);
    pqxx::work tx(conn);
    pqxx::stream_to copy(tx, "events", columns);
    for (std::size_t i = first; i < last; ++i) {
      const auto s = i % c.streams;
      copy << std::make_tuple(stream_ids[s], "bench", ++versions[s], events[i].event_id,
                              "BenchEventRecorded", 1, events[i].payload, metadata);
    }
    copy.complete();
    tx.commit();
  }
  return figure{events.size(), seconds_since(start)};
}

struct writer_figure {
  figure f;
  sp::writer_stats stats;
};

// (c) `streams` submitters, each appending its events one at a time with expected versions
// (the next append is submitted from the previous one's answer), through one writer.
writer_figure group_commit(const journal_config& c, const std::string& run, std::size_t n) {
  const auto events = make_events(n, c.payload_bytes);
  const auto options = store_options(c, "saga-bench-writer");
  sp::group_commit_writer writer(
      [options] { return std::make_unique<sp::pg_event_store>(options); }, c.writer);

  std::mutex mutex;
  std::condition_variable finished;
  std::size_t answered = 0;
  std::string failure;

  struct stream_state {
    std::string id;
    std::vector<const bench_event*> todo;
    std::size_t next = 0;
  };
  std::vector<stream_state> streams(c.streams);
  for (std::size_t s = 0; s < c.streams; ++s) {
    streams[s].id = "bench-writer-" + run + "-" + std::to_string(s);
  }
  for (std::size_t i = 0; i < events.size(); ++i) streams[i % c.streams].todo.push_back(&events[i]);

  // Each stream has one append in flight; its answer (on the writer thread) submits the next.
  std::function<void(std::size_t, std::int64_t)> submit_next = [&](std::size_t s,
                                                                   std::int64_t version) {
    auto& st = streams[s];
    if (st.next >= st.todo.size()) return;
    sp::append_request r{st.id, "bench", version, {to_new_event(*st.todo[st.next++])}};
    writer.submit(std::move(r), [&, s](sp::append_result result) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!result) {
        if (failure.empty()) failure = result.error().message;
        answered += streams[s].todo.size() - streams[s].next + 1;
        finished.notify_all();
        return;
      }
      ++answered;
      if (answered == events.size()) finished.notify_all();
      submit_next(s, result->version);
    });
  };

  const auto start = clock_type::now();
  for (std::size_t s = 0; s < c.streams; ++s) submit_next(s, 0);
  {
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [&] { return answered >= events.size(); });
  }
  const double seconds = seconds_since(start);
  writer.stop();
  if (!failure.empty()) throw std::runtime_error("writer append failed: " + failure);
  return writer_figure{figure{events.size(), seconds}, writer.stats()};
}

}  // namespace

double measure_raw_batch_eps(const std::string& database_url, const std::string& schema,
                             std::size_t events, std::size_t streams) {
  journal_config c;
  c.database_url = database_url;
  c.schema = schema;
  c.streams = streams;
  c.raw_batch = streams;
  return raw_copy(c, "raw-" + run_tag(), events).eps();
}

void journal_usage(std::ostream& out) {
  out << "usage: saga-bench journal [options]\n"
         "  --database-url URL      PostgreSQL to use (default: $DATABASE_URL)\n"
         "  --events N              events for the raw and for the writer path (default 60000)\n"
         "  --one-per-tx-events N   events for the one-per-transaction path (default events/20;\n"
         "                          it also stops after 4 s)\n"
         "  --streams N             concurrent streams feeding the writer (default 256)\n"
         "  --raw-batch N           events per COPY transaction on the raw path (default: "
         "streams)\n"
         "  --rounds N              alternate raw and writer runs this many times (default 3)\n"
         "  --payload-bytes N       JSON payload size (default 200)\n"
         "  --max-batch-events N    writer batch limit (default 2000)\n"
         "  --linger-us N           writer linger before a partial batch (default 0)\n"
         "  --schema NAME           schema to run in (default: a scratch schema, dropped after)\n"
         "  --keep-schema           do not drop the scratch schema\n"
         "The last output line is {\"mode\":\"journal\",\"one_per_tx_eps\":…,\"raw_batch_eps\":…,"
         "\"writer_eps\":…,\"writer_vs_raw\":…}.\n";
}

int run_journal(const std::vector<std::string>& args) {
  journal_config c;
  try {
    c = parse(args);
  } catch (const bad_args& e) {
    std::cerr << "saga-bench journal: " << e.what() << "\n\n";
    journal_usage(std::cerr);
    return 2;
  }
  std::mt19937_64 rng{std::random_device{}()};
  const std::string run = std::to_string(rng() % 1000000000ULL);
  const bool scratch = c.schema.empty();
  if (scratch) c.schema = "saga_bench_" + run;

  int code = 0;
  try {
    auto migrated = sp::apply_migrations(c.database_url, sp::migration_options{c.schema});
    if (!migrated) throw std::runtime_error("migrations failed: " + migrated.error().message);

    const auto a = one_per_transaction(c, run);
    figure b;
    writer_figure w;
    std::vector<double> round_ratios;
    for (std::size_t r = 0; r < c.rounds; ++r) {
      const auto n = c.events / c.rounds + (r < c.events % c.rounds ? 1 : 0);
      const auto tag = run + "-" + std::to_string(r);
      const auto rb = raw_copy(c, tag, n);
      const auto rw = group_commit(c, tag, n);
      round_ratios.push_back(rb.eps() > 0 ? rw.f.eps() / rb.eps() : 0);
      b += rb;
      w.f += rw.f;
      w.stats.batches += rw.stats.batches;
      w.stats.events += rw.stats.events;
      w.stats.requests += rw.stats.requests;
      w.stats.retries += rw.stats.retries;
      w.stats.total_latency_us += rw.stats.total_latency_us;
      w.stats.total_batch_us += rw.stats.total_batch_us;
      w.stats.max_latency_us = std::max(w.stats.max_latency_us, rw.stats.max_latency_us);
    }

    const double ratio = b.eps() > 0 ? w.f.eps() / b.eps() : 0;
    const double vs_one = a.eps() > 0 ? w.f.eps() / a.eps() : 0;
    const auto& st = w.stats;
    const double avg_batch =
        st.batches ? static_cast<double>(st.events) / static_cast<double>(st.batches) : 0;
    const double avg_latency_ms = st.requests ? static_cast<double>(st.total_latency_us) / 1000.0 /
                                                    static_cast<double>(st.requests)
                                              : 0;

    std::cout << "journal benchmark: schema " << c.schema << ", payload ~" << c.payload_bytes
              << " B JSON\n";
    std::cout << std::left << std::setw(44) << "path" << std::right << std::setw(9) << "events"
              << std::setw(10) << "seconds" << std::setw(12) << "events/s"
              << "\n";
    const auto line = [](const std::string& name, const figure& f) {
      std::cout << std::left << std::setw(44) << name << std::right << std::setw(9) << f.events
                << std::setw(10) << fixed(f.seconds, 2) << std::setw(12) << fixed(f.eps(), 0)
                << "\n";
    };
    line("(a) one event per transaction", a);
    line("(b) raw COPY, " + std::to_string(c.raw_batch) + " events/transaction", b);
    line("(c) group-commit writer, " + std::to_string(c.streams) + " streams", w.f);
    std::cout << "writer: " << st.batches << " batches, " << fixed(avg_batch, 1)
              << " events/batch avg, append latency avg " << fixed(avg_latency_ms, 2) << " ms, max "
              << fixed(static_cast<double>(st.max_latency_us) / 1000.0, 2) << " ms, retries "
              << st.retries << ", store busy "
              << fixed(static_cast<double>(st.total_batch_us) / 1e6, 2) << " s\n";
    std::cout << "writer_vs_raw " << fixed(ratio, 3) << " (target >= 0.7; by round:";
    for (const auto r : round_ratios) std::cout << " " << fixed(r, 3);
    std::cout << "), writer / one-per-tx " << fixed(vs_one, 1) << "x (target >= 5)\n";
    std::cout << "{\"mode\":\"journal\",\"one_per_tx_eps\":" << fixed(a.eps(), 1)
              << ",\"raw_batch_eps\":" << fixed(b.eps(), 1)
              << ",\"writer_eps\":" << fixed(w.f.eps(), 1)
              << ",\"writer_vs_raw\":" << fixed(ratio, 3) << "}" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "saga-bench journal: " << e.what() << "\n";
    code = 1;
  }
  if (scratch && !c.keep_schema) {
    auto dropped = sp::run_sql(c.database_url, "DROP SCHEMA IF EXISTS " + c.schema + " CASCADE");
    if (!dropped)
      std::cerr << "saga-bench journal: could not drop schema " << c.schema << ": "
                << dropped.error().message << "\n";
  }
  return code;
}

}  // namespace saga::bench

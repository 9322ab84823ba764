// `saga-bench sagas`: places OrderProcessing sagas through the runtime facade against the real
// journal and ledger (a scratch schema) with a fixed number in flight, and reports sagas/s,
// latency from placement to the saga's end, journal events/s and, measured in the same run,
// the raw batch limit of the journal. A share of orders is priced above the gateway's decline
// limit, so those sagas compensate.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actors/runtime.hpp"
#include "apps/saga_bench/common.hpp"
#include "apps/saga_bench/modes.hpp"
#include "persistence/payment_gateway.hpp"
#include "persistence/pg_event_store.hpp"

namespace saga::bench {

namespace {

namespace sa = saga::actors;
namespace sd = saga::domain;
namespace sg = saga::domain::sagas;
namespace sp = saga::persistence;
using clock_type = std::chrono::steady_clock;

struct sagas_config {
  std::string database_url;
  std::size_t count = 10'000;
  std::size_t concurrency = 128;
  std::size_t products = 50;
  std::size_t decline_pct = 10;
  std::size_t grace_s = 30;
  std::size_t raw_events = 30'000;
  // Runtime tuning (defaults: the runtime's own).
  std::size_t readers = 0;        // 0: runtime default
  std::size_t threads = 0;        // 0: runtime default
  std::string scheduler;          // empty: runtime default
  long linger_us = -1;            // < 0: writer default
  std::size_t max_in_flight = 0;  // 0: runtime default
  std::size_t lanes = 0;          // 0: writer default
};

constexpr sd::money normal_price = 1'000;
constexpr sd::money luxury_price = 20'000'000;  // above the gateway's decline limit
constexpr sd::money decline_above = 10'000'000;

/// What the finished-saga observer collects (actor threads write, the bench thread reads).
struct tally {
  std::mutex mutex;
  std::condition_variable changed;
  std::unordered_map<std::string, clock_type::time_point> started;  // by correlation id
  std::vector<double> latencies_ms;
  std::vector<double> compensated_ms;  ///< the compensated sagas' share of latencies_ms
  std::size_t in_flight = 0;
  std::size_t completed = 0;
  std::size_t compensated = 0;
  std::size_t failed = 0;
  clock_type::time_point last_finish;

  [[nodiscard]] std::size_t finished() const { return completed + compensated + failed; }
};

}  // namespace

void sagas_usage(std::ostream& out) {
  out << "usage: saga-bench sagas [options]\n"
         "  --count N          sagas to run (default 10000)\n"
         "  --concurrency N    sagas in flight at once (default 128)\n"
         "  --products N       products the orders spread over (default 50)\n"
         "  --decline-pct N    percent of orders the gateway declines (default 10)\n"
         "  --grace-s N        seconds to wait for the last sagas before counting them stuck "
         "(default 30)\n"
         "  --raw-events N     events for the raw batch measurement (default 30000)\n"
         "  --database-url U   PostgreSQL (default: $DATABASE_URL); runs in a scratch schema\n"
         "  --readers N        journal reader connections (default: the runtime's)\n"
         "  --threads N        CAF scheduler threads (default: one per core)\n"
         "  --scheduler P      stealing or sharing (default: the runtime's)\n"
         "  --linger-us N      group-commit linger in microseconds (default: the writer's)\n"
         "  --max-in-flight N  commands a region sends to one actor at a time (default: the "
         "runtime's)\n"
         "  --writer-lanes N   journal writer threads/connections (default: the runtime's)\n"
         "The last output line is {\"mode\":\"sagas\",\"count\":…,\"completed\":…,"
         "\"compensated\":…,\"failed\":…,\"stuck\":…,\"sagas_per_s\":…,\"p50_ms\":…,"
         "\"p99_ms\":…,\"events_per_s\":…,\"raw_batch_eps\":…}.\n";
}

int run_sagas(const std::vector<std::string>& args) {
  sagas_config c;
  try {
    options opts(args, {"--count", "--concurrency", "--products", "--decline-pct", "--grace-s",
                        "--raw-events", "--database-url", "--readers", "--threads", "--scheduler",
                        "--linger-us", "--max-in-flight", "--writer-lanes"});
    c.database_url = database_url(opts);
    c.count = opts.count("--count", c.count, 1);
    c.concurrency = opts.count("--concurrency", c.concurrency, 1);
    c.products = opts.count("--products", c.products, 1);
    c.decline_pct = opts.count("--decline-pct", c.decline_pct, 0);
    if (c.decline_pct > 100) throw bad_args("--decline-pct is at most 100");
    c.grace_s = opts.count("--grace-s", c.grace_s, 1);
    c.raw_events = opts.count("--raw-events", c.raw_events, 1000);
    c.readers = opts.count("--readers", 0, 1);
    c.threads = opts.count("--threads", 0, 1);
    c.scheduler = opts.text("--scheduler", "");
    if (!c.scheduler.empty() && c.scheduler != "stealing" && c.scheduler != "sharing")
      throw bad_args("--scheduler is stealing or sharing");
    c.max_in_flight = opts.count("--max-in-flight", 0, 1);
    c.lanes = opts.count("--writer-lanes", 0, 1);
    if (opts.has("--linger-us")) c.linger_us = static_cast<long>(opts.count("--linger-us", 0));
  } catch (const bad_args& e) {
    std::cerr << "saga-bench sagas: " << e.what() << "\n\n";
    sagas_usage(std::cerr);
    return 2;
  }
  try {
    bench_schema schema(c.database_url, "", false);
    sp::pg_store_options store;
    store.database_url = c.database_url;
    store.schema = schema.name();
    store.application_name = "saga-bench";

    sa::runtime_options ro;
    ro.regions.node_id = "bench";
    ro.ask_timeout = std::chrono::seconds(30);
    if (c.readers > 0) ro.readers = c.readers;
    if (c.threads > 0) ro.scheduler_threads = c.threads;
    if (c.scheduler == "stealing") ro.scheduler = sa::scheduler_policy::stealing;
    if (c.scheduler == "sharing") ro.scheduler = sa::scheduler_policy::sharing;
    if (c.max_in_flight > 0) ro.regions.max_in_flight = c.max_in_flight;
    if (c.lanes > 0) ro.writer.lanes = c.lanes;
    if (c.linger_us >= 0) ro.writer.linger = std::chrono::microseconds(c.linger_us);
    ro.gateway = [url = c.database_url, name = schema.name()] {
      sp::gateway_options g;
      g.decline_above = decline_above;
      return sp::make_simulated_gateway(
          std::shared_ptr<sp::payment_ledger>(sp::make_pg_ledger(url, name)), g);
    };
    sa::runtime rt(ro, [store] { return std::make_unique<sp::pg_event_store>(store); });

    // The catalog: normal products, plus luxury ones (declined) when declines are wanted.
    const auto tag = run_tag();
    const auto stock = static_cast<std::int64_t>(c.count) + 1000;
    auto product_id = [&](bool luxury, std::size_t k) {
      return std::string(luxury ? "lux-" : "p-") + tag + "-" + std::to_string(k);
    };
    const std::size_t luxury_products =
        c.decline_pct > 0 ? std::max<std::size_t>(1, c.products / 10) : 0;
    for (std::size_t k = 0; k < c.products + luxury_products; ++k) {
      const bool luxury = k >= c.products;
      const auto id = product_id(luxury, luxury ? k - c.products : k);
      auto reply = rt.send(
          id, sd::inventory::command{sd::inventory::register_product{
                  id, luxury ? "Bench luxury" : "Bench item", luxury ? luxury_price : normal_price,
                  stock, rt.now(), "register-" + id}});
      if (!reply.ok()) throw std::runtime_error("registering " + id + " failed: " + reply.message);
    }

    tally t;
    const auto token = rt.subscribe_finished_sagas([&t](const sg::state& s) {
      const auto now = clock_type::now();
      std::lock_guard<std::mutex> lock(t.mutex);
      auto it = t.started.find(s.correlation_id);
      if (it == t.started.end()) return;  // not one of ours, or reported twice
      const double ms = std::chrono::duration<double, std::milli>(now - it->second).count();
      t.latencies_ms.push_back(ms);
      t.started.erase(it);
      if (s.status_ == sg::status::completed) {
        ++t.completed;
      } else if (s.status_ == sg::status::compensated) {
        ++t.compensated;
        t.compensated_ms.push_back(ms);
      } else {
        ++t.failed;
      }
      --t.in_flight;
      t.last_finish = now;
      t.changed.notify_all();
    });

    // Placement failures are collected off the feeding thread.
    std::mutex futures_mutex;
    std::condition_variable futures_ready;
    std::deque<std::pair<std::string, std::future<sa::placed_order>>> futures;
    bool feeding_done = false;
    std::atomic<std::size_t> place_failed{0};
    std::thread collector([&] {
      for (;;) {
        std::pair<std::string, std::future<sa::placed_order>> next;
        {
          std::unique_lock<std::mutex> lock(futures_mutex);
          futures_ready.wait(lock, [&] { return !futures.empty() || feeding_done; });
          if (futures.empty()) return;
          next = std::move(futures.front());
          futures.pop_front();
        }
        auto placed = next.second.get();
        if (!placed.ok() || !placed.saga_started) {
          if (place_failed.fetch_add(1) < 5) {
            std::cerr << "placing " << next.first << " failed: " << placed.message << "\n";
          }
          std::lock_guard<std::mutex> lock(t.mutex);
          if (t.started.erase(next.first) > 0) --t.in_flight;
          t.changed.notify_all();
        }
      }
    });

    const auto writer_before = rt.writer_stats();
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < c.count; ++i) {
      const bool luxury = (i % 100) < c.decline_pct;
      const auto k = luxury ? (i / 100) % luxury_products : i % c.products;
      sa::order_request r;
      r.customer_id = "customer-" + std::to_string(i % 997);
      r.correlation_id = "bench-" + tag + "-" + std::to_string(i);
      r.idempotency_key = r.correlation_id;
      r.shipping_address = "1 Bench Street";
      r.items.push_back(sd::order::line_item{product_id(luxury, k), "Bench item", 1,
                                             luxury ? luxury_price : normal_price});
      {
        std::unique_lock<std::mutex> lock(t.mutex);
        t.changed.wait(lock, [&] { return t.in_flight < c.concurrency; });
        ++t.in_flight;
        t.started.emplace(r.correlation_id, clock_type::now());
      }
      auto id = r.correlation_id;
      auto future = rt.place_order_async(std::move(r));
      std::lock_guard<std::mutex> lock(futures_mutex);
      futures.emplace_back(std::move(id), std::move(future));
      futures_ready.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(futures_mutex);
      feeding_done = true;
      futures_ready.notify_one();
    }
    collector.join();
    std::size_t stuck = 0;
    {
      std::unique_lock<std::mutex> lock(t.mutex);
      t.changed.wait_for(lock, std::chrono::seconds(c.grace_s), [&] { return t.in_flight == 0; });
      stuck = t.in_flight;
    }
    rt.unsubscribe_finished_sagas(token);
    const auto writer_after = rt.writer_stats();

    std::vector<double> latencies;
    std::vector<double> compensated_latencies;
    std::size_t completed = 0;
    std::size_t compensated = 0;
    std::size_t failed = 0;
    double seconds = 0;
    {
      std::lock_guard<std::mutex> lock(t.mutex);
      latencies = t.latencies_ms;
      compensated_latencies = t.compensated_ms;
      completed = t.completed;
      compensated = t.compensated;
      failed = t.failed;
      seconds = std::chrono::duration<double>(t.last_finish - start).count();
    }
    const auto finished = completed + compensated + failed;
    const double rate = seconds > 0 ? static_cast<double>(finished) / seconds : 0;
    const double events = static_cast<double>(writer_after.events - writer_before.events);
    const double eps = seconds > 0 ? events / seconds : 0;
    const auto batches = writer_after.batches - writer_before.batches;
    const auto appends = writer_after.requests - writer_before.requests;
    const double per_batch =
        batches > 0 ? static_cast<double>(appends) / static_cast<double>(batches) : 0;
    const double batch_ms =
        batches > 0
            ? static_cast<double>(writer_after.total_batch_us - writer_before.total_batch_us) /
                  1000.0 / static_cast<double>(batches)
            : 0;
    const double append_ms =
        appends > 0
            ? static_cast<double>(writer_after.total_latency_us - writer_before.total_latency_us) /
                  1000.0 / static_cast<double>(appends)
            : 0;
    const double p50 = percentile(latencies, 0.5);
    const double p99 = percentile(latencies, 0.99);
    const double raw = measure_raw_batch_eps(c.database_url, schema.name(), c.raw_events, 256);

    std::cout << "sagas benchmark: " << c.count << " OrderProcessing sagas, " << c.concurrency
              << " in flight, " << c.products << " products, " << c.decline_pct
              << "% declined, schema " << schema.name() << "\n"
              << "completed " << completed << ", compensated " << compensated << ", failed "
              << failed << ", stuck " << stuck << ", placement failures " << place_failed << "\n"
              << fixed(rate, 0) << " sagas/s over " << fixed(seconds, 2) << " s (target >= 2000)"
              << "; latency p50 " << fixed(p50, 2) << " ms, p99 " << fixed(p99, 2)
              << " ms (target <= 50)\n"
              << "latency of the compensated sagas (a longer chain): p50 "
              << fixed(percentile(compensated_latencies, 0.5), 2) << " ms, p99 "
              << fixed(percentile(compensated_latencies, 0.99), 2) << " ms\n"
              << "journal: " << fixed(events, 0) << " events, " << fixed(eps, 0)
              << " events/s; raw batch limit in this run " << fixed(raw, 0) << " events/s ("
              << fixed(raw > 0 ? eps / raw : 0, 2) << " of it)\n"
              << "writer: " << batches << " batches, " << fixed(per_batch, 1)
              << " appends per batch, " << fixed(batch_ms, 2) << " ms per batch, "
              << fixed(append_ms, 2) << " ms per append (submit to answer)\n";
    std::cout << "{\"mode\":\"sagas\",\"count\":" << c.count << ",\"completed\":" << completed
              << ",\"compensated\":" << compensated << ",\"failed\":" << failed
              << ",\"stuck\":" << stuck << ",\"sagas_per_s\":" << fixed(rate, 1)
              << ",\"p50_ms\":" << fixed(p50, 2) << ",\"p99_ms\":" << fixed(p99, 2)
              << ",\"events_per_s\":" << fixed(eps, 1) << ",\"raw_batch_eps\":" << fixed(raw, 1)
              << "}" << std::endl;
    return stuck == 0 && place_failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "saga-bench sagas: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace saga::bench

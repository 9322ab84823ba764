// `saga-bench actors`: activation rate and resident memory per idle aggregate actor.
// `saga-bench recover`: time to recover one long stream with and without a snapshot.
// Both drive the real actor runtime through its facade; `recover` uses PostgreSQL in a
// scratch schema, `actors` an in-memory journal by default (it measures the actors, not I/O).
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "actors/runtime.hpp"
#include "apps/saga_bench/common.hpp"
#include "apps/saga_bench/modes.hpp"
#include "domain/aggregate_codec.hpp"
#include "persistence/memory_event_store.hpp"
#include "persistence/pg_event_store.hpp"

namespace saga::bench {

namespace {

namespace sa = saga::actors;
namespace sd = saga::domain;
namespace sp = saga::persistence;
using clock_type = std::chrono::steady_clock;

/// Forwards to one shared in-memory journal (each runtime thread gets its own handle).
class shared_memory_store final : public sp::event_store {
 public:
  explicit shared_memory_store(std::shared_ptr<sp::memory_event_store> target)
      : target_(std::move(target)) {}
  std::vector<sp::append_result> append_batch(const std::vector<sp::append_request>& r) override {
    return target_->append_batch(r);
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_stream(
      const std::string& s, std::int64_t from, std::size_t limit) override {
    return target_->read_stream(s, from, limit);
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_all(std::int64_t after,
                                                                      std::size_t limit) override {
    return target_->read_all(after, limit);
  }
  expected<bool, sp::store_error> save_snapshot(const sp::snapshot& s) override {
    return target_->save_snapshot(s);
  }
  expected<std::optional<sp::snapshot>, sp::store_error> load_snapshot(
      const std::string& s) override {
    return target_->load_snapshot(s);
  }

 private:
  std::shared_ptr<sp::memory_event_store> target_;
};

sa::runtime_options quiet_options() {
  sa::runtime_options o;
  o.regions.passivate_after = std::chrono::milliseconds(0);  // keep every actor alive
  o.regions.node_id = "bench";
  return o;
}

}  // namespace

void actors_usage(std::ostream& out) {
  out << "usage: saga-bench actors [options]\n"
         "  --count N         aggregate actors to activate (default 100000)\n"
         "  --threads N       client threads activating them (default 8)\n"
         "  --journal KIND    memory (default) or pg (needs DATABASE_URL; scratch schema)\n"
         "  --database-url U  PostgreSQL for --journal pg\n"
         "Activates N order actors (empty streams) and keeps them idle. The last output line is\n"
         "{\"mode\":\"actors\",\"count\":…,\"spawn_per_s\":…,\"rss_bytes_per_actor\":…,\n"
         "\"rss_trimmed_bytes_per_actor\":…} (the second after malloc_trim(0)).\n";
}

int run_actors(const std::vector<std::string>& args) {
  std::size_t count = 0;
  std::size_t threads = 0;
  std::string journal;
  std::string url;
  try {
    options opts(args, {"--count", "--threads", "--journal", "--database-url"});
    count = opts.count("--count", 100'000, 1);
    threads = opts.count("--threads", 8, 1);
    journal = opts.text("--journal", "memory");
    if (journal != "memory" && journal != "pg") throw bad_args("--journal is memory or pg");
    if (journal == "pg") url = database_url(opts);
  } catch (const bad_args& e) {
    std::cerr << "saga-bench actors: " << e.what() << "\n\n";
    actors_usage(std::cerr);
    return 2;
  }
  try {
    std::unique_ptr<bench_schema> schema;
    sa::runtime::store_factory factory;
    auto memory = std::make_shared<sp::memory_event_store>();
    if (journal == "pg") {
      schema = std::make_unique<bench_schema>(url, "", false);
      sp::pg_store_options pg;
      pg.database_url = url;
      pg.schema = schema->name();
      factory = [pg] { return std::make_unique<sp::pg_event_store>(pg); };
    } else {
      factory = [memory] { return std::make_unique<shared_memory_store>(memory); };
    }
    sa::runtime rt(quiet_options(), factory);
    // Warm up the system (threads, allocator arenas) before the baseline.
    (void)rt.order_state("warm-up");
    const auto tag = run_tag();
    malloc_trim(0);  // the baseline without free memory the allocator still holds
    const auto rss_before = rss_bytes();
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> failed{0};
    const auto start = clock_type::now();
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (auto i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
          if (!rt.order_state("idle-" + tag + "-" + std::to_string(i)).ok) ++failed;
        }
      });
    }
    for (auto& th : pool) th.join();
    const double seconds = seconds_since(start);
    const auto stats = rt.stats(sa::aggregate_kind::order);
    const auto rss_after = rss_bytes();
    // Also after handing free memory back (glibc keeps freed chunks of the activation's
    // messages and replies resident): what the idle actors themselves hold.
    malloc_trim(0);
    const auto rss_trimmed = rss_bytes();
    const auto per = [&](std::uint64_t rss) {
      return stats.active > 0 ? static_cast<double>(rss - std::min(rss, rss_before)) /
                                    static_cast<double>(stats.active)
                              : 0;
    };
    const double per_actor = per(rss_after);
    const double per_actor_trimmed = per(rss_trimmed);
    const double rate = seconds > 0 ? static_cast<double>(count) / seconds : 0;
    std::cout << "actors benchmark: " << count << " order actors, journal " << journal << "\n"
              << "activated " << count - failed << " (failed " << failed << ") in "
              << fixed(seconds, 2) << " s: " << fixed(rate, 0) << " activations/s\n"
              << "alive " << stats.active << ", RSS " << fixed(rss_before / 1048576.0, 1)
              << " MiB -> " << fixed(rss_after / 1048576.0, 1) << " MiB: " << fixed(per_actor, 0)
              << " bytes per idle actor (target <= 2048; includes the region's directory entry)\n"
              << "after malloc_trim: RSS " << fixed(rss_trimmed / 1048576.0, 1)
              << " MiB: " << fixed(per_actor_trimmed, 0) << " bytes per idle actor\n";
    std::cout << "{\"mode\":\"actors\",\"count\":" << count << ",\"alive\":" << stats.active
              << ",\"failed\":" << failed.load() << ",\"spawn_per_s\":" << fixed(rate, 1)
              << ",\"rss_bytes_per_actor\":" << fixed(per_actor, 1)
              << ",\"rss_trimmed_bytes_per_actor\":" << fixed(per_actor_trimmed, 1) << "}"
              << std::endl;
    return failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "saga-bench actors: " << e.what() << "\n";
    return 1;
  }
}

void recover_usage(std::ostream& out) {
  out << "usage: saga-bench recover [options]\n"
         "  --events N        events in the stream (default 10000)\n"
         "  --runs N          recoveries measured per variant; the median is reported (default 5)\n"
         "  --database-url U  PostgreSQL (default: $DATABASE_URL); runs in a scratch schema\n"
         "Writes one inventory stream of N events, then times its activation (snapshot + events\n"
         "through evolve) by a fresh runtime, without and with a snapshot. The last output line\n"
         "is {\"mode\":\"recover\",\"events\":…,\"no_snapshot_ms\":…,\"snapshot_ms\":…}.\n";
}

int run_recover(const std::vector<std::string>& args) {
  std::size_t events = 0;
  std::size_t runs = 0;
  std::string url;
  try {
    options opts(args, {"--events", "--runs", "--database-url"});
    events = opts.count("--events", 10'000, 2);
    runs = opts.count("--runs", 5, 1);
    url = database_url(opts);
  } catch (const bad_args& e) {
    std::cerr << "saga-bench recover: " << e.what() << "\n\n";
    recover_usage(std::cerr);
    return 2;
  }
  try {
    bench_schema schema(url, "", false);
    sp::pg_store_options store_options;
    store_options.database_url = url;
    store_options.schema = schema.name();
    sp::pg_event_store store(store_options);
    const std::string product = "recover-" + run_tag();
    const std::string stream = "inventory-" + product;
    // The stream: registration, then restocks of one unit, appended in batches.
    std::int64_t version = 0;
    while (static_cast<std::size_t>(version) < events) {
      sp::append_request r;
      r.stream_id = stream;
      r.stream_type = "inventory";
      r.expected_version = version;
      for (std::size_t i = 0; i < 1000 && static_cast<std::size_t>(version) + i < events; ++i) {
        const auto n = version + static_cast<std::int64_t>(i) + 1;
        sd::inventory::event e;
        if (n == 1) {
          e = sd::inventory::product_registered{product, "Recovery bench", 1000, 0, n, "reg"};
        } else {
          e = sd::inventory::stock_added{product, 1, n, "restock-" + std::to_string(n)};
        }
        auto encoded = sd::encode(e);
        sp::new_event ne;
        ne.event_id = sp::new_uuid();
        ne.event_type = encoded.type;
        ne.schema_version = encoded.schema_version;
        ne.payload = std::move(encoded.payload);
        r.events.push_back(std::move(ne));
      }
      auto appended = store.append(r);
      if (!appended) throw std::runtime_error("append failed: " + appended.error().message);
      version = appended->version;
    }

    auto options = quiet_options();
    options.regions.snapshot_every = 0;  // measure, do not write snapshots meanwhile
    options.readers = 1;                 // so the warm-up query connects the reader we time
    const auto factory = [store_options] {
      return std::make_unique<sp::pg_event_store>(store_options);
    };
    sd::inventory::state recovered;
    const auto measure = [&] {
      std::vector<double> ms;
      for (std::size_t i = 0; i < runs; ++i) {
        sa::runtime rt(options, factory);
        (void)rt.inventory_state("warm-up");  // readers connect first
        const auto start = clock_type::now();
        auto reply = rt.inventory_state(product);
        ms.push_back(seconds_since(start) * 1000.0);
        if (!reply.ok) throw std::runtime_error("recovery failed: " + reply.message);
        if (reply.state.version != static_cast<std::int64_t>(events)) {
          throw std::runtime_error("recovered version " + std::to_string(reply.state.version) +
                                   ", expected " + std::to_string(events));
        }
        recovered = reply.state;
      }
      return ms;
    };
    auto without = measure();
    sp::snapshot snap;
    snap.stream_id = stream;
    snap.stream_type = "inventory";
    snap.version = recovered.version;
    snap.schema_version = sd::aggregate_schema_version;
    snap.payload = sd::encode_state(recovered);
    auto saved = store.save_snapshot(snap);
    if (!saved) throw std::runtime_error("snapshot not saved: " + saved.error().message);
    auto with = measure();
    const double no_snap = median(without);
    const double snap_ms = median(with);
    std::cout << "recover benchmark: one inventory stream of " << events << " events, " << runs
              << " fresh runtimes per variant\n"
              << "without snapshot: median " << fixed(no_snap, 2) << " ms (target <= 100)\n"
              << "with snapshot at version " << snap.version << " (" << snap.payload.size()
              << " bytes): median " << fixed(snap_ms, 2) << " ms (target <= 10)\n";
    std::cout << "{\"mode\":\"recover\",\"events\":" << events
              << ",\"no_snapshot_ms\":" << fixed(no_snap, 2)
              << ",\"snapshot_ms\":" << fixed(snap_ms, 2) << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "saga-bench recover: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace saga::bench

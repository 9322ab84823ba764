// saga-node: the server process. Applies the journal migrations, starts the actor runtime
// (regions, saga actors, journal writer and readers, payment gateway) and the read side
// (projections, queries), resumes unfinished sagas, optionally seeds a demo catalog and places
// a load of orders (the programmatic entry used by fault tests), then runs until SIGTERM/SIGINT:
// it stops placing orders, lets in-flight appends finish and exits 0.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/read_side.hpp"
#include "actors/recovery.hpp"
#include "actors/runtime.hpp"
#include "persistence/migrations.hpp"
#include "persistence/payment_gateway.hpp"
#include "persistence/pg_event_store.hpp"

namespace {

namespace sa = saga::actors;
namespace sd = saga::domain;
namespace sp = saga::persistence;

struct node_settings {
  std::string database_url;
  std::string node_id = "node-1";
  std::int64_t decline_above = 10'000'000;
  double failure_rate = 0.0;
  std::int64_t latency_ms = 0;
  bool demo_catalog = false;
  std::size_t load = 0;
  std::size_t load_concurrency = 64;
  bool projections = true;
};

int fail(const std::string& message, int status) {
  std::cerr << "saga-node: " << message << '\n';
  return status;
}

struct demo_product {
  const char* id;
  const char* name;
  sd::money price;
  std::int64_t stock;
};

// product-1 is the seed system's example product.
constexpr demo_product demo_products[] = {
    {"product-1", "MacBook Pro", 1'500'000, 1'000'000},
    {"product-2", "Magic Mouse", 99'000, 1'000'000},
    {"product-3", "USB-C Hub", 59'000, 1'000'000},
    {"product-4", "Studio Display", 2'090'000, 100},
};

/// Registers the demo catalog; a product that exists already is left as it is.
bool seed_catalog(sa::runtime& rt) {
  for (const auto& p : demo_products) {
    auto reply = rt.send(
        p.id, sd::inventory::command{sd::inventory::register_product{
                  p.id, p.name, p.price, p.stock, rt.now(), std::string("demo-catalog/") + p.id}});
    if (!reply.ok() && reply.rejection != sd::rejection_code::already_exists) {
      std::cerr << "saga-node: registering " << p.id << " failed: " << reply.message << '\n';
      return false;
    }
  }
  return true;
}

/// Places `count` orders of the demo catalog with `concurrency` in flight until done or
/// `stop`; returns how many were placed.
std::size_t place_load(sa::runtime& rt, const node_settings& s, const std::atomic<bool>& stop) {
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> placed{0};
  std::vector<std::thread> pool;
  const std::string tag = sp::new_uuid().substr(0, 8);
  for (std::size_t t = 0; t < s.load_concurrency; ++t) {
    pool.emplace_back([&] {
      for (auto i = next.fetch_add(1); i < s.load && !stop; i = next.fetch_add(1)) {
        const auto& p = demo_products[i % 3];  // product-4 has little stock: left out
        sa::order_request r;
        r.customer_id = "load-customer-" + std::to_string(i % 100);
        r.correlation_id = "load-" + tag + "-" + std::to_string(i);
        r.idempotency_key = r.correlation_id;
        r.shipping_address = "서울특별시 강남구 테헤란로 123";
        r.items.push_back(
            sd::order::line_item{p.id, p.name, 1 + static_cast<std::int64_t>(i % 2), p.price});
        if (rt.place_order(std::move(r)).ok()) ++placed;
      }
    });
  }
  for (auto& th : pool) th.join();
  return placed;
}

}  // namespace

int main(int argc, char** argv) {
  node_settings s;
  if (const char* env = std::getenv("DATABASE_URL")) s.database_url = env;
  if (const char* env = std::getenv("SAGA_NODE_ID")) s.node_id = env;
  CLI::App app{"saga-node: the saga engine server"};
  app.add_option("--database-url", s.database_url, "PostgreSQL URL (default: $DATABASE_URL)");
  app.add_option("--node-id", s.node_id, "node id written into event metadata ($SAGA_NODE_ID)");
  app.add_option("--payment-decline-above", s.decline_above,
                 "simulated gateway declines charges above this (minor units)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000'000'000'000}));
  app.add_option("--payment-failure-rate", s.failure_rate,
                 "simulated gateway transient failure probability")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--payment-latency-ms", s.latency_ms, "simulated gateway latency per batch")
      ->check(CLI::Range(0, 60'000));
  app.add_flag("--demo-catalog", s.demo_catalog, "register the demo products at start-up");
  app.add_option("--load", s.load, "place this many demo orders after start-up")
      ->check(CLI::Range(std::size_t{0}, std::size_t{100'000'000}));
  app.add_option("--load-concurrency", s.load_concurrency, "orders placed at once by --load")
      ->check(CLI::Range(1, 4096));
  app.add_flag("!--no-projections", s.projections, "do not run the read-model projections");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (s.database_url.empty()) return fail("no database: set DATABASE_URL or --database-url", 2);

  // Block the stop signals before any thread starts so that sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto applied = sp::apply_migrations(s.database_url);
  if (!applied) return fail("migrations failed: " + applied.error().message, 1);
  std::cout << "saga-node: journal ready (" << applied->size() << " migrations applied)"
            << std::endl;

  sp::pg_store_options store;
  store.database_url = s.database_url;
  store.application_name = "saga-node/" + s.node_id;
  sa::runtime_options options;
  options.regions.node_id = s.node_id;
  options.gateway = [s] {
    sp::gateway_options g;
    g.decline_above = s.decline_above;
    g.failure_rate = s.failure_rate;
    g.latency_ms = s.latency_ms;
    return sp::make_simulated_gateway(
        std::shared_ptr<sp::payment_ledger>(sp::make_pg_ledger(s.database_url)), g);
  };
  int status = 0;
  {
    sa::runtime rt(options, [store] { return std::make_unique<sp::pg_event_store>(store); });
    std::unique_ptr<sa::read_side> reads;
    if (s.projections) {
      sa::read_side_options ro;
      ro.database_url = s.database_url;
      reads = std::make_unique<sa::read_side>(rt.system(), ro);
    }
    sp::pg_event_store journal(store);
    const auto recovered = sa::recover_unfinished(rt, journal);
    std::cout << "saga-node: recovery resumed " << recovered.resumed << " of "
              << recovered.unfinished_sagas << " unfinished sagas, started " << recovered.started
              << " of " << recovered.orphan_orders << " sagas of orders without one" << std::endl;
    for (const auto& line : recovered.errors) std::cerr << "saga-node: recovery: " << line << '\n';
    if (s.demo_catalog && !seed_catalog(rt)) status = 1;

    std::atomic<bool> stopping{false};
    std::thread load;
    if (s.load > 0 && status == 0) {
      load = std::thread([&] {
        const auto placed = place_load(rt, s, stopping);
        std::cout << "saga-node: load placed " << placed << " orders" << std::endl;
      });
    }
    std::cout << "saga-node: ready (node " << s.node_id << "); stop with SIGTERM or Ctrl-C"
              << std::endl;
    int received = 0;
    if (status == 0) sigwait(&stop_signals, &received);
    stopping = true;
    if (load.joinable()) load.join();
    std::cout << "saga-node: " << (received == SIGTERM ? "SIGTERM" : "stop")
              << " received, draining" << std::endl;
    // The read side first (its actors run on the runtime's system), then the runtime: regions
    // stop, the journal writer writes what is queued and answers it.
  }
  std::cout << "saga-node: stopped" << std::endl;
  return status;
}

// saga-node: the server process. Applies the journal migrations, starts the actor runtime
// (regions, saga actors, journal writer and readers, payment gateway) and the read side
// (projections, queries), resumes unfinished sagas, optionally seeds a demo catalog, starts the
// HTTP front (unless http.port is 0) and places a load of orders (the programmatic entry used by
// fault tests), then runs until SIGTERM/SIGINT: it stops accepting requests and placing orders,
// lets in-flight appends finish and exits 0. Settings come from
// saga_config (defaults < TOML file < environment < flags); bad settings exit 2, an unusable
// database exits 1.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/read_side.hpp"
#include "actors/recovery.hpp"
#include "actors/runtime.hpp"
#include "config/logging.hpp"
#include "config/node_config.hpp"
#include "http/auth/user_service.hpp"
#include "http/metrics.hpp"
#include "http/server.hpp"
#include "persistence/migrations.hpp"
#include "persistence/payment_gateway.hpp"
#include "persistence/pg_event_store.hpp"

namespace {

namespace sa = saga::actors;
namespace sc = saga::config;
namespace sd = saga::domain;
namespace sp = saga::persistence;
namespace sh = saga::http;
using std::chrono::milliseconds;

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
      sc::log(sc::log_level::error,
              std::string("registering ") + p.id + " failed: " + reply.message);
      return false;
    }
  }
  return true;
}

/// Places `count` orders of the demo catalog with `concurrency` in flight until done or
/// `stop`; returns how many were placed.
std::size_t place_load(sa::runtime& rt, const sc::node_config& s, const std::atomic<bool>& stop) {
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

/// The runtime's settings from the node's configuration.
sa::runtime_options runtime_options_of(const sc::node_config& s) {
  sa::runtime_options options;
  auto& r = options.regions;
  r.node_id = s.node_id;
  r.passivate_after = milliseconds(s.actors.passivate_after_ms);
  r.passivation_check = milliseconds(s.actors.passivation_check_ms);
  r.snapshot_every = s.actors.snapshot_every;
  r.command_timeout = milliseconds(s.actors.command_timeout_ms);
  r.journal_timeout = milliseconds(s.actors.journal_timeout_ms);
  r.gateway_timeout = milliseconds(s.actors.gateway_timeout_ms);
  r.recovery_timeout = milliseconds(s.actors.recovery_timeout_ms);
  r.restart_backoff = milliseconds(s.actors.restart_backoff_ms);
  r.max_restart_backoff = milliseconds(s.actors.max_restart_backoff_ms);
  r.max_restarts = s.actors.max_restarts;
  r.max_command_attempts = s.actors.max_command_attempts;
  r.max_buffered = s.actors.max_buffered;
  r.max_in_flight = s.actors.max_in_flight;
  options.ask_timeout = milliseconds(s.actors.ask_timeout_ms);
  options.scheduler_threads = s.actors.scheduler_threads;
  options.scheduler = s.actors.scheduler == sc::scheduler_kind::stealing
                          ? sa::scheduler_policy::stealing
                          : sa::scheduler_policy::sharing;
  options.readers = s.journal.readers;
  options.writer.linger = std::chrono::microseconds(s.journal.linger_us);
  options.writer.max_batch_events = s.journal.max_batch_events;
  options.writer.max_batch_requests = s.journal.max_batch_requests;
  options.writer.lanes = s.journal.writer_lanes;
  options.gateway = [url = s.database_url, payment = s.payment] {
    sp::gateway_options g;
    g.decline_above = payment.decline_above;
    g.failure_rate = payment.failure_rate;
    g.latency_ms = payment.latency_ms;
    return sp::make_simulated_gateway(std::shared_ptr<sp::payment_ledger>(sp::make_pg_ledger(url)),
                                      g);
  };
  return options;
}

}  // namespace

/// Creates the user service (and the bootstrap admin), the metrics registry and the HTTP
/// server, and starts serving. 0 on success, else the exit status (the reason is logged).
int start_http(const sc::node_config& s, sa::runtime& rt, sa::read_side& reads,
               std::unique_ptr<sh::auth::user_service>& users,
               std::unique_ptr<sh::metrics_registry>& metrics, std::unique_ptr<sh::server>& http) {
  users = std::make_unique<sh::auth::user_service>(s.database_url);
  if (!s.auth.admin_email.empty()) {
    auto admin = users->ensure_admin(s.auth.admin_email, s.auth.admin_password);
    if (!admin) {
      sc::log(sc::log_level::error, "admin " + s.auth.admin_email + ": " + admin.error().message);
      return 1;
    }
    std::cout << "saga-node: admin " << admin->email << " ready" << std::endl;
  }
  metrics = std::make_unique<sh::metrics_registry>();
  sh::server_options o;
  o.host = s.http.host;
  o.port = s.http.port;
  o.threads = s.http.threads;
  o.max_body_bytes = s.http.max_body_bytes;
  o.request_timeout = std::chrono::milliseconds(s.http.request_timeout_ms);
  o.node_id = s.node_id;
  o.jwt.secret = s.auth.jwt_secret;
  o.jwt.issuer = s.auth.jwt_issuer;
  o.jwt.audience = s.auth.jwt_audience;
  o.jwt.ttl = std::chrono::seconds(s.auth.token_ttl_s);
  o.login_per_minute = s.rate_limit.login_per_minute;
  o.orders_per_second = s.rate_limit.orders_per_second;
  o.orders_burst = s.rate_limit.orders_burst;
  try {
    http = std::make_unique<sh::server>(o, rt, reads, *users, *metrics);
    http->start();
  } catch (const std::exception& e) {
    sc::log(sc::log_level::error, e.what());  // names host:port
    return 1;
  }
  std::cout << "saga-node: http listening on " << s.http.host << ':' << http->port() << std::endl;
  return 0;
}

int main(int argc, char** argv) {
  auto loaded = sc::load(argc, argv, sc::process_environment());
  if (!loaded.config) {
    (loaded.exit_status == 0 ? std::cout : std::cerr) << loaded.message << std::endl;
    return loaded.exit_status;
  }
  const sc::node_config& s = *loaded.config;
  if (s.http.port != 0 && !s.projections) {
    std::cerr << "saga-node: projections: the HTTP front reads the projections; --no-projections "
                 "needs http.port = 0"
              << std::endl;
    return 2;
  }
  // Nothing is logged before the migrations ran: a failing start-up says one thing only.
  sc::setup_logging(s.log, s.node_id);

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
  sc::log(sc::log_level::info, "starting: config " +
                                   (s.config_file.empty() ? std::string("(none)") : s.config_file) +
                                   ", projections " + (s.projections ? "on" : "off") +
                                   ", log level " + std::string(sc::to_string(s.log.level)));

  sp::pg_store_options store;
  store.database_url = s.database_url;
  store.application_name = "saga-node/" + s.node_id;
  const auto options = runtime_options_of(s);
  int status = 0;
  {
    sa::runtime rt(options, [store] { return std::make_unique<sp::pg_event_store>(store); });
    std::unique_ptr<sa::read_side> reads;  // always there when HTTP is on (checked above)
    if (s.projections) {
      sa::read_side_options ro;
      ro.database_url = s.database_url;
      ro.batch_interval = std::chrono::milliseconds(s.projection_batch_interval_ms);
      reads = std::make_unique<sa::read_side>(rt.system(), ro);
    }
    sp::pg_event_store journal(store);
    const auto recovered = sa::recover_unfinished(rt, journal);
    std::cout << "saga-node: recovery resumed " << recovered.resumed << " of "
              << recovered.unfinished_sagas << " unfinished sagas, started " << recovered.started
              << " of " << recovered.orphan_orders << " sagas of orders without one" << std::endl;
    for (const auto& line : recovered.errors) sc::log(sc::log_level::warn, "recovery: " + line);
    if (s.demo_catalog && !seed_catalog(rt)) status = 1;

    // The HTTP front last: it answers from everything above. Declared after them, it stops
    // first, so no request reaches a runtime that is going away.
    std::unique_ptr<sh::auth::user_service> users;
    std::unique_ptr<sh::metrics_registry> metrics;
    std::unique_ptr<sh::server> http;
    if (status == 0 && s.http.port != 0) status = start_http(s, rt, *reads, users, metrics, http);

    std::atomic<bool> stopping{false};
    std::thread load;
    if (s.load > 0 && status == 0) {
      load = std::thread([&] {
        const auto placed = place_load(rt, s, stopping);
        std::cout << "saga-node: load placed " << placed << " orders" << std::endl;
      });
    }
    int received = 0;
    if (status == 0) {
      std::cout << "saga-node: ready (node " << s.node_id << "); stop with SIGTERM or Ctrl-C"
                << std::endl;
      sigwait(&stop_signals, &received);
    }
    stopping = true;
    if (http) http->stop();
    if (load.joinable()) load.join();
    if (status == 0) {
      std::cout << "saga-node: " << (received == SIGTERM ? "SIGTERM" : "stop")
                << " received, draining" << std::endl;
    }
    // The read side first (its actors run on the runtime's system), then the runtime: regions
    // stop, the journal writer writes what is queued and answers it.
  }
  std::cout << "saga-node: stopped" << std::endl;
  return status;
}

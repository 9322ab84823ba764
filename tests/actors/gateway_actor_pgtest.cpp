// The payment gateway actor over the simulated gateway and a PostgreSQL ledger (DATABASE_URL, a
// fresh schema per test): batching under load, idempotent keys, a failing factory, stopping with
// requests in flight, and an actor system that shuts down promptly around it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "actors/gateway_actor.hpp"
#include "actors/gateway_inspect.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_admin.hpp"

namespace sp = saga::persistence;
using saga::actors::gateway_actor;
using saga::actors::gateway_actor_options;
using namespace std::chrono_literals;

namespace {

struct gateway_config : caf::actor_system_config {
  gateway_config() {
    saga::actors::add_gateway_message_types(*this);
    set("scheduler.max-threads", 2);
  }
};

/// A migrated schema of this test's own, dropped at the end.
struct ledger_schema {
  std::string url;
  std::string name;
  ledger_schema() {
    const char* env = std::getenv("DATABASE_URL");
    BOOST_REQUIRE_MESSAGE(env != nullptr && *env != '\0',
                          "DATABASE_URL is not set: the actor pg tests need a PostgreSQL "
                          "(script/test starts a private cluster)");
    url = env;
    static std::atomic<int> counter{0};
    std::random_device rd;
    name = "gateway_test_" + std::to_string(rd() % 1'000'000'000) + "_" +
           std::to_string(counter.fetch_add(1));
    const auto applied = sp::apply_migrations(url, sp::migration_options{name});
    BOOST_REQUIRE_MESSAGE(
        applied.has_value(),
        "migrations failed: " + (applied ? std::string() : applied.error().message));
  }
  ~ledger_schema() { (void)sp::run_sql(url, "DROP SCHEMA IF EXISTS " + name + " CASCADE"); }
  ledger_schema(const ledger_schema&) = delete;
  ledger_schema& operator=(const ledger_schema&) = delete;

  /// Rows in this schema's ledger.
  long ledger_rows() const {
    const auto rows = sp::run_sql(url, "SELECT count(*) FROM " + name + ".payment_ledger");
    BOOST_REQUIRE_MESSAGE(rows.has_value(), (rows ? std::string() : rows.error().message));
    return std::stol((*rows)[0][0]);
  }
};

/// What the ledger saw: one record() call is one ledger transaction.
struct ledger_counters {
  std::atomic<int> calls{0};
  std::atomic<int> entries{0};
  std::atomic<int> largest{0};
};

class counting_ledger final : public sp::payment_ledger {
 public:
  counting_ledger(std::unique_ptr<sp::payment_ledger> target,
                  std::shared_ptr<ledger_counters> counters)
      : target_(std::move(target)), counters_(std::move(counters)) {}
  saga::expected<std::vector<sp::ledger_entry>, std::string> record(
      const std::vector<sp::ledger_entry>& entries) override {
    ++counters_->calls;
    counters_->entries += static_cast<int>(entries.size());
    int largest = counters_->largest.load();
    while (static_cast<int>(entries.size()) > largest &&
           !counters_->largest.compare_exchange_weak(largest, static_cast<int>(entries.size()))) {
    }
    return target_->record(entries);
  }
  saga::expected<std::vector<sp::ledger_entry>, std::string> entries_of_order(
      const std::string& order) override {
    return target_->entries_of_order(order);
  }
  saga::expected<std::vector<std::string>, std::string> orders_charged_twice() override {
    return target_->orders_charged_twice();
  }

 private:
  std::unique_ptr<sp::payment_ledger> target_;
  std::shared_ptr<ledger_counters> counters_;
};

/// A factory that opens a PostgreSQL ledger (on the actor's thread) and counts its calls.
saga::actors::gateway_factory pg_gateway(const ledger_schema& schema,
                                         std::shared_ptr<ledger_counters> counters,
                                         std::int64_t latency_ms = 0) {
  return [url = schema.url, name = schema.name, counters, latency_ms] {
    sp::gateway_options options;
    options.decline_above = 1'000'000;
    options.latency_ms = latency_ms;
    auto ledger = std::make_shared<counting_ledger>(sp::make_pg_ledger(url, name), counters);
    return sp::make_simulated_gateway(ledger, options);
  };
}

sp::gateway_request charge(const std::string& key, std::int64_t amount = 1500) {
  sp::gateway_request r;
  r.operation = sp::gateway_operation::charge;
  r.idempotency_key = key;
  r.payment_id = "pay-" + key;
  r.order_id = "order-" + key;
  r.customer_id = "cust-1";
  r.amount = amount;
  return r;
}

/// 200 requests: 160 distinct keys, every fifth request repeats an earlier key.
std::vector<sp::gateway_request> load(const std::string& prefix) {
  std::vector<sp::gateway_request> out;
  int next = 0;
  for (int i = 0; i < 200; ++i) {
    const int k = i % 5 == 4 ? (i * 7) % next : next++;
    out.push_back(charge(prefix + "-" + std::to_string(k)));
  }
  return out;
}

std::size_t distinct_keys(const std::vector<sp::gateway_request>& requests) {
  std::set<std::string> keys;
  for (const auto& r : requests) keys.insert(r.idempotency_key);
  return keys.size();
}

/// Every request ok, one first answer per key, repeats carry the same transaction id.
void check_answers(const std::vector<sp::gateway_request>& requests,
                   const std::vector<sp::gateway_result>& answers) {
  BOOST_REQUIRE_EQUAL(answers.size(), requests.size());
  std::map<std::string, std::string> tx;  // key → transaction id
  std::map<std::string, int> fresh;       // key → answers not replayed
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    BOOST_REQUIRE_MESSAGE(a.ok, "request " + std::to_string(i) + " failed: " + a.error);
    BOOST_TEST(a.answer.approved);
    const auto& key = requests[i].idempotency_key;
    auto [it, inserted] = tx.emplace(key, a.answer.transaction_id);
    if (!inserted) BOOST_TEST(it->second == a.answer.transaction_id);
    fresh[key] += a.replayed ? 0 : 1;
  }
  for (const auto& [key, n] : fresh) BOOST_TEST(n == 1, key << " was answered fresh " << n);
}

/// Runs `body`, failing (and ending the process: a hung CAF shutdown cannot be cancelled) when
/// it takes longer than `limit`.
void within(std::chrono::milliseconds limit, const char* what, std::function<void()> body) {
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  std::thread([body = std::move(body), done] {
    try {
      body();
      done->set_value();
    } catch (...) {  // a failed BOOST_REQUIRE: rethrown on the test thread
      done->set_exception(std::current_exception());
    }
  }).detach();
  if (finished.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: %s did not finish within %lld ms\n", what,
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  finished.get();
}

/// Sends every request at once from an event-based actor; the answers in request order.
std::vector<sp::gateway_result> ask_all_from_actor(
    caf::actor_system& system, const gateway_actor& gateway,
    const std::vector<sp::gateway_request>& requests) {
  auto promise = std::make_shared<std::promise<std::vector<sp::gateway_result>>>();
  auto future = promise->get_future();
  // `requests` travels as a spawn argument: CAF 0.17 dereferences a null argument tuple when a
  // function actor is spawned without arguments (UBSan: reference binding to null).
  system.spawn(
      [=](caf::event_based_actor* self, std::vector<sp::gateway_request> batch) {
        auto answers = std::make_shared<std::vector<sp::gateway_result>>(batch.size());
        auto left = std::make_shared<std::size_t>(batch.size());
        auto settle = [=](std::size_t i, sp::gateway_result r) {
          (*answers)[i] = std::move(r);
          if (--*left == 0) promise->set_value(*answers);
        };
        for (std::size_t i = 0; i < batch.size(); ++i) {
          self->request(gateway, 10s, batch[i])
              .then([=](sp::gateway_result& r) { settle(i, std::move(r)); },
                    [=](caf::error& err) {
                      sp::gateway_result r;
                      r.error = "no answer: " + self->system().render(err);
                      settle(i, std::move(r));
                    });
        }
      },
      requests);
  BOOST_REQUIRE(future.wait_for(30s) == std::future_status::ready);
  return future.get();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gateway_actor_on_postgres)

BOOST_AUTO_TEST_CASE(concurrent_requests_from_an_actor_share_ledger_transactions) {
  ledger_schema schema;
  auto counters = std::make_shared<ledger_counters>();
  const auto requests = load("actor");
  within(60s, "the load test", [&] {
    gateway_config config;
    caf::actor_system system{config};
    auto gateway = saga::actors::spawn_gateway(system, pg_gateway(schema, counters, 2));
    const auto answers = ask_all_from_actor(system, gateway, requests);
    check_answers(requests, answers);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
  });
  BOOST_TEST_MESSAGE("200 requests took " << counters->calls << " ledger transactions, the largest "
                                          << counters->largest << " entries");
  BOOST_TEST(counters->entries == 200);
  BOOST_TEST(counters->calls < 20);  // far fewer transactions than requests
  BOOST_TEST(schema.ledger_rows() == static_cast<long>(distinct_keys(requests)));
}

BOOST_AUTO_TEST_CASE(concurrent_requests_from_a_scoped_actor_respect_max_batch) {
  ledger_schema schema;
  auto counters = std::make_shared<ledger_counters>();
  const auto requests = load("scoped");
  within(60s, "the scoped-actor load test", [&] {
    gateway_config config;
    caf::actor_system system{config};
    gateway_actor_options options;
    options.max_batch = 16;
    auto gateway = saga::actors::spawn_gateway(system, pg_gateway(schema, counters, 2), options);
    caf::scoped_actor self{system};
    std::vector<sp::gateway_result> answers(requests.size());
    // Every request is on its way before the first answer is awaited.
    std::vector<decltype(self->request(gateway, 10s, requests[0]))> pending;
    for (const auto& r : requests) pending.push_back(self->request(gateway, 10s, r));
    for (std::size_t i = 0; i < pending.size(); ++i) {
      pending[i].receive([&](sp::gateway_result& r) { answers[i] = std::move(r); },
                         [&](caf::error& err) { answers[i].error = system.render(err); });
    }
    check_answers(requests, answers);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
  });
  BOOST_TEST_MESSAGE("200 requests, max_batch 16: " << counters->calls << " ledger transactions");
  BOOST_TEST(counters->largest <= 16);
  BOOST_TEST(counters->calls >= 13);  // 200 / 16
  BOOST_TEST(counters->calls < 100);
  BOOST_TEST(schema.ledger_rows() == static_cast<long>(distinct_keys(requests)));
}

BOOST_AUTO_TEST_CASE(a_throwing_factory_fails_the_batch_and_is_retried) {
  ledger_schema schema;
  auto counters = std::make_shared<ledger_counters>();
  auto attempts = std::make_shared<std::atomic<int>>(0);
  auto working = pg_gateway(schema, counters);
  within(30s, "the factory test", [&] {
    gateway_config config;
    caf::actor_system system{config};
    auto gateway = saga::actors::spawn_gateway(system, [attempts, working] {
      if (attempts->fetch_add(1) == 0) throw std::runtime_error("database is starting up");
      return working();
    });
    caf::scoped_actor self{system};
    auto ask = [&](const sp::gateway_request& r) {
      sp::gateway_result out;
      self->request(gateway, 10s, r)
          .receive([&](sp::gateway_result& x) { out = std::move(x); },
                   [&](caf::error& err) { out.error = "no answer: " + system.render(err); });
      return out;
    };
    const auto first = ask(charge("factory-1"));
    BOOST_TEST(!first.ok);
    BOOST_TEST(first.error == "payment gateway unavailable: database is starting up");
    const auto second = ask(charge("factory-1"));
    BOOST_REQUIRE_MESSAGE(second.ok, second.error);
    BOOST_TEST(!second.replayed);  // the failed attempt recorded nothing
    const auto third = ask(charge("factory-1"));
    BOOST_REQUIRE_MESSAGE(third.ok, third.error);
    BOOST_TEST(third.replayed);
    BOOST_TEST(third.answer.transaction_id == second.answer.transaction_id);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
  });
  BOOST_TEST(attempts->load() == 2);  // made once more, then kept
  BOOST_TEST(schema.ledger_rows() == 1);
}

namespace {

/// How the requests of an exit test were answered.
struct exit_tally {
  int ok = 0, stopped = 0, bounced = 0, other = 0;
  bool down_with_user_shutdown = false;
};

/// Sends one request and, while the gateway is busy with it (200 ms latency), nine more and
/// then `exit`; collects every answer and the gateway's down message.
exit_tally run_exit_case(const ledger_schema& schema, const std::string& prefix,
                         const std::function<void(const gateway_actor&)>& exit) {
  exit_tally tally;
  auto counters = std::make_shared<ledger_counters>();
  within(30s, "the exit test", [&] {
    gateway_config config;
    caf::actor_system system{config};
    auto gateway = saga::actors::spawn_gateway(system, pg_gateway(schema, counters, 200));
    caf::scoped_actor self{system};
    self->monitor(gateway);
    std::vector<decltype(self->request(gateway, 10s, charge("x")))> pending;
    pending.push_back(self->request(gateway, 10s, charge(prefix + "-0")));
    std::this_thread::sleep_for(50ms);  // the gateway is now inside its first batch
    for (int i = 1; i < 10; ++i) {
      pending.push_back(self->request(gateway, 10s, charge(prefix + "-" + std::to_string(i))));
    }
    exit(gateway);
    for (auto& p : pending) {
      p.receive(
          [&](sp::gateway_result& r) {
            if (r.ok) {
              ++tally.ok;
            } else if (r.error == "payment gateway stopped") {
              ++tally.stopped;
            } else {
              ++tally.other;
              BOOST_TEST_MESSAGE("unexpected answer: " << r.error);
            }
          },
          [&](caf::error& err) {
            if (err == caf::sec::request_receiver_down) {
              ++tally.bounced;
            } else {
              ++tally.other;  // a timeout would mean a request was never answered
              BOOST_TEST_MESSAGE("unexpected error: " << system.render(err));
            }
          });
    }
    self->receive(
        [&](caf::down_msg& msg) {
          tally.down_with_user_shutdown = msg.reason == caf::exit_reason::user_shutdown;
        },
        caf::after(5s) >> [] {});
  });
  return tally;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_exit_answers_parked_requests_and_stops_the_actor) {
  ledger_schema schema;
  // An ordinary exit queues behind the nine requests; the first of them, taken from the mailbox
  // after the busy batch, queues the flush behind the exit, so all nine are parked when the exit
  // is handled: each is answered "stopped", none is recorded.
  const auto tally = run_exit_case(schema, "parked", [](const gateway_actor& gateway) {
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
  });
  BOOST_TEST(tally.ok == 1);
  BOOST_TEST(tally.stopped == 9);
  BOOST_TEST(tally.other == 0);
  BOOST_TEST(tally.down_with_user_shutdown);
  BOOST_TEST(schema.ledger_rows() == 1);
}

BOOST_AUTO_TEST_CASE(an_urgent_exit_bounces_queued_requests) {
  ledger_schema schema;
  // A high-priority exit overtakes the queued requests: CAF answers them with
  // request_receiver_down when the actor's mailbox closes.
  const auto tally = run_exit_case(schema, "urgent", [](const gateway_actor& gateway) {
    caf::anon_send<caf::message_priority::high>(
        caf::actor_cast<caf::actor>(gateway),
        caf::exit_msg{gateway.address(), caf::exit_reason::user_shutdown});
  });
  BOOST_TEST(tally.ok == 1);
  BOOST_TEST(tally.bounced == 9);
  BOOST_TEST(tally.other == 0);
  BOOST_TEST(tally.down_with_user_shutdown);
  BOOST_TEST(schema.ledger_rows() == 1);
}

BOOST_AUTO_TEST_CASE(the_actor_system_shuts_down_promptly_around_a_gateway) {
  ledger_schema schema;
  auto counters = std::make_shared<ledger_counters>();
  auto run = [&](bool send_exit) {
    const auto start = std::chrono::steady_clock::now();
    within(10s, send_exit ? "shutdown after an exit" : "shutdown with the handle dropped", [&] {
      gateway_config config;
      caf::actor_system system{config};
      {
        auto gateway = saga::actors::spawn_gateway(system, pg_gateway(schema, counters));
        caf::scoped_actor self{system};
        bool ok = false;
        self->request(gateway, 10s, charge(send_exit ? "shutdown-exit" : "shutdown-drop"))
            .receive([&](sp::gateway_result& r) { ok = r.ok; }, [&](caf::error&) {});
        BOOST_TEST(ok);
        if (send_exit) caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
      }
      // ~actor_system waits for every actor: the gateway must end by itself now.
    });
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    BOOST_TEST(took < 3000, "the actor system took " << took << " ms to shut down");
  };
  run(true);
  run(false);
  BOOST_TEST(schema.ledger_rows() == 2);
}

BOOST_AUTO_TEST_SUITE_END()

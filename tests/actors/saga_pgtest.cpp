// Saga actors against PostgreSQL (DATABASE_URL, a fresh schema per process): the journal and the
// payment ledger are real tables. The happy path and a declined payment end to end, checked in
// the journal, the ledger and the aggregates.
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include <boost/test/unit_test.hpp>

#include "persistence/migrations.hpp"
#include "persistence/pg_event_store.hpp"
#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;
namespace ord = saga::domain::order;
namespace pay = saga::domain::payment;

namespace {

struct saga_database {
  std::string url;
  std::string schema;
};

/// DATABASE_URL and a schema of this process's own, migrated once.
const saga_database& saga_db() {
  static const saga_database db = [] {
    const char* url = std::getenv("DATABASE_URL");
    BOOST_REQUIRE_MESSAGE(url != nullptr && *url != '\0',
                          "DATABASE_URL is not set: the saga pg tests need a PostgreSQL "
                          "(script/test starts a private cluster)");
    std::random_device rd;
    saga_database out{url, "saga_actors_test_" + std::to_string(rd() % 1'000'000'000)};
    auto applied = saga::persistence::apply_migrations(url, {out.schema});
    BOOST_REQUIRE_MESSAGE(
        applied.has_value(),
        ("migrations failed: " + (applied ? std::string() : applied.error().message)));
    return out;
  }();
  return db;
}

/// A runtime on the PostgreSQL journal and ledger (each reader, the writer and the gateway
/// open their own connections).
struct pg_saga_setup {
  saga_database db = saga_db();
  std::shared_ptr<journal_probe> probe = std::make_shared<journal_probe>();
  sp::gateway_options gateway;
  /// The test thread's own view of the ledger.
  std::shared_ptr<sp::payment_ledger> ledger = sp::make_pg_ledger(db.url, db.schema);

  std::unique_ptr<runtime> start() const {
    auto options = saga_fast_options();
    options.gateway = [db = db, settings = gateway]() {
      return sp::make_simulated_gateway(
          std::shared_ptr<sp::payment_ledger>(sp::make_pg_ledger(db.url, db.schema)), settings);
    };
    auto factory = [db = db, probe = probe]() -> std::unique_ptr<sp::event_store> {
      return std::make_unique<journal_handle>(open(db), probe);
    };
    return std::make_unique<runtime>(options, factory);
  }
  static std::shared_ptr<sp::event_store> open(const saga_database& db) {
    sp::pg_store_options options;
    options.database_url = db.url;
    options.schema = db.schema;
    options.application_name = "saga-actors-saga-test";
    return std::make_shared<sp::pg_event_store>(options);
  }
  std::vector<sp::recorded_event> events(const std::string& stream) const {
    auto read = open(db)->read_stream(stream);
    BOOST_REQUIRE_MESSAGE(read.has_value(), "read_stream failed");
    return *read;
  }
};

std::string unique_id(const std::string& prefix) {
  static std::random_device rd;
  return prefix + "-" + std::to_string(rd());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sagas_on_postgres)

BOOST_AUTO_TEST_CASE(an_order_completes_with_one_charge_in_the_pg_ledger) {
  pg_saga_setup setup;
  placed_order placed;
  {
    auto rt = setup.start();
    saga_waiter waiter(*rt);
    const auto product = unique_id("pg-saga");
    BOOST_REQUIRE(rt->send(product, register_product(product, 10, "reg")).ok());

    placed = rt->place_order(order_of(product, 2, "pg-place"));
    BOOST_REQUIRE_MESSAGE(placed.ok() && placed.saga_started, placed.message);
    auto done = waiter.wait(placed.saga_id, sg::status::completed);
    BOOST_REQUIRE(done.has_value());

    BOOST_TEST(rt->order_state(placed.order_id).state.status_ == ord::status::confirmed);
    auto payment = rt->payment_state(sg::payment_id_for(placed.order_id));
    BOOST_TEST(payment.state.status_ == pay::status::processed);
    auto stock = rt->inventory_state(product);
    BOOST_TEST(stock.state.available == 8);
    BOOST_TEST(stock.state.reserved == 2);
    auto entries = setup.ledger->entries_of_order(placed.order_id);
    BOOST_REQUIRE(entries.has_value());
    BOOST_REQUIRE_EQUAL(entries->size(), 1u);
    BOOST_TEST(entries->front().approved);
    BOOST_TEST(entries->front().amount == 3000);
    BOOST_TEST(entries->front().transaction_id == payment.state.transaction_id);
    BOOST_TEST(entries->front().idempotency_key == placed.saga_id + "/process_payment/process");

    auto journal = setup.events("saga-" + placed.saga_id);
    BOOST_REQUIRE(!journal.empty());
    BOOST_TEST(journal.front().event_type == "SagaStarted");
    BOOST_TEST(journal.back().event_type == "SagaCompleted");
    BOOST_TEST(journal.back().metadata.correlation_id == placed.correlation_id);
    // The PostgreSQL store takes the riders: the saga's start shares OrderCreated's transaction
    // and its end OrderConfirmed's (recorded_at is the transaction's start).
    const auto order = setup.events("order-" + placed.order_id);
    BOOST_REQUIRE_EQUAL(order.size(), 2u);
    BOOST_TEST(order.front().event_type == "OrderCreated");
    BOOST_TEST(journal.front().recorded_at_ms == order.front().recorded_at_ms);
    BOOST_TEST(order.back().event_type == "OrderConfirmed");
    BOOST_TEST(journal.back().recorded_at_ms == order.back().recorded_at_ms);
    BOOST_TEST(journal.back().position > order.back().position);
  }
  // A new runtime on the same database answers the finished saga from the journal.
  auto again = setup.start();
  auto state = again->saga_state(placed.saga_id);
  BOOST_REQUIRE(state.ok);
  BOOST_TEST(state.state.status_ == sg::status::completed);
}

BOOST_AUTO_TEST_CASE(a_declined_payment_is_compensated_on_postgres) {
  pg_saga_setup setup;
  setup.gateway.decline_above = 1000;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  const auto product = unique_id("pg-decline");
  BOOST_REQUIRE(rt->send(product, register_product(product, 10, "reg")).ok());

  auto placed = rt->place_order(order_of(product, 1));
  BOOST_REQUIRE_MESSAGE(placed.ok() && placed.saga_started, placed.message);
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());

  auto order = rt->order_state(placed.order_id);
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(order.state.failure_reason.find("declined") != std::string::npos);
  auto stock = rt->inventory_state(product);
  BOOST_TEST(stock.state.available == 10);
  BOOST_TEST(stock.state.reserved == 0);
  auto entries = setup.ledger->entries_of_order(placed.order_id);
  BOOST_REQUIRE(entries.has_value());
  BOOST_REQUIRE_EQUAL(entries->size(), 1u);
  BOOST_TEST(!entries->front().approved);
  auto twice = setup.ledger->orders_charged_twice();
  BOOST_REQUIRE(twice.has_value());
  BOOST_TEST(twice->empty());
}

BOOST_AUTO_TEST_SUITE_END()

// The actor runtime against PostgreSQL (DATABASE_URL, a fresh schema per process): the command
// flow with concurrency, a crash and passivation, and recovery of a 10,000-event stream with and
// without a snapshot.
#include <chrono>
#include <cstdlib>
#include <future>
#include <random>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "actors/aggregate_traits.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_event_store.hpp"
#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;

namespace {

/// DATABASE_URL and a schema of this process's own, migrated once.
struct pg_database {
  std::string url;
  std::string schema;
};

const pg_database& database() {
  static const pg_database db = [] {
    const char* url = std::getenv("DATABASE_URL");
    BOOST_REQUIRE_MESSAGE(url != nullptr && *url != '\0',
                          "DATABASE_URL is not set: the actor pg tests need a PostgreSQL "
                          "(script/test starts a private cluster)");
    std::random_device rd;
    pg_database out{url, "actors_test_" + std::to_string(rd() % 1'000'000'000)};
    auto applied = saga::persistence::apply_migrations(url, {out.schema});
    BOOST_REQUIRE_MESSAGE(
        applied.has_value(),
        ("migrations failed: " + (applied ? std::string() : applied.error().message)));
    return out;
  }();
  return db;
}

/// A PostgreSQL journal: each handle is its own connection, all share one probe.
struct pg_journal {
  std::shared_ptr<journal_probe> faults = std::make_shared<journal_probe>();
  pg_database db = database();  // on the test thread, where a failed check belongs

  runtime::store_factory factory() const {
    return [faults = faults, db = db]() -> std::unique_ptr<sp::event_store> {
      return std::make_unique<journal_handle>(open(db), faults);
    };
  }
  std::shared_ptr<sp::event_store> open() const { return open(db); }
  static std::shared_ptr<sp::event_store> open(const pg_database& db) {
    sp::pg_store_options options;
    options.database_url = db.url;
    options.schema = db.schema;
    options.application_name = "saga-actors-test";
    return std::make_shared<sp::pg_event_store>(options);
  }
};

std::string unique_id(const std::string& prefix) {
  static std::random_device rd;
  return prefix + "-" + std::to_string(rd());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(runtime_on_postgres)

BOOST_AUTO_TEST_CASE(command_flow_concurrency_crash_and_passivation) {
  pg_journal journal;
  auto options = fast_options();
  options.regions.passivate_after = 100ms;
  runtime rt(options, journal.factory());
  const auto product = unique_id("pg-hot");

  BOOST_REQUIRE(
      rt.send(product, register_product(product, 10, "reg"), {"corr-pg", "", "", ""}).ok());
  std::vector<std::future<command_reply<inv::event>>> replies;
  for (int i = 0; i < 50; ++i) {
    const auto order = "order-" + std::to_string(i);
    replies.push_back(rt.send_async(product, reserve(order, 1, order + "/reserve")));
  }
  std::size_t reserved = 0;
  for (auto& f : replies) {
    auto r = f.get();
    BOOST_REQUIRE_MESSAGE(r.kind == reply_kind::accepted, r.message);
    reserved += count_of<inv::inventory_reserved>(r);
  }
  BOOST_TEST(reserved == 10u);
  BOOST_TEST(rt.send(product, reserve("order-3", 1, "order-3/reserve")).kind ==
             reply_kind::replayed);
  BOOST_TEST(rt.send(product, restock(-1, "bad")).kind == reply_kind::rejected);

  // A crash after the commit: the restarted actor rebuilds from PostgreSQL.
  options.regions.faults->crash_on(fault_point::after_append, "restock-1", 1);
  auto restocked = rt.send(product, restock(5, "restock-1"));
  BOOST_TEST(restocked.ok());
  BOOST_TEST(restocked.version == 52);

  auto before = rt.inventory_state(product);
  BOOST_REQUIRE(before.ok);
  BOOST_TEST(before.state.available == 5);
  BOOST_TEST(before.state.reserved == 10);
  BOOST_REQUIRE(eventually([&] { return rt.stats(aggregate_kind::inventory).active == 0; }));
  auto after = rt.inventory_state(product);
  BOOST_REQUIRE(after.ok);
  BOOST_TEST(dom::encode_state(after.state) == dom::encode_state(before.state));

  auto events = journal.open()->read_stream(stream_id_of("inventory", product));
  BOOST_REQUIRE(events.has_value());
  BOOST_TEST(events->size() == 52u);
  BOOST_TEST(events->front().metadata.correlation_id == "corr-pg");
}

BOOST_AUTO_TEST_CASE(a_ten_thousand_event_stream_recovers_with_and_without_a_snapshot) {
  pg_journal journal;
  const auto product = unique_id("pg-long");
  const auto stream = stream_id_of("inventory", product);
  constexpr int total = 10'000;

  // Written straight to the journal, folded here as the reference state.
  std::vector<inv::event> history;
  history.push_back(inv::product_registered{product, "Long", 100, 0, 1, "reg"});
  // Restocks without idempotency keys: every key stays in the state (and its snapshot) for
  // good, and 10,000 of them would exceed the journal's 1 MiB snapshot payload limit.
  for (int i = 1; i < total; ++i) history.push_back(inv::stock_added{product, 1, 1 + i, ""});
  sp::append_request request{stream, "inventory", 0, {}};
  inv::state reference;
  std::string snapshot_payload;
  for (std::size_t i = 0; i < history.size(); ++i) {
    auto encoded = dom::encode(history[i]);
    request.events.push_back(
        {sp::new_uuid(), encoded.type, encoded.schema_version, encoded.payload, {}});
    reference = inv::evolve(std::move(reference), history[i]);
    if (i + 1 == 9'000) snapshot_payload = dom::encode_state(reference);
  }
  auto store = journal.open();
  auto appended = store->append(request);
  BOOST_REQUIRE_MESSAGE(appended.has_value(),
                        (appended ? std::string() : appended.error().message));
  BOOST_REQUIRE_EQUAL(appended->version, total);

  auto options = fast_options();
  {
    runtime rt(options, journal.factory());
    const auto start = std::chrono::steady_clock::now();
    auto state = rt.inventory_state(product);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_REQUIRE_MESSAGE(state.ok, state.message);
    BOOST_TEST(dom::encode_state(state.state) == dom::encode_state(reference));
    BOOST_TEST(journal.faults->last_read_from.load() == 1);
    BOOST_TEST(journal.faults->last_read_events.load() == std::uint64_t{total});
    BOOST_TEST_MESSAGE("full replay of 10000 events: "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                       << " ms");
  }

  sp::snapshot snap;
  snap.stream_id = stream;
  snap.stream_type = "inventory";
  snap.version = 9'000;
  snap.payload = snapshot_payload;
  auto saved = store->save_snapshot(snap);
  BOOST_REQUIRE_MESSAGE(saved.has_value(), (saved ? std::string() : saved.error().message));
  BOOST_REQUIRE(*saved);
  {
    runtime rt(options, journal.factory());
    const auto start = std::chrono::steady_clock::now();
    auto state = rt.inventory_state(product);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_REQUIRE_MESSAGE(state.ok, state.message);
    BOOST_TEST(dom::encode_state(state.state) == dom::encode_state(reference));
    BOOST_TEST(journal.faults->last_read_from.load() == 9'001);
    BOOST_TEST(journal.faults->last_read_events.load() == 1'000u);
    BOOST_TEST_MESSAGE("recovery from a snapshot + 1000 events: "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                       << " ms");
    // And it keeps working on top of the recovered state.
    auto more = rt.send(product, restock(1, "after-recovery"));
    BOOST_TEST(more.kind == reply_kind::accepted);
    BOOST_TEST(more.version == total + 1);
  }
}

BOOST_AUTO_TEST_SUITE_END()

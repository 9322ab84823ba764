// The actor runtime over the in-memory journal: command flow, rejections, idempotent replay,
// passivation, snapshots, concurrency on one aggregate, journal conflicts and failures.
#include <future>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;

BOOST_AUTO_TEST_SUITE(runtime_flow)

BOOST_AUTO_TEST_CASE(commands_are_persisted_then_answered_with_their_events) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());

  command_meta meta{"corr-1", "cause-1", "cmd-1", "user-1"};
  auto registered = rt.send("p1", register_product("p1", 5, "k-reg"), meta);
  BOOST_TEST(registered.kind == reply_kind::accepted);
  BOOST_TEST(registered.version == 1);
  BOOST_TEST(count_of<inv::product_registered>(registered) == 1u);

  auto restocked = rt.send("p1", restock(3, "k-restock"));
  BOOST_TEST(restocked.kind == reply_kind::accepted);
  BOOST_TEST(restocked.version == 2);

  auto reserved = rt.send("p1", reserve("o1", 4, "k-res"));
  BOOST_TEST(reserved.kind == reply_kind::accepted);
  BOOST_TEST(reserved.version == 3);
  BOOST_TEST(count_of<inv::inventory_reserved>(reserved) == 1u);

  // Persist, then reply: every answered event is already in the journal.
  auto events = journal.events("inventory-p1");
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[0].event_type == "ProductRegistered");
  BOOST_TEST(events[0].stream_type == "inventory");
  BOOST_TEST(events[0].metadata.correlation_id == "corr-1");
  BOOST_TEST(events[0].metadata.user_id == "user-1");
  BOOST_TEST(events[0].metadata.node_id == "test-node");
  BOOST_TEST(events[2].event_type == "InventoryReserved");

  auto state = rt.inventory_state("p1");
  BOOST_REQUIRE(state.ok);
  BOOST_TEST(state.state.available == 4);
  BOOST_TEST(state.state.reserved == 4);
  BOOST_TEST(state.state.version == 3);
}

BOOST_AUTO_TEST_CASE(a_rejected_command_leaves_the_actor_alive_and_writes_nothing) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());

  auto unknown = rt.send("p2", reserve("o1", 1, "k1"));
  BOOST_TEST(unknown.kind == reply_kind::rejected);
  BOOST_TEST(unknown.rejection == dom::rejection_code::unknown_product);
  BOOST_TEST(journal.events("inventory-p2").empty());

  BOOST_TEST(rt.send("p2", register_product("p2", 1, "k2")).kind == reply_kind::accepted);
  auto bad = rt.send("p2", restock(-5, "k3"));
  BOOST_TEST(bad.kind == reply_kind::rejected);
  BOOST_TEST(bad.rejection == dom::rejection_code::invalid_quantity);
  BOOST_TEST(bad.version == 1);
  BOOST_TEST(rt.send("p2", restock(2, "k4")).kind == reply_kind::accepted);

  auto stats = rt.stats(aggregate_kind::inventory);
  BOOST_TEST(stats.spawned == 1u);  // the same actor served every command
  BOOST_TEST(stats.crashes == 0u);
  BOOST_TEST(journal.events("inventory-p2").size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_replayed_idempotency_key_answers_the_earlier_outcome_without_appending) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());
  BOOST_REQUIRE(rt.send("p3", register_product("p3", 10, "reg")).ok());

  auto first = rt.send("p3", reserve("o1", 2, "saga-1/reserve"));
  BOOST_TEST(first.kind == reply_kind::accepted);
  auto again = rt.send("p3", reserve("o1", 2, "saga-1/reserve"));
  BOOST_TEST(again.kind == reply_kind::replayed);
  BOOST_REQUIRE_EQUAL(again.events.size(), 1u);
  BOOST_TEST(std::get<inv::inventory_reserved>(again.events[0]).order_id == "o1");
  BOOST_TEST(again.version == 2);
  BOOST_TEST(journal.events("inventory-p3").size() == 2u);
  BOOST_TEST(rt.inventory_state("p3").state.available == 8);
}

BOOST_AUTO_TEST_CASE(each_aggregate_type_has_a_working_region) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());

  dom::order::create create{"o-1",       "c-1",          {{"p1", "Widget", 2, 1500}},
                            "1 Main St", "corr-o",       "saga-1",
                            1000,        "saga-1/create"};
  auto created = rt.send("o-1", create);
  BOOST_TEST(created.kind == reply_kind::accepted);
  BOOST_TEST(std::get<dom::order::order_created>(created.events.at(0)).total == 3000);
  auto confirmed = rt.send("o-1", dom::order::confirm{2000, "saga-1/confirm"});
  BOOST_TEST(confirmed.kind == reply_kind::accepted);
  BOOST_TEST(rt.order_state("o-1").state.status_ == dom::order::status::confirmed);
  BOOST_TEST(journal.events("order-o-1").size() == 2u);

  dom::payment::process charge{"pay-1",
                               "o-1",
                               "c-1",
                               3000,
                               1500,
                               "saga-1/pay",
                               dom::payment::gateway_answer{true, "tx-1", ""}};
  auto paid = rt.send("pay-1", charge);
  BOOST_TEST(paid.kind == reply_kind::accepted);
  BOOST_TEST(rt.payment_state("pay-1").state.status_ == dom::payment::status::processed);

  dom::user::register_user reg{
      "u-1", "a@example.com", "Ann", "$argon2id$hash", dom::user::role::customer, 1000};
  BOOST_TEST(rt.send("u-1", reg).kind == reply_kind::accepted);
  auto twice = rt.send("u-1", reg);
  BOOST_TEST(twice.kind == reply_kind::rejected);
  BOOST_TEST(twice.rejection == dom::rejection_code::already_exists);
  BOOST_TEST(rt.user_state("u-1").state.email == "a@example.com");
}

// An operator's confirm names no correlation id; its event carries the order's own, so the
// order's trace shows it. A command that names one keeps it.
BOOST_AUTO_TEST_CASE(events_of_a_command_without_correlation_id_carry_the_aggregates) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());
  dom::order::create create{"o-2",       "c-1",          {{"p1", "Widget", 1, 1500}},
                            "1 Main St", "corr-o2",      "saga-2",
                            1000,        "saga-2/create"};
  BOOST_REQUIRE(rt.send("o-2", create, command_meta{"corr-o2", "", "", ""}).ok());
  BOOST_REQUIRE(rt.confirm_order("o-2").ok());
  dom::order::create other = create;
  other.order_id = "o-3";
  other.correlation_id = "corr-o3";
  other.idempotency_key = "saga-3/create";
  BOOST_REQUIRE(rt.send("o-3", other, command_meta{"corr-o3", "", "", ""}).ok());
  BOOST_REQUIRE(rt.send("o-3", dom::order::cancel{"changed my mind", 2000, "o-3/cancel"},
                        command_meta{"corr-explicit", "", "", ""})
                    .ok());
  const auto o2 = journal.events("order-o-2");
  BOOST_REQUIRE_EQUAL(o2.size(), 2u);
  BOOST_TEST(o2[1].event_type == "OrderConfirmed");
  BOOST_TEST(o2[1].metadata.correlation_id == "corr-o2");
  const auto o3 = journal.events("order-o-3");
  BOOST_REQUIRE_EQUAL(o3.size(), 2u);
  BOOST_TEST(o3[1].metadata.correlation_id == "corr-explicit");
}

BOOST_AUTO_TEST_CASE(fifty_concurrent_reserves_of_one_unit_on_stock_ten_reserve_exactly_ten) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());
  BOOST_REQUIRE(rt.send("hot", register_product("hot", 10, "reg")).ok());

  std::vector<std::future<command_reply<inv::event>>> replies;
  for (int i = 0; i < 50; ++i) {
    const auto order = "order-" + std::to_string(i);
    replies.push_back(rt.send_async("hot", reserve(order, 1, order + "/reserve")));
  }
  std::size_t reserved = 0;
  std::size_t refused = 0;
  for (auto& f : replies) {
    auto r = f.get();
    BOOST_REQUIRE_MESSAGE(r.kind == reply_kind::accepted, r.message);
    reserved += count_of<inv::inventory_reserved>(r);
    refused += count_of<inv::inventory_reservation_failed>(r);
  }
  BOOST_TEST(reserved == 10u);
  BOOST_TEST(refused == 40u);
  auto state = rt.inventory_state("hot");
  BOOST_TEST(state.state.available == 0);
  BOOST_TEST(state.state.reserved == 10);
  BOOST_TEST(journal.events("inventory-hot").size() == 51u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(runtime_lifecycle)

BOOST_AUTO_TEST_CASE(an_idle_actor_is_passivated_and_reactivates_with_the_same_state) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.passivate_after = 50ms;
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("p4", register_product("p4", 7, "reg")).ok());
  BOOST_REQUIRE(rt.send("p4", reserve("o1", 3, "r1")).ok());
  const auto before = dom::encode_state(rt.inventory_state("p4").state);

  BOOST_REQUIRE(eventually([&] {
    auto s = rt.stats(aggregate_kind::inventory);
    return s.passivations >= 1 && s.active == 0;
  }));
  auto after = rt.inventory_state("p4");
  BOOST_REQUIRE(after.ok);
  BOOST_TEST(dom::encode_state(after.state) == before);
  BOOST_TEST(rt.stats(aggregate_kind::inventory).spawned == 2u);
  // The reactivated actor still knows the handled idempotency keys.
  BOOST_TEST(rt.send("p4", reserve("o1", 3, "r1")).kind == reply_kind::replayed);
}

/// Snapshots every 5 events; idle actors passivate quickly, so a test can watch a recovery.
static runtime_options snapshot_options() {
  auto options = fast_options();
  options.regions.snapshot_every = 5;
  options.regions.passivate_after = 50ms;
  return options;
}

BOOST_AUTO_TEST_CASE(snapshots_are_saved_every_n_events_and_used_on_recovery) {
  shared_journal journal;
  runtime rt(snapshot_options(), journal.factory());
  BOOST_REQUIRE(rt.send("p5", register_product("p5", 0, "reg")).ok());
  for (int i = 0; i < 11; ++i) {
    BOOST_REQUIRE(rt.send("p5", restock(1, "restock-" + std::to_string(i))).ok());
  }
  BOOST_REQUIRE(eventually([&] {
    auto snap = journal.store->load_snapshot("inventory-p5");
    return snap && *snap && (*snap)->version == 10;
  }));
  const auto before = dom::encode_state(rt.inventory_state("p5").state);

  BOOST_REQUIRE(eventually([&] { return rt.stats(aggregate_kind::inventory).active == 0; }));
  auto after = rt.inventory_state("p5");
  BOOST_REQUIRE(after.ok);
  BOOST_TEST(dom::encode_state(after.state) == before);
  // Recovery read only what follows the snapshot.
  BOOST_TEST(journal.faults->last_read_from.load() == 11);
  BOOST_TEST(journal.faults->last_read_events.load() == 2u);
  BOOST_TEST(after.state.available == 11);
  BOOST_TEST(after.state.version == 12);
}

BOOST_AUTO_TEST_CASE(a_big_state_is_snapshotted_less_often) {
  // Every reservation grows the inventory's state, so snapshots space out: at most 256
  // snapshot bytes per event instead of one snapshot every 5 events.
  shared_journal journal;
  runtime rt(snapshot_options(), journal.factory());
  BOOST_REQUIRE(rt.send("p9", register_product("p9", 1000, "reg")).ok());
  constexpr int orders = 200;
  for (int i = 0; i < orders; ++i) {
    const auto n = std::to_string(i);
    BOOST_REQUIRE(rt.send("p9", reserve("order-" + n, 1, "reserve-" + n)).ok());
  }
  const auto state = rt.inventory_state("p9");
  BOOST_REQUIRE(state.ok);
  const auto size = dom::encode_state(state.state).size();
  BOOST_TEST(size / 256 > 5u);  // big enough to space the snapshots out
  BOOST_REQUIRE(eventually([&] {
    auto snap = journal.store->load_snapshot("inventory-p9");
    return snap && *snap && (*snap)->version > orders / 2;
  }));
  // Every 5 events that would be 40 snapshots.
  BOOST_TEST(journal.faults->snapshots_saved.load() < orders / 5 / 2);
  BOOST_TEST(journal.faults->snapshots_saved.load() >= 3);

  // Recovery: the snapshot, then the events after it, at most about size / 256 of them.
  BOOST_REQUIRE(eventually([&] { return rt.stats(aggregate_kind::inventory).active == 0; }));
  auto after = rt.inventory_state("p9");
  BOOST_REQUIRE(after.ok);
  BOOST_TEST(dom::encode_state(after.state) == dom::encode_state(state.state));
  BOOST_TEST(journal.faults->last_read_from.load() > 1);
  BOOST_TEST(journal.faults->last_read_events.load() <= size / 256 + 1);
}

BOOST_AUTO_TEST_CASE(an_unusable_snapshot_falls_back_to_replaying_the_whole_stream) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("p6", register_product("p6", 4, "reg")).ok());
  BOOST_REQUIRE(rt.send("p6", restock(2, "k1")).ok());
  // A snapshot whose payload does not decode (e.g. written by an incompatible version).
  saga::persistence::snapshot bad{"inventory-p6", "inventory", 1, 1, R"({"nonsense":true})", 0};
  BOOST_REQUIRE(journal.store->save_snapshot(bad).has_value());

  runtime fresh(options, journal.factory());
  auto state = fresh.inventory_state("p6");
  BOOST_REQUIRE(state.ok);
  BOOST_TEST(state.state.available == 6);
  BOOST_TEST(state.state.version == 2);
  BOOST_TEST(journal.faults->last_read_from.load() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(runtime_journal)

BOOST_AUTO_TEST_CASE(a_version_conflict_reloads_the_stream_and_decides_again) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());
  BOOST_REQUIRE(rt.send("p7", register_product("p7", 1, "reg")).ok());

  // Another writer appends behind the actor's back.
  auto encoded = dom::encode(dom::inventory::event{inv::stock_added{"p7", 100, 5, "other"}});
  saga::persistence::append_request other{"inventory-p7", "inventory", 1, {}};
  other.events.push_back(
      {saga::persistence::new_uuid(), encoded.type, encoded.schema_version, encoded.payload, {}});
  BOOST_REQUIRE(journal.store->append(other).has_value());

  auto reserved = rt.send("p7", reserve("o1", 50, "r1"));
  BOOST_TEST(reserved.kind == reply_kind::accepted);
  BOOST_TEST(reserved.version == 3);
  BOOST_TEST(count_of<inv::inventory_reserved>(reserved) == 1u);  // decided on 101 available
  BOOST_TEST(rt.inventory_state("p7").state.available == 51);
}

BOOST_AUTO_TEST_CASE(a_failed_append_is_answered_retryable_and_the_actor_stays_consistent) {
  shared_journal journal;
  runtime rt(fast_options(), journal.factory());
  BOOST_REQUIRE(rt.send("p8", register_product("p8", 10, "reg")).ok());

  // Nothing written: the command fails, state unchanged, a retry succeeds.
  journal.faults->fail_before_write = 1;
  auto lost = rt.send("p8", reserve("o1", 2, "r1"));
  BOOST_TEST(lost.kind == reply_kind::failed);
  BOOST_TEST(lost.failure == failure_code::journal_unavailable);
  BOOST_TEST(lost.retryable());
  BOOST_TEST(rt.inventory_state("p8").state.available == 10);
  BOOST_TEST(rt.send("p8", reserve("o1", 2, "r1")).kind == reply_kind::accepted);

  // Written but reported failed: the actor re-reads before answering anything else.
  journal.faults->fail_after_write = 1;
  auto ambiguous = rt.send("p8", reserve("o2", 3, "r2"));
  BOOST_TEST(ambiguous.kind == reply_kind::failed);
  BOOST_TEST(ambiguous.retryable());
  auto state = rt.inventory_state("p8");
  BOOST_TEST(state.state.available == 5);
  BOOST_TEST(state.state.version == 3);
  auto retried = rt.send("p8", reserve("o2", 3, "r2"));
  BOOST_TEST(retried.kind == reply_kind::replayed);  // not reserved twice
  BOOST_TEST(journal.events("inventory-p8").size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

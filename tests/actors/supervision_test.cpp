// Supervision: crashes injected into aggregate actors are restarted from the journal, callers
// still get an answer, buffered messages survive a restart, poison commands are dropped after
// the budget, and a corrupt journal is a crash, never a silent skip.
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;

BOOST_AUTO_TEST_SUITE(supervision)

BOOST_AUTO_TEST_CASE(a_crash_before_decide_restarts_the_actor_and_the_caller_gets_an_answer) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("p1", register_product("p1", 10, "reg")).ok());

  options.regions.faults->crash_on(fault_point::before_decide, "r1", 1);
  auto reply = rt.send("p1", reserve("o1", 4, "r1"), {"corr-crash", "", "", ""});
  BOOST_TEST(reply.kind == reply_kind::accepted);
  BOOST_TEST(options.regions.faults->fired() == 1u);
  auto stats = rt.stats(aggregate_kind::inventory);
  BOOST_TEST(stats.crashes == 1u);
  BOOST_TEST(stats.restarts == 1u);
  BOOST_TEST(stats.spawned == 2u);
  auto state = rt.inventory_state("p1");
  BOOST_TEST(state.state.available == 6);
  BOOST_TEST(journal.events("inventory-p1").size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_crash_after_the_append_keeps_the_state_intact_and_appends_once) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("p2", register_product("p2", 10, "reg")).ok());

  options.regions.faults->crash_on(fault_point::after_append, "r1", 1);
  auto reply = rt.send("p2", reserve("o1", 4, "r1"));
  // The events were committed before the crash; the restarted actor rebuilt them from the
  // journal and answers the re-sent command from its idempotency record.
  BOOST_TEST(reply.ok());
  BOOST_TEST(reply.kind == reply_kind::replayed);
  BOOST_TEST(count_of<inv::inventory_reserved>(reply) == 1u);
  BOOST_TEST(reply.version == 2);
  BOOST_TEST(journal.events("inventory-p2").size() == 2u);
  auto state = rt.inventory_state("p2");
  BOOST_TEST(state.state.available == 6);
  BOOST_TEST(state.state.reserved == 4);
  BOOST_TEST(rt.stats(aggregate_kind::inventory).crashes == 1u);
}

BOOST_AUTO_TEST_CASE(a_poison_command_is_rejected_after_the_budget_and_the_actor_recovers) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.max_command_attempts = 3;
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("p3", register_product("p3", 10, "reg")).ok());

  options.regions.faults->crash_on(fault_point::before_decide, "poison", 1000);
  auto reply = rt.send("p3", reserve("o1", 1, "poison"));
  BOOST_TEST(reply.kind == reply_kind::failed);
  BOOST_TEST(reply.failure == failure_code::poison_command);
  BOOST_TEST(!reply.retryable());
  BOOST_TEST(options.regions.faults->fired() == 3u);  // tried exactly max_command_attempts times
  BOOST_TEST(rt.stats(aggregate_kind::inventory).poison == 1u);

  // The next command is served by a healthy actor; the poison one changed nothing.
  BOOST_TEST(rt.send("p3", reserve("o2", 2, "fine")).kind == reply_kind::accepted);
  BOOST_TEST(rt.inventory_state("p3").state.available == 8);
  BOOST_TEST(journal.events("inventory-p3").size() == 2u);
}

BOOST_AUTO_TEST_CASE(messages_sent_while_an_actor_restarts_are_not_lost) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.restart_backoff = 300ms;  // a window to send into
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("p4", register_product("p4", 0, "reg")).ok());

  options.regions.faults->crash_on(fault_point::before_decide, "first", 1);
  auto first = rt.send_async("p4", restock(1, "first"));
  BOOST_REQUIRE(eventually([&] { return rt.stats(aggregate_kind::inventory).crashes == 1; }));
  std::vector<std::future<command_reply<inv::event>>> during;
  for (int i = 0; i < 5; ++i) {
    during.push_back(rt.send_async("p4", restock(10, "during-" + std::to_string(i))));
  }
  BOOST_REQUIRE(eventually([&] { return rt.stats(aggregate_kind::inventory).buffered >= 6; }));
  BOOST_TEST(first.get().kind == reply_kind::accepted);
  for (auto& f : during) BOOST_TEST(f.get().kind == reply_kind::accepted);
  BOOST_TEST(rt.inventory_state("p4").state.available == 51);
  BOOST_TEST(rt.stats(aggregate_kind::inventory).restarts == 1u);
}

BOOST_AUTO_TEST_CASE(an_undecodable_event_crashes_recovery_and_is_never_skipped) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.max_restarts = 2;
  // A stream whose second event is corrupt (a field of the wrong type).
  auto good =
      dom::encode(dom::inventory::event{inv::product_registered{"bad", "B", 10, 5, 1, "reg"}});
  saga::persistence::append_request request{"inventory-bad", "inventory", 0, {}};
  request.events.push_back(
      {saga::persistence::new_uuid(), good.type, good.schema_version, good.payload, {}});
  request.events.push_back({saga::persistence::new_uuid(),
                            "StockAdded",
                            1,
                            R"({"schema_version":1,"productId":"bad","quantity":"many"})",
                            {}});
  BOOST_REQUIRE(journal.store->append(request).has_value());

  runtime rt(options, journal.factory());
  auto reply = rt.send("bad", restock(1, "k"));
  BOOST_TEST(reply.kind == reply_kind::failed);
  BOOST_TEST(reply.failure == failure_code::actor_unavailable);
  auto stats = rt.stats(aggregate_kind::inventory);
  BOOST_TEST(stats.crashes == 3u);  // first start + max_restarts restarts
  BOOST_TEST(stats.gave_up == 1u);
  BOOST_TEST(journal.events("inventory-bad").size() == 2u);  // nothing appended on top
  // The query path sees the same crash instead of a half-built state.
  BOOST_TEST(!rt.inventory_state("bad").ok);
}

BOOST_AUTO_TEST_CASE(a_recovery_that_hangs_is_stopped_by_the_region_after_recovery_timeout) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.recovery_timeout = 200ms;
  options.regions.max_restarts = 0;  // the first overdue recovery gives up: a definite answer
  runtime rt(options, journal.factory());
  // The read stalls far longer than the region waits: however slow the machine (a parallel
  // compile), the answer must come from the region's deadline, well before the read returns.
  journal.faults->stall_ms = 5000;
  journal.faults->stall_reads = 1;
  const auto start = std::chrono::steady_clock::now();
  auto state = rt.inventory_state("p-stalled");
  const auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  BOOST_TEST(!state.ok);
  BOOST_TEST(state.failure == failure_code::actor_unavailable);
  BOOST_TEST(waited_ms < 3500);  // answered by the region's deadline, not by the late read
  auto stats = rt.stats(aggregate_kind::inventory);
  BOOST_TEST(stats.crashes == 1u);
  BOOST_TEST(stats.gave_up == 1u);
  // The next activation (its read queued behind the stalled one) recovers normally.
  BOOST_TEST(eventually([&] { return rt.inventory_state("p-stalled").ok; }, 15000ms));
}

BOOST_AUTO_TEST_SUITE_END()

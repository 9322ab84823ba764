// Commands that queue up behind an append: the region sends several to the actor at once, the
// actor decides them together (each on the state the previous ones leave) and appends them as one
// request; every caller still gets its own answer, queries do not wait behind appends, a failed
// batch leaves the committed state, and a crash among several in flight is pinned on one command.
#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;
namespace pay = saga::domain::payment;

namespace {

using inventory_reply = command_reply<inv::event>;

/// Sends `first`, whose append the journal holds for `stall` (as the next `stalled_batches`
/// appends), then `rest` while it waits, so that the rest queue up in the actor behind it.
std::vector<std::future<inventory_reply>> behind_a_stalled_append(
    runtime& rt, shared_journal& journal, const std::string& id, inv::command first,
    const std::vector<inv::command>& rest, std::chrono::milliseconds stall, int stalled_batches) {
  journal.faults->stall_ms = static_cast<int>(stall.count());
  journal.faults->stall_next = stalled_batches;
  std::vector<std::future<inventory_reply>> out;
  out.push_back(rt.send_async(id, std::move(first)));
  // Once its append is in the journal, the actor is busy: the rest queue up behind it.
  BOOST_REQUIRE(eventually([&] { return journal.faults->stall_next.load() < stalled_batches; }));
  for (const auto& c : rest) out.push_back(rt.send_async(id, c));
  return out;
}

/// Another writer adds `quantity` to `id`'s stock, at `version`, straight into the journal.
void restock_elsewhere(shared_journal& journal, const std::string& id, std::int64_t quantity,
                       std::int64_t version) {
  auto external = dom::encode(dom::inventory::event{inv::stock_added{id, quantity, 1, "external"}});
  saga::persistence::append_request request{"inventory-" + id, "inventory", version, {}};
  request.events.push_back({saga::persistence::new_uuid(),
                            external.type,
                            external.schema_version,
                            external.payload,
                            {}});
  BOOST_REQUIRE(journal.store->append(request).has_value());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(batching)

BOOST_AUTO_TEST_CASE(commands_queued_behind_an_append_are_decided_together_each_answered) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b1", register_product("b1", 5, "reg")).ok());
  const auto before = rt.writer_stats().requests;

  std::vector<inv::command> rest;
  for (int i = 1; i < 20; ++i) {
    rest.push_back(reserve("o" + std::to_string(i), 1, "k" + std::to_string(i)));
  }
  auto replies = behind_a_stalled_append(rt, journal, "b1", reserve("o0", 1, "k0"), rest, 500ms, 1);

  std::size_t reserved = 0;
  std::size_t refused = 0;
  std::vector<std::int64_t> versions;
  for (auto& f : replies) {
    auto r = f.get();
    BOOST_TEST(r.kind == reply_kind::accepted);
    BOOST_REQUIRE(r.events.size() == 1u);
    reserved += count_of<inv::inventory_reserved>(r);
    refused += count_of<inv::inventory_reservation_failed>(r);
    versions.push_back(r.version);
  }
  // Each answer carries the version after its own event (the senders race, so in any order).
  std::sort(versions.begin(), versions.end());
  for (std::size_t i = 0; i < versions.size(); ++i) {
    BOOST_TEST(versions[i] == static_cast<std::int64_t>(i) + 2);
  }
  BOOST_TEST(reserved == 5u);
  BOOST_TEST(refused == 15u);
  BOOST_TEST(rt.inventory_state("b1").state.available == 0);
  BOOST_TEST(journal.events("inventory-b1").size() == 21u);
  // The first command went alone; the 19 behind it needed far fewer appends than commands.
  const auto appends = rt.writer_stats().requests - before;
  BOOST_TEST(appends <= 5u, appends << " appends for 20 commands");
}

BOOST_AUTO_TEST_CASE(a_query_is_answered_from_committed_state_while_an_append_is_in_flight) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b2", register_product("b2", 7, "reg")).ok());

  auto pending = behind_a_stalled_append(rt, journal, "b2", restock(3, "slow"), {}, 1500ms, 1);
  const auto state = rt.inventory_state("b2");
  BOOST_TEST(state.ok);
  BOOST_TEST(state.state.available == 7);  // the restock is not committed yet
  BOOST_TEST((pending[0].wait_for(0ms) == std::future_status::timeout));
  BOOST_TEST(pending[0].get().kind == reply_kind::accepted);
  BOOST_TEST(rt.inventory_state("b2").state.available == 10);
}

BOOST_AUTO_TEST_CASE(a_batch_whose_append_fails_answers_every_command_and_keeps_committed_state) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b3", register_product("b3", 0, "reg")).ok());

  auto replies = behind_a_stalled_append(
      rt, journal, "b3", restock(1, "first"),
      {restock(10, "second"), restock(100, "third"), restock(1000, "fourth")}, 1000ms, 1);
  // The first append is inside the journal (stalled): fail the next one, the batch.
  journal.faults->fail_before_write = 1;
  BOOST_TEST(replies[0].get().kind == reply_kind::accepted);
  for (std::size_t i = 1; i < replies.size(); ++i) {
    auto r = replies[i].get();
    BOOST_TEST(r.kind == reply_kind::failed);
    BOOST_TEST(r.retryable());
  }
  // The batch's events were applied before the append; the actor rebuilt the committed state.
  BOOST_TEST(rt.inventory_state("b3").state.available == 1);
  BOOST_TEST(journal.events("inventory-b3").size() == 2u);
  // Retrying is safe and lands once.
  BOOST_TEST(rt.send("b3", restock(10, "second")).kind == reply_kind::accepted);
  BOOST_TEST(rt.inventory_state("b3").state.available == 11);
}

BOOST_AUTO_TEST_CASE(a_batch_that_conflicts_with_another_writer_is_decided_again) {
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b4", register_product("b4", 0, "reg")).ok());

  auto replies = behind_a_stalled_append(rt, journal, "b4", restock(1, "first"),
                                         {restock(10, "second"), restock(100, "third")}, 1000ms, 2);
  BOOST_TEST(replies[0].get().kind == reply_kind::accepted);
  // The batch is now stalled in the journal, expecting version 2: another writer gets there first.
  restock_elsewhere(journal, "b4", 5000, 2);

  for (std::size_t i = 1; i < replies.size(); ++i) {
    auto r = replies[i].get();
    BOOST_TEST(r.kind == reply_kind::accepted);
  }
  BOOST_TEST(rt.inventory_state("b4").state.available == 5111);
  BOOST_TEST(journal.events("inventory-b4").size() == 5u);
}

BOOST_AUTO_TEST_CASE(commands_behind_an_append_in_flight_are_appended_before_it_commits) {
  // A popular product is not held to one journal round trip per batch: commands that arrive
  // while an append is in flight are decided on the state it leaves and appended behind it.
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b9", register_product("b9", 3, "reg")).ok());
  std::vector<inv::command> rest;
  for (int i = 1; i < 6; ++i) {
    rest.push_back(reserve("o" + std::to_string(i), 1, "k" + std::to_string(i)));
  }
  auto replies = behind_a_stalled_append(rt, journal, "b9", reserve("o0", 1, "k0"), rest, 800ms, 1);
  // Their appends reach the writer while the first is still in the journal.
  BOOST_TEST(eventually([&] { return rt.writer_stats().queue_depth >= 1; }));
  BOOST_TEST((replies[0].wait_for(0ms) == std::future_status::timeout));
  std::size_t reserved = 0;
  std::vector<std::int64_t> versions;
  for (auto& f : replies) {
    auto r = f.get();
    BOOST_TEST(r.kind == reply_kind::accepted);
    reserved += count_of<inv::inventory_reserved>(r);
    versions.push_back(r.version);
  }
  std::sort(versions.begin(), versions.end());
  for (std::size_t i = 0; i < versions.size(); ++i) {
    BOOST_TEST(versions[i] == static_cast<std::int64_t>(i) + 2);
  }
  BOOST_TEST(reserved == 3u);
  BOOST_TEST(rt.inventory_state("b9").state.available == 0);
  BOOST_TEST(journal.events("inventory-b9").size() == 7u);
}

BOOST_AUTO_TEST_CASE(an_append_behind_one_that_conflicts_is_decided_again_not_written_on_top) {
  // The first append of the batch in flight loses its version to another writer; the append
  // behind it, decided on its events, must not land on the other writer's event instead.
  shared_journal journal;
  auto options = fast_options();
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b10", register_product("b10", 0, "reg")).ok());
  auto first = behind_a_stalled_append(rt, journal, "b10", restock(1, "first"), {}, 800ms, 2);
  auto second = rt.send_async("b10", reserve("o2", 1, "k2"));  // decided on the restock
  BOOST_REQUIRE(eventually([&] { return rt.writer_stats().queue_depth >= 1; }));
  BOOST_TEST(first[0].get().kind == reply_kind::accepted);
  // The second's append is now stalled in the journal, expecting version 2.
  BOOST_REQUIRE(eventually([&] { return journal.faults->stall_next.load() == 0; }));
  auto third = rt.send_async("b10", reserve("o3", 1, "k3"));  // decided on both: out of stock
  BOOST_REQUIRE(eventually([&] { return rt.writer_stats().queue_depth >= 1; }));
  restock_elsewhere(journal, "b10", 5, 2);

  // Both are decided again on the journal's state, where 6 units are there for them.
  for (auto* f : {&second, &third}) {
    auto r = f->get();
    BOOST_TEST(r.kind == reply_kind::accepted);
    BOOST_TEST(count_of<inv::inventory_reserved>(r) == 1u);
  }
  BOOST_TEST(rt.inventory_state("b10").state.available == 4);
  BOOST_TEST(journal.events("inventory-b10").size() == 5u);
}

BOOST_AUTO_TEST_CASE(pipelined_appends_that_time_out_fail_and_land_once_when_retried) {
  // The journal holds the first append past journal_timeout, with two pipelined behind it: each
  // is answered as timed out (it may still commit, and does), and a retry lands nothing twice.
  shared_journal journal;
  auto options = fast_options();
  options.regions.journal_timeout = 300ms;
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b11", register_product("b11", 0, "reg")).ok());
  const std::vector<inv::command> commands{restock(1, "first"), restock(10, "second"),
                                           restock(100, "third")};
  auto replies = behind_a_stalled_append(rt, journal, "b11", commands[0],
                                         {commands[1], commands[2]}, 1200ms, 1);
  BOOST_TEST(eventually([&] { return rt.writer_stats().queue_depth >= 1; }));
  for (auto& f : replies) {
    auto r = f.get();
    BOOST_TEST(r.kind == reply_kind::failed);
    BOOST_TEST(r.failure == failure_code::timeout);
    BOOST_TEST(r.retryable());
  }
  // Late, but each on top of the one before.
  BOOST_TEST(eventually([&] { return journal.events("inventory-b11").size() == 4u; }));
  for (const auto& c : commands) {
    const auto kind = rt.send("b11", c).kind;
    BOOST_TEST((kind == reply_kind::accepted || kind == reply_kind::replayed));
  }
  BOOST_TEST(rt.inventory_state("b11").state.available == 111);
  BOOST_TEST(journal.events("inventory-b11").size() == 4u);
}

BOOST_AUTO_TEST_CASE(a_poison_command_among_several_in_flight_is_the_only_one_dropped) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.max_command_attempts = 3;
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b5", register_product("b5", 0, "reg")).ok());

  options.regions.faults->crash_on(fault_point::before_decide, "poison", 1000);
  auto replies = behind_a_stalled_append(
      rt, journal, "b5", restock(1, "a"),
      {restock(10, "b"), restock(100, "poison"), restock(1000, "c"), restock(10000, "d")}, 300ms,
      1);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    auto r = replies[i].get();
    if (i == 2) {
      BOOST_TEST(r.kind == reply_kind::failed);
      BOOST_TEST(r.failure == failure_code::poison_command);
    } else {
      // The poison crashed the actor while the appends of the commands before it were in
      // flight (decided behind the first, pipelined): re-sent, they find their events in the
      // journal. The state and the journal below show each was applied once.
      const bool done = r.kind == reply_kind::accepted || (i < 2 && r.kind == reply_kind::replayed);
      BOOST_TEST(done, "command " << i);
    }
  }
  // Blamed only when it was alone in flight: max_command_attempts crashes, plus at most the
  // one in a batch that could not be pinned on it.
  BOOST_TEST(options.regions.faults->fired() >= 3u);
  BOOST_TEST(options.regions.faults->fired() <= 4u);
  BOOST_TEST(rt.stats(aggregate_kind::inventory).poison == 1u);
  BOOST_TEST(rt.inventory_state("b5").state.available == 11011);
  BOOST_TEST(journal.events("inventory-b5").size() == 5u);
}

BOOST_AUTO_TEST_CASE(with_one_command_in_flight_commands_go_one_by_one) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.max_in_flight = 1;
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b6", register_product("b6", 0, "reg")).ok());
  const auto before = rt.writer_stats().requests;
  auto replies = behind_a_stalled_append(rt, journal, "b6", restock(1, "a"),
                                         {restock(1, "b"), restock(1, "c")}, 200ms, 1);
  for (auto& f : replies) BOOST_TEST(f.get().kind == reply_kind::accepted);
  BOOST_TEST(rt.writer_stats().requests - before == 3u);
  BOOST_TEST(rt.inventory_state("b6").state.available == 3);
}

BOOST_AUTO_TEST_CASE(an_item_unanswered_within_command_timeout_fails_and_the_rest_go_on) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.command_timeout = 300ms;  // the journal holds the append for 1500 ms
  runtime rt(options, journal.factory());
  BOOST_REQUIRE(rt.send("b7", register_product("b7", 0, "reg")).ok());

  const auto start = std::chrono::steady_clock::now();
  auto replies = behind_a_stalled_append(rt, journal, "b7", restock(5, "slow"), {}, 1500ms, 1);
  auto slow = replies[0].get();
  const auto waited = std::chrono::steady_clock::now() - start;
  BOOST_TEST(slow.kind == reply_kind::failed);
  BOOST_TEST(slow.failure == failure_code::timeout);
  BOOST_TEST((waited < 1500ms));  // the region answered, not the journal
  // The append still lands, and the region goes on with the next items.
  BOOST_TEST(eventually([&] { return rt.inventory_state("b7").state.available == 5; }));
  BOOST_TEST(rt.send("b7", restock(1, "next")).kind == reply_kind::accepted);
  BOOST_TEST(rt.inventory_state("b7").state.available == 6);
}

BOOST_AUTO_TEST_CASE(payment_commands_queued_behind_a_gateway_call_each_get_their_own_answer) {
  // Payments ask the gateway before deciding (prepare): they are never batched, so each queued
  // command is decided with its own gateway answer.
  saga_setup setup;
  setup.control->charges = gateway_control::slow;  // recorded, answered after hang_ms
  setup.control->hang_ms = 300;
  auto rt = setup.start();
  const std::string id = "pay-b8";
  auto charge = rt->send_async(
      id, pay::process{id, "order-b8", "customer-b8", 5000, 1'700'000'000'000, "charge-b8", {}});
  BOOST_REQUIRE(eventually([&] { return setup.control->charge_calls.load() == 1; }));
  std::vector<std::future<command_reply<pay::event>>> refunds;
  for (int i = 0; i < 3; ++i) {
    refunds.push_back(rt->send_async(
        id, pay::refund{"undo", 1'700'000'000'100 + i, "refund-b8-" + std::to_string(i), {}}));
  }
  BOOST_TEST(count_of<pay::payment_processed>(charge.get()) == 1u);
  std::size_t refunded = 0;
  std::size_t already = 0;
  for (auto& f : refunds) {
    auto r = f.get();
    BOOST_TEST_MESSAGE("refund: " << r.message);
    refunded += r.kind == reply_kind::accepted ? count_of<pay::payment_refunded>(r) : 0;
    already += r.kind == reply_kind::rejected &&
               r.rejection == saga::domain::rejection_code::already_refunded;
  }
  BOOST_TEST(refunded == 1u);
  BOOST_TEST(already == 2u);
  BOOST_TEST(setup.control->refund_calls.load() >= 1);
}

BOOST_AUTO_TEST_SUITE_END()

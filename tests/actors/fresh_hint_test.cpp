// The `fresh` hint of command_request (a sender vouching that a stream is new, so the actor it
// activates skips the recovery read) and the append timeout, driven through bare regions over
// the in-memory journal: a hint that is right saves the read, a wrong one still gives the answer
// the real stream dictates (rejections and replays included), queries always read, and the
// payment gateway answers a re-sent charge with the first outcome.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/gateway_actor.hpp"
#include "actors/inspect.hpp"
#include "actors/message_types.hpp"
#include "actors/region.hpp"
#include "actors/saga_inspect.hpp"
#include "actors/services.hpp"
#include "persistence/group_commit_writer.hpp"
#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;

namespace {

struct test_config : caf::actor_system_config {
  test_config() {
    saga::actors::add_message_types(*this);
    set("scheduler.max-threads", 2);
  }
};

/// An actor system with bare inventory and payment regions over `journal` (and, for payments,
/// a gateway over `ledger`), without the runtime facade, so commands can carry the hint.
class bare_regions {
 public:
  explicit bare_regions(const shared_journal& journal, runtime_options options = fast_options(),
                        std::shared_ptr<sp::payment_ledger> ledger = nullptr,
                        std::shared_ptr<gateway_control> control = nullptr)
      : system_(config_), writer_(journal.factory(), options.writer) {
    auto context = std::make_shared<aggregate_context>();
    readers_ = spawn_journal_readers(system_, journal.factory(), 1);
    context->readers = readers_;
    context->writer = &writer_;
    context->options = options.regions;
    context->services = std::make_shared<actor_services>();
    context->services->clock = system_clock_ms;
    context->services->random = [] { return 0.5; };
    if (ledger) {
      context->services->gateway = spawn_gateway(system_, [ledger, control] {
        return std::unique_ptr<sp::payment_gateway>(std::make_unique<controlled_gateway>(
            sp::make_simulated_gateway(ledger, sp::gateway_options{}), control));
      });
    }
    services_ = context->services;
    inventory_ = spawn_region<inventory_traits>(system_, context);
    payment_ = spawn_region<payment_traits>(system_, context);
  }
  ~bare_regions() {
    caf::anon_send_exit(inventory_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(payment_, caf::exit_reason::user_shutdown);
    if (services_->gateway)
      caf::anon_send_exit(services_->gateway, caf::exit_reason::user_shutdown);
    for (auto& r : readers_) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    inventory_ = nullptr;
    payment_ = nullptr;
    readers_.clear();
    system_.await_all_actors_done();
    services_->gateway = nullptr;
    writer_.stop();
  }
  bare_regions(const bare_regions&) = delete;
  bare_regions& operator=(const bare_regions&) = delete;

  command_reply<inv::event> send(const std::string& id, inv::command cmd, bool fresh) {
    return ask<command_reply<inv::event>>(
        inventory_, command_request<inventory_traits>{id, std::move(cmd), {}, fresh});
  }
  command_reply<dom::payment::event> pay(const std::string& id, dom::payment::command cmd,
                                         bool fresh) {
    return ask<command_reply<dom::payment::event>>(
        payment_, command_request<payment_traits>{id, std::move(cmd), {}, fresh});
  }
  state_reply<dom::payment::state> payment_query(const std::string& id) {
    return ask<state_reply<dom::payment::state>>(payment_, state_query<payment_traits>{id});
  }
  state_reply<inv::state> query(const std::string& id) {
    return ask<state_reply<inv::state>>(inventory_, state_query<inventory_traits>{id});
  }

 private:
  template <class Reply, class Handle, class Message>
  Reply ask(const Handle& handle, Message message) {
    caf::scoped_actor self{system_};
    Reply out;
    self->request(handle, std::chrono::seconds(10), std::move(message))
        .receive([&](Reply& reply) { out = std::move(reply); },
                 [&](caf::error& err) { out.message = system_.render(err); });
    return out;
  }

  test_config config_;
  caf::actor_system system_;
  sp::group_commit_writer writer_;
  std::vector<journal_reader> readers_;
  std::shared_ptr<actor_services> services_;
  inventory_region inventory_;
  payment_region payment_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(fresh_hint)

BOOST_AUTO_TEST_CASE(a_right_hint_skips_the_recovery_read) {
  shared_journal journal;
  bare_regions regions(journal);
  const auto reads_before = journal.faults->reads.load();
  auto registered = regions.send("new-1", register_product("new-1", 5, "reg-1"), true);
  BOOST_TEST(registered.kind == reply_kind::accepted);
  BOOST_TEST(registered.version == 1);
  BOOST_TEST(journal.faults->reads.load() == reads_before);  // appended without reading
  // Without the hint, the activation reads the stream first.
  auto other = regions.send("new-2", register_product("new-2", 5, "reg-2"), false);
  BOOST_TEST(other.kind == reply_kind::accepted);
  BOOST_TEST(journal.faults->reads.load() == reads_before + 1);
}

BOOST_AUTO_TEST_CASE(a_wrong_hint_still_appends_on_the_real_state) {
  shared_journal journal;
  {
    runtime rt(fast_options(), journal.factory());
    BOOST_REQUIRE(rt.send("p1", register_product("p1", 5, "reg")).ok());
  }
  bare_regions regions(journal);
  // On an empty state a reserve is refused (unknown product): that answer must not stand.
  auto reserved = regions.send("p1", reserve("o1", 2, "res-1"), true);
  BOOST_TEST(reserved.kind == reply_kind::accepted);
  BOOST_TEST(reserved.version == 2);
  BOOST_TEST(count_of<inv::inventory_reserved>(reserved) == 1u);
  BOOST_TEST(journal.events("inventory-p1").size() == 2u);
  auto state = regions.query("p1");
  BOOST_REQUIRE(state.ok);
  BOOST_TEST(state.state.available == 3);
}

BOOST_AUTO_TEST_CASE(a_wrong_hint_on_a_repeated_command_replays_without_appending) {
  shared_journal journal;
  {
    runtime rt(fast_options(), journal.factory());
    BOOST_REQUIRE(rt.send("p2", register_product("p2", 5, "reg")).ok());
  }
  bare_regions regions(journal);
  // On an empty state the registration would append; the version fence turns that into a
  // conflict, and the decision on the real stream is a replay.
  auto again = regions.send("p2", register_product("p2", 5, "reg"), true);
  BOOST_TEST(again.kind == reply_kind::replayed);
  BOOST_TEST(again.version == 1);
  BOOST_TEST(journal.events("inventory-p2").size() == 1u);
  // A different registration of the existing product is refused, as without the hint.
  bare_regions later(journal);
  auto other = later.send("p2", register_product("p2", 9, "reg-other"), true);
  BOOST_TEST(other.kind == reply_kind::rejected);
  BOOST_TEST(other.rejection == dom::rejection_code::already_exists);
  BOOST_TEST(journal.events("inventory-p2").size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_query_after_a_hinted_activation_reads_the_journal) {
  shared_journal journal;
  {
    runtime rt(fast_options(), journal.factory());  // no gateway: the answer comes filled in
    dom::payment::process charge{"pay-3",
                                 "o-3",
                                 "c-3",
                                 3000,
                                 1500,
                                 "saga-3/pay",
                                 dom::payment::gateway_answer{true, "tx-3", ""}};
    BOOST_REQUIRE(rt.send("pay-3", charge).ok());
  }
  bare_regions regions(journal);  // no gateway either
  // The hinted charge fails before deciding (no gateway), leaving a state assumed empty that
  // nothing verified; the query must not answer it.
  dom::payment::process again{"pay-3", "o-3", "c-3", 3000, 1500, "saga-3/pay", std::nullopt};
  auto failed = regions.pay("pay-3", again, true);
  BOOST_TEST(failed.kind == reply_kind::failed);
  BOOST_TEST(failed.failure == failure_code::gateway_unavailable);
  auto state = regions.payment_query("pay-3");
  BOOST_REQUIRE(state.ok);
  BOOST_TEST(state.state.status_ == dom::payment::status::processed);
  BOOST_TEST(state.state.version == 1);
}

BOOST_AUTO_TEST_CASE(a_wrong_hint_on_a_charged_payment_gets_the_first_gateway_answer) {
  shared_journal journal;
  auto ledger = sp::make_memory_ledger();
  auto control = std::make_shared<gateway_control>();
  dom::payment::process charge{"pay-9", "o-9", "c-9", 3000, 1500, "saga-9/pay", std::nullopt};
  std::string transaction;
  {
    bare_regions first(journal, fast_options(), ledger, control);
    auto paid = first.pay("pay-9", charge, true);
    BOOST_REQUIRE(paid.kind == reply_kind::accepted);
    BOOST_REQUIRE(count_of<dom::payment::payment_processed>(paid) == 1u);
    transaction = std::get<dom::payment::payment_processed>(paid.events.at(0)).transaction_id;
  }
  BOOST_TEST(control->charge_calls.load() == 1);
  // A new activation told (wrongly) that the stream is new: the gateway may be asked again,
  // but under the same key it answers what it answered first, and nothing is appended twice.
  control->charges = gateway_control::pass;
  bare_regions second(journal, fast_options(), ledger, control);
  auto again = second.pay("pay-9", charge, true);
  BOOST_TEST(again.ok());
  BOOST_REQUIRE(count_of<dom::payment::payment_processed>(again) == 1u);
  BOOST_TEST(std::get<dom::payment::payment_processed>(again.events.at(0)).transaction_id ==
             transaction);
  BOOST_TEST(journal.events("payment-pay-9").size() == 1u);
  auto entries = ledger->entries_of_order("o-9");
  BOOST_REQUIRE(entries.has_value());
  BOOST_TEST(entries->size() == 1u);
}

BOOST_AUTO_TEST_CASE(placing_an_order_reads_none_of_the_streams_it_creates) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  BOOST_REQUIRE(rt->send("p1", register_product("p1", 10, "register-p1")).ok());
  const auto reads_before = setup.journal.faults->reads.load();  // p1 is active now
  auto placed = rt->place_order(order_of("p1", 2, "order-1"));
  BOOST_REQUIRE_MESSAGE(placed.ok(), placed.message);
  BOOST_REQUIRE(placed.saga_started);
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed).has_value());
  // The order, the saga and the payment were all created without a recovery read.
  BOOST_TEST(setup.journal.faults->reads.load() == reads_before);
  BOOST_TEST(setup.journal.events("order-" + placed.order_id).size() == 2u);
  BOOST_TEST(rt->order_state(placed.order_id).state.status_ == dom::order::status::confirmed);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(append_timeout)

BOOST_AUTO_TEST_CASE(an_append_the_journal_does_not_answer_in_time_fails_with_timeout) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.journal_timeout = std::chrono::milliseconds(200);
  bare_regions regions(journal, options);
  BOOST_REQUIRE(regions.send("t1", register_product("t1", 5, "reg"), true).ok());
  journal.faults->stall_ms = 600;
  journal.faults->stall_next = 1;
  const auto start = std::chrono::steady_clock::now();
  auto slow = regions.send("t1", restock(1, "r1"), false);
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  BOOST_TEST(slow.kind == reply_kind::failed);
  BOOST_TEST(slow.failure == failure_code::timeout);
  BOOST_TEST(waited >= 200);
  BOOST_TEST(waited < 600);
}

BOOST_AUTO_TEST_CASE(an_append_gets_its_full_time_even_when_an_earlier_one_armed_the_timer) {
  shared_journal journal;
  auto options = fast_options();
  options.regions.journal_timeout = std::chrono::milliseconds(400);
  bare_regions regions(journal, options);
  // The first append arms the timer at t0; the second starts ~250 ms later and stalls for
  // 300 ms: it must succeed (its deadline is ~650 ms), not be failed when the timer fires.
  BOOST_REQUIRE(regions.send("t2", register_product("t2", 5, "reg"), true).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  journal.faults->stall_ms = 300;
  journal.faults->stall_next = 1;
  auto late = regions.send("t2", restock(1, "r1"), false);
  BOOST_TEST(late.kind == reply_kind::accepted);
  BOOST_TEST(late.version == 2);
}

BOOST_AUTO_TEST_SUITE_END()

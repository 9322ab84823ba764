// Saga actors over the in-memory journal and ledger: OrderProcessing end to end (happy path,
// decline, contention on stock), timeouts with retries and compensation, a compensation that
// fails until an operator retries it, cancellation after completion, crashes mid-saga, durable
// timers across a runtime restart, self-passivation and the runtime's order/saga operations.
#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "domain/saga_codec.hpp"
#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;
namespace ord = saga::domain::order;
namespace pay = saga::domain::payment;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The saga's journal, decoded.
std::vector<sg::event> saga_events(const shared_journal& journal, const std::string& saga_id) {
  std::vector<sg::event> out;
  for (const auto& rec : journal.events("saga-" + saga_id)) {
    auto decoded =
        dom::decode_saga_event(dom::encoded_event{rec.event_type, rec.schema_version, rec.payload});
    BOOST_REQUIRE_MESSAGE(decoded.has_value(), "undecodable saga event " + rec.event_type);
    out.push_back(std::move(*decoded));
  }
  return out;
}

/// The verdicts (target -1) on the attempts of one step phase.
std::vector<sg::step_failed> attempt_failures(const std::vector<sg::event>& events, int step,
                                              sg::phase phase) {
  std::vector<sg::step_failed> out;
  for (const auto& e : events) {
    const auto* f = std::get_if<sg::step_failed>(&e);
    if (f != nullptr && f->target == -1 && f->step == step && f->phase_ == phase) out.push_back(*f);
  }
  return out;
}

/// The payment of the order has no event in the journal yet.
bool payment_unrecorded(const saga_setup& setup, const std::string& order_id) {
  return setup.journal.events("payment-" + sg::payment_id_for(order_id)).empty();
}

void register_stock(runtime& rt, const std::string& product, std::int64_t stock) {
  auto r = rt.send(product, register_product(product, stock, "register-" + product));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
}

placed_order place(runtime& rt, order_request request) {
  auto placed = rt.place_order(std::move(request));
  BOOST_REQUIRE_MESSAGE(placed.ok(), placed.message);
  BOOST_REQUIRE_MESSAGE(placed.saga_started, placed.message);
  return placed;
}

using saga::expected;
using saga::unexpected;

/// Makes one saga's transitions get lost: while `blocked`, an append to `stream` that carries
/// `event_type` fails (retryable, nothing written), the way a node dying between sending a
/// step's commands and committing the step's start looks to the journal.
struct saga_append_blocker {
  std::string stream;
  std::string event_type;
  std::atomic<bool> blocked{true};
  std::atomic<int> refused{0};
};

class blocking_handle final : public sp::event_store {
 public:
  blocking_handle(std::unique_ptr<sp::event_store> inner,
                  std::shared_ptr<saga_append_blocker> blocker)
      : inner_(std::move(inner)), blocker_(std::move(blocker)) {}

  std::vector<sp::append_result> append_batch(
      const std::vector<sp::append_request>& requests) override {
    // A blocked transition that rides with another stream's events is left out of that
    // request (as a store does that cannot vouch for it): the saga then appends it itself.
    std::vector<sp::append_request> pass;
    std::vector<bool> refused(requests.size(), false);
    std::vector<std::size_t> stripped(requests.size(), 0);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      refused[i] = blocks(requests[i]);
      if (refused[i]) continue;
      pass.push_back(requests[i]);
      auto& riders = pass.back().riders;
      if (std::any_of(riders.begin(), riders.end(),
                      [this](const sp::append_request& r) { return blocks(r); })) {
        stripped[i] = riders.size();
        riders.clear();
      }
    }
    auto written = inner_->append_batch(pass);
    std::vector<sp::append_result> out;
    std::size_t k = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (refused[i]) {
        ++blocker_->refused;
        out.emplace_back(unexpected{
            sp::store_error{sp::store_errc::retryable, "lost transition (injected)", -1}});
      } else {
        out.push_back(std::move(written[k++]));
        if (stripped[i] > 0 && out.back()) out.back()->riders_written.assign(stripped[i], 0);
      }
    }
    return out;
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_stream(
      const std::string& s, std::int64_t from, std::size_t limit) override {
    return inner_->read_stream(s, from, limit);
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_all(std::int64_t after,
                                                                      std::size_t limit) override {
    return inner_->read_all(after, limit);
  }
  expected<bool, sp::store_error> save_snapshot(const sp::snapshot& s) override {
    return inner_->save_snapshot(s);
  }
  expected<std::optional<sp::snapshot>, sp::store_error> load_snapshot(
      const std::string& s) override {
    return inner_->load_snapshot(s);
  }

 private:
  bool blocks(const sp::append_request& r) const {
    if (!blocker_->blocked || r.stream_id != blocker_->stream) return false;
    return std::any_of(r.events.begin(), r.events.end(), [&](const sp::new_event& e) {
      return e.event_type == blocker_->event_type;
    });
  }

  std::unique_ptr<sp::event_store> inner_;
  std::shared_ptr<saga_append_blocker> blocker_;
};

/// A runtime on the setup's journal whose appends go through `blocker`.
std::unique_ptr<runtime> start_blocked(const saga_setup& setup,
                                       std::shared_ptr<saga_append_blocker> blocker) {
  auto inner = setup.journal.factory();
  return std::make_unique<runtime>(setup.runtime_settings(),
                                   [inner, blocker]() -> std::unique_ptr<sp::event_store> {
                                     return std::make_unique<blocking_handle>(inner(), blocker);
                                   });
}

/// Lets appends through again once `blocker` has refused one: the transition is lost once.
std::thread unblock_after_one_refusal(std::shared_ptr<saga_append_blocker> blocker) {
  return std::thread([blocker] {
    eventually([&] { return blocker->refused.load() >= 1; }, 5000ms);
    blocker->blocked = false;
  });
}

/// Creates order `order_id` (saga id "saga-" + order_id) without starting its saga.
void create_order(runtime& rt, const std::string& order_id, std::int64_t quantity) {
  ord::create create{order_id,    "customer-1",        {{"p1", "Widget p1", quantity, 1500}},
                     "1 Main St", "corr-" + order_id,  "saga-" + order_id,
                     rt.now(),    "create-" + order_id};
  auto created = rt.send(order_id, create);
  BOOST_REQUIRE_MESSAGE(created.ok(), created.message);
}

/// One saga run whose first append carrying `event_type` is lost: a new order `order_id` of 2
/// units of p1 (stock 10), its saga started and awaited until it ends `end` (or times out).
struct lost_once_run {
  std::shared_ptr<saga_append_blocker> blocker = std::make_shared<saga_append_blocker>();
  std::unique_ptr<runtime> rt;
  order_saga_outcome started;
  std::optional<sg::state> done;
};

lost_once_run run_losing_once(const saga_setup& setup, const std::string& order_id,
                              const std::string& event_type, sg::status end) {
  lost_once_run run;
  run.blocker->stream = "saga-saga-" + order_id;
  run.blocker->event_type = event_type;
  run.rt = start_blocked(setup, run.blocker);
  saga_waiter waiter(*run.rt);
  register_stock(*run.rt, "p1", 10);
  create_order(*run.rt, order_id, 2);
  auto unblock = unblock_after_one_refusal(run.blocker);
  run.started = run.rt->start_saga_for_order(order_id);
  run.done = waiter.wait("saga-" + order_id, end);
  unblock.join();
  return run;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(saga_actors)

BOOST_AUTO_TEST_CASE(an_order_is_reserved_charged_and_confirmed_once) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);

  auto placed = place(*rt, order_of("p1", 2, "place-1"));
  BOOST_TEST(placed.kind == reply_kind::accepted);
  BOOST_TEST(placed.status == ord::status::pending);
  BOOST_TEST(placed.total == 3000);
  BOOST_TEST(!placed.order_id.empty());
  BOOST_TEST(!placed.correlation_id.empty());

  auto done = waiter.wait(placed.saga_id, sg::status::completed);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(done->correlation_id == placed.correlation_id);
  BOOST_TEST(done->saga_type == "OrderProcessing");
  for (const auto& step : done->steps) BOOST_TEST(step.status_ == sg::step_status::succeeded);

  auto order = rt->order_state(placed.order_id);
  BOOST_REQUIRE(order.ok);
  BOOST_TEST(order.state.status_ == ord::status::confirmed);
  BOOST_TEST(order.state.saga_id == placed.saga_id);
  auto payment = rt->payment_state(sg::payment_id_for(placed.order_id));
  BOOST_REQUIRE(payment.ok);
  BOOST_TEST(payment.state.status_ == pay::status::processed);
  BOOST_TEST(payment.state.amount == 3000);
  // Stock stays held for a confirmed order: the inventory has no "ship" step.
  auto stock = rt->inventory_state("p1");
  BOOST_TEST(stock.state.available == 8);
  BOOST_TEST(stock.state.reserved == 2);
  auto ledger = count_ledger(*setup.ledger, placed.order_id);
  BOOST_TEST(ledger.approved_charges == 1);
  BOOST_TEST(ledger.refunds == 0);
  BOOST_TEST(ledger.declined_charges == 0);
  BOOST_TEST(setup.control->charge_calls.load() == 1);

  // Step commands carry the saga's correlation id, the saga as cause and the key as command id.
  auto reserved = setup.journal.events("inventory-p1");
  BOOST_REQUIRE_EQUAL(reserved.size(), 2u);
  BOOST_TEST(reserved[1].event_type == "InventoryReserved");
  BOOST_TEST(reserved[1].metadata.correlation_id == placed.correlation_id);
  BOOST_TEST(reserved[1].metadata.causation_id == placed.saga_id);
  BOOST_TEST(reserved[1].metadata.command_id == placed.saga_id + "/reserve_inventory/reserve");
  auto journal = setup.journal.events("saga-" + placed.saga_id);
  BOOST_REQUIRE(!journal.empty());
  BOOST_TEST(journal.front().event_type == "SagaStarted");
  BOOST_TEST(journal.back().event_type == "SagaCompleted");
  for (const auto& rec : journal) BOOST_TEST(rec.metadata.correlation_id == placed.correlation_id);

  // Placing the same order again (same id and key) answers the first placement.
  auto request = order_of("p1", 2, "place-1");
  request.order_id = placed.order_id;
  auto again = rt->place_order(request);
  BOOST_TEST(again.kind == reply_kind::replayed);
  BOOST_TEST(again.saga_id == placed.saga_id);
  BOOST_TEST(again.correlation_id == placed.correlation_id);
  BOOST_TEST(again.saga_started);
  BOOST_TEST(setup.journal.events("saga-" + placed.saga_id).size() == journal.size());
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 1);
}

namespace {

std::vector<std::string> types_of(const std::vector<sp::recorded_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.event_type);
  return out;
}

/// The position of the last event of `type` in `events` (0: none).
std::int64_t position_of(const std::vector<sp::recorded_event>& events, const std::string& type) {
  std::int64_t out = 0;
  for (const auto& e : events) {
    if (e.event_type == type) out = e.position;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_steps_outcome_is_written_with_the_steps_own_events) {
  // The saga's record of a step's answer rides in the transaction of the answering aggregate's
  // events (the memory journal writes a request's riders right after it), so the saga needs no
  // append of its own between steps. Where the journal cannot take riders, the saga writes
  // the very same events itself.
  std::vector<std::string> with_riders, without_riders;
  for (const bool riders : {true, false}) {
    saga_setup setup;
    setup.journal.faults->drop_riders = !riders;
    auto rt = setup.start();
    saga_waiter waiter(*rt);
    register_stock(*rt, "p1", 10);
    auto placed = place(*rt, order_of("p1", 2));
    BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed).has_value());
    const auto saga = setup.journal.events("saga-" + placed.saga_id);
    const auto stock = setup.journal.events("inventory-p1");
    const auto payment = setup.journal.events("payment-" + sg::payment_id_for(placed.order_id));
    const auto order = setup.journal.events("order-" + placed.order_id);
    (riders ? with_riders : without_riders) = types_of(saga);
    BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 1);
    if (!riders) {
      BOOST_TEST(setup.journal.faults->riders_written.load() == 0);
      continue;
    }
    BOOST_TEST(setup.journal.faults->riders_written.load() == 4);
    // The order's creation, the reservation, the charge, the confirmation: each directly
    // followed by the saga's start or record of it.
    const auto follows = [&saga](std::int64_t position) {
      return std::any_of(saga.begin(), saga.end(),
                         [&](const sp::recorded_event& e) { return e.position == position + 1; });
    };
    BOOST_TEST(saga.front().event_type == "SagaStarted");
    BOOST_TEST(saga.front().position == position_of(order, "OrderCreated") + 1);
    BOOST_TEST(saga.front().metadata.causation_id == "place_order");
    BOOST_TEST(follows(position_of(stock, "InventoryReserved")));
    BOOST_TEST(follows(position_of(payment, "PaymentProcessed")));
    BOOST_TEST(follows(position_of(order, "OrderConfirmed")));
    BOOST_TEST(saga.back().event_type == "SagaCompleted");
    BOOST_TEST(saga.back().position == position_of(order, "OrderConfirmed") + 2);
    for (const auto& rec : saga) {
      BOOST_TEST(rec.metadata.correlation_id == placed.correlation_id);
      BOOST_TEST(!rec.metadata.node_id.empty());
    }
  }
  BOOST_TEST(with_riders == without_riders);
}

namespace {

/// Order `order_id` (2 units of p1, stock 10) created without a rider, then its saga started;
/// the rider after the first `spare` ones is written but its append reported as failed. The
/// saga's final state once completed, or nullopt.
std::optional<sg::state> complete_losing_a_rider(const saga_setup& setup, runtime& rt,
                                                 const std::string& order_id, int spare) {
  saga_waiter waiter(rt);
  register_stock(rt, "p1", 10);
  create_order(rt, order_id, 2);
  setup.journal.faults->spare_riders = spare;
  setup.journal.faults->fail_after_rider = 1;
  BOOST_REQUIRE(rt.start_saga_for_order(order_id).ok());
  auto done = waiter.wait("saga-" + order_id, sg::status::completed);
  BOOST_TEST(setup.journal.faults->fail_after_rider.load() == 0);
  return done;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_written_rider_whose_answer_is_lost_is_found_in_the_journal) {
  // The reservation and the saga's record of it are written, but the append is reported as
  // failed, so the answer carries no receipt (after the writer's retry finds the reservation
  // stored, or as a failure). The saga's own append of the outcome then meets the record in
  // the journal; it must take it from there and send the charge, which nobody did.
  saga_setup setup;
  auto rt = setup.start();
  BOOST_REQUIRE(complete_losing_a_rider(setup, *rt, "o-lost", 0).has_value());
  BOOST_TEST(count_ledger(*setup.ledger, "o-lost").approved_charges == 1);
  const auto stock = types_of(setup.journal.events("inventory-p1"));
  BOOST_TEST(std::count(stock.begin(), stock.end(), "InventoryReserved") == 1);
  const auto saga = saga_events(setup.journal, "saga-o-lost");
  int reserve_records = 0;
  for (const auto& e : saga) {
    const auto* ok = std::get_if<sg::step_succeeded>(&e);
    if (ok != nullptr && ok->step == 0) ++reserve_records;
  }
  BOOST_TEST(reserve_records == 1);
  BOOST_TEST(rt->inventory_state("p1").state.reserved == 2);
}

namespace {

/// A new order of 2 units of p1 (stock 10) whose reservation's append (carrying the saga's
/// record of it) the journal holds; returns once the gateway was asked to charge meanwhile.
placed_order charged_while_the_reservation_is_held(const saga_setup& setup, runtime& rt) {
  register_stock(rt, "p1", 10);
  auto placed = place(rt, order_of("p1", 2));
  BOOST_REQUIRE(eventually([&] { return setup.journal.faults->holding.load(); }));
  BOOST_TEST(eventually([&] { return setup.control->charge_calls.load() == 1; }));
  BOOST_TEST(setup.journal.faults->holding.load());
  BOOST_TEST(types_of(setup.journal.events("inventory-p1")) ==
             std::vector<std::string>{"ProductRegistered"});
  setup.journal.faults->release = true;
  return placed;
}

/// The saga of `placed` completes: one charge asked of the gateway and approved, one
/// reservation, the order confirmed.
void confirmed_with_one_charge(const saga_setup& setup, runtime& rt, saga_waiter& waiter,
                               const placed_order& placed) {
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed).has_value());
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 1);
  BOOST_TEST(setup.control->charge_calls.load() == 1);
  BOOST_TEST(types_of(setup.journal.events("inventory-p1")) ==
             (std::vector<std::string>{"ProductRegistered", "InventoryReserved"}));
  BOOST_TEST(rt.order_state(placed.order_id).state.status_ == ord::status::confirmed);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_next_step_goes_out_once_the_record_of_the_last_is_handed_to_the_writer) {
  // The saga sends the charge as soon as the inventory actor hands the reservation's append,
  // with the saga's record of it, to the writer: the gateway is charged while that append is
  // still held in the journal. Then everything commits in order, each record with its step.
  saga_setup setup;
  setup.journal.faults->hold_event_type = "InventoryReserved";
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  const auto placed = charged_while_the_reservation_is_held(setup, *rt);
  confirmed_with_one_charge(setup, *rt, waiter, placed);
  BOOST_TEST(setup.journal.faults->riders_written.load() == 4);
}

BOOST_AUTO_TEST_CASE(a_step_sent_ahead_of_a_record_that_is_lost_is_charged_once) {
  // As above, but the held append fails: neither the reservation nor the saga's record of it
  // is written, while the charge has gone out and is recorded by the payment. The saga tries
  // the reservation again and sends the charge again under the same key, which the payment
  // answers from its journal: one charge at the gateway, one reservation, order confirmed.
  saga_setup setup;
  setup.journal.faults->hold_event_type = "InventoryReserved";
  setup.journal.faults->fail_held = true;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  const auto placed = charged_while_the_reservation_is_held(setup, *rt);
  confirmed_with_one_charge(setup, *rt, waiter, placed);
  BOOST_TEST(types_of(setup.journal.events("payment-" + sg::payment_id_for(placed.order_id))) ==
             std::vector<std::string>{"PaymentProcessed"});
  BOOST_TEST(rt->inventory_state("p1").state.available == 8);
}

BOOST_AUTO_TEST_CASE(an_answer_that_overtakes_the_record_it_was_sent_on_waits_for_it) {
  // The charge, sent early, fails at once at the gateway while the reservation's append is
  // still held, so its answer reaches the saga before the saga has applied the reservation.
  // Decided then it would be stale and the step would wait for its deadline (a minute here);
  // it waits for the reservation instead and counts as the charge's answer: retried at once.
  saga_setup setup;
  setup.options.saga_steps.step_timeout_ms = 60000;
  setup.options.saga_steps.retry = sg::retry_policy{3, 10, 1.0, 10, 0.0};
  setup.journal.faults->hold_event_type = "InventoryReserved";
  setup.control->charges = gateway_control::fail;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 2));
  BOOST_REQUIRE(eventually([&] { return setup.journal.faults->holding.load(); }));
  BOOST_REQUIRE(eventually([&] { return setup.control->charge_calls.load() == 1; }));
  std::this_thread::sleep_for(50ms);  // the failure's answer reaches the saga meanwhile
  setup.control->charges = gateway_control::pass;
  setup.journal.faults->release = true;
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed, 5s).has_value());
  const auto failed =
      attempt_failures(saga_events(setup.journal, placed.saga_id), 1, sg::phase::forward);
  BOOST_REQUIRE(failed.size() == 1u);
  BOOST_TEST(contains(failed.front().reason, "gateway_unavailable"));
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 1);
}

BOOST_AUTO_TEST_CASE(an_end_written_by_a_rider_whose_answer_is_lost_is_still_announced) {
  // As above, for the last step: the confirmation and SagaCompleted are written together, but
  // the answer is lost. The saga learns its end from the journal and must still tell the
  // finished-saga observers (metrics, waiters) about it.
  saga_setup setup;
  auto rt = setup.start();
  // Spared: the reservation's rider and the charge's.
  BOOST_REQUIRE(complete_losing_a_rider(setup, *rt, "o-end", 2).has_value());
  const auto saga = types_of(setup.journal.events("saga-saga-o-end"));
  BOOST_TEST(std::count(saga.begin(), saga.end(), "SagaCompleted") == 1);
  BOOST_TEST(rt->order_state("o-end").state.status_ == ord::status::confirmed);
}

BOOST_AUTO_TEST_CASE(a_declined_payment_releases_the_stock_and_cancels_the_order) {
  saga_setup setup;
  setup.gateway.decline_above = 2000;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);

  auto placed = place(*rt, order_of("p1", 2));
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(contains(done->compensation_reason, "payment declined: amount exceeds limit"));
  // The decline and the start of the compensation are one transaction (the saga's record rides
  // with PaymentFailed), so the release needs no append of the saga's before it.
  const auto payment = setup.journal.events("payment-" + sg::payment_id_for(placed.order_id));
  const auto saga = setup.journal.events("saga-" + placed.saga_id);
  const auto declined = position_of(payment, "PaymentFailed");
  BOOST_TEST(std::any_of(saga.begin(), saga.end(), [&](const sp::recorded_event& e) {
    return e.position == declined + 1 && e.event_type == "SagaStepFailed";
  }));
  BOOST_TEST(done->steps[0].status_ == sg::step_status::compensated);
  BOOST_TEST(done->steps[1].status_ == sg::step_status::failed);
  BOOST_TEST(done->steps[2].status_ == sg::step_status::pending);

  auto order = rt->order_state(placed.order_id);
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(contains(order.state.failure_reason, "declined"));
  auto stock = rt->inventory_state("p1");
  BOOST_TEST(stock.state.available == 10);
  BOOST_TEST(stock.state.reserved == 0);
  BOOST_TEST(rt->payment_state(sg::payment_id_for(placed.order_id)).state.status_ ==
             pay::status::failed);
  auto ledger = count_ledger(*setup.ledger, placed.order_id);
  BOOST_TEST(ledger.declined_charges == 1);
  BOOST_TEST(ledger.approved_charges == 0);
  // Nothing was charged, so nothing is refunded: the gateway never saw a refund.
  BOOST_TEST(setup.control->refund_calls.load() == 0);
}

BOOST_AUTO_TEST_CASE(fifty_orders_of_one_unit_on_stock_ten_confirm_exactly_ten) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "hot", 10);

  std::vector<std::future<placed_order>> futures;
  for (int i = 0; i < 50; ++i) futures.push_back(rt->place_order_async(order_of("hot", 1)));
  std::vector<placed_order> placed;
  for (auto& f : futures) {
    placed.push_back(f.get());
    BOOST_REQUIRE_MESSAGE(placed.back().ok() && placed.back().saga_started, placed.back().message);
  }
  auto finished = waiter.wait_count(50);
  BOOST_REQUIRE_EQUAL(finished.size(), 50u);

  int confirmed = 0;
  int cancelled = 0;
  for (const auto& p : placed) {
    const auto& saga = finished.at(p.saga_id);
    auto order = rt->order_state(p.order_id);
    BOOST_REQUIRE(order.ok);
    if (order.state.status_ == ord::status::confirmed) {
      ++confirmed;
      BOOST_TEST(saga.status_ == sg::status::completed);
      BOOST_TEST(count_ledger(*setup.ledger, p.order_id).approved_charges == 1);
    } else {
      ++cancelled;
      BOOST_TEST(order.state.status_ == ord::status::cancelled);
      BOOST_TEST(saga.status_ == sg::status::compensated);
      BOOST_TEST(contains(order.state.failure_reason, "insufficient stock"));
      BOOST_TEST(count_ledger(*setup.ledger, p.order_id).approved_charges == 0);
    }
  }
  BOOST_TEST(confirmed == 10);
  BOOST_TEST(cancelled == 40);
  auto stock = rt->inventory_state("hot");
  BOOST_TEST(stock.state.available == 0);
  BOOST_TEST(stock.state.reserved == 10);
  // Never negative, at any version of the stream.
  inv::state replay;
  for (const auto& rec : setup.journal.events("inventory-hot")) {
    auto e = dom::decode_inventory_event(
        dom::encoded_event{rec.event_type, rec.schema_version, rec.payload});
    BOOST_REQUIRE(e.has_value());
    replay = inv::evolve(std::move(replay), *e);
    BOOST_TEST(replay.available >= 0);
  }
  auto twice = setup.ledger->orders_charged_twice();
  BOOST_REQUIRE(twice.has_value());
  BOOST_TEST(twice->empty());
}

BOOST_AUTO_TEST_CASE(a_step_that_times_out_is_retried_then_compensated) {
  saga_setup setup;
  setup.options.saga_steps.step_timeout_ms = 150;
  setup.options.saga_steps.retry = sg::retry_policy{3, 10, 2.0, 50, 0.0};
  // The refund queues behind the charges still waiting for the gateway (~300 ms each).
  setup.options.saga_steps.compensation_retry = sg::retry_policy{10, 50, 2.0, 200, 0.0};
  setup.control->charges = gateway_control::hang;
  setup.control->hang_ms = 300;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);

  auto placed = place(*rt, order_of("p1", 2));
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  // Every charge attempt was answered before the refund was decided (they queue in order), so
  // a gateway that works again now cannot charge behind the compensation's back.
  setup.control->charges = gateway_control::pass;
  BOOST_REQUIRE(done.has_value());
  auto failures =
      attempt_failures(saga_events(setup.journal, placed.saga_id), 1, sg::phase::forward);
  BOOST_REQUIRE_EQUAL(failures.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(failures[i].attempt == i + 1);
    BOOST_TEST(failures[i].will_retry == (i < 2));
    BOOST_TEST_MESSAGE("attempt " << i + 1 << ": " << failures[i].reason);
    BOOST_TEST(contains(failures[i].reason, "timed out"));
  }
  BOOST_TEST(contains(done->compensation_reason, "gave up after 3 attempts"));
  auto order = rt->order_state(placed.order_id);
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(contains(order.state.failure_reason, "process_payment"));
  BOOST_TEST(rt->inventory_state("p1").state.available == 10);
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 0);
  BOOST_TEST(setup.control->charge_calls.load() == 3);
  BOOST_TEST(rt->payment_state(sg::payment_id_for(placed.order_id)).state.status_ ==
             pay::status::none);
}

BOOST_AUTO_TEST_CASE(a_failing_compensation_ends_failed_until_an_operator_retries_it) {
  saga_setup setup;
  setup.options.saga_steps.compensation_retry = sg::retry_policy{3, 10, 2.0, 50, 0.0};
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 2));
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed));

  // Refunds fail: the cancellation's compensation gives up.
  setup.control->refunds = gateway_control::fail;
  auto cancelled = rt->cancel_order(placed.order_id, "changed my mind");
  BOOST_REQUIRE_MESSAGE(cancelled.ok(), cancelled.message);
  BOOST_TEST(cancelled.saga_id == placed.saga_id);
  auto failed = waiter.wait(placed.saga_id, sg::status::failed);
  BOOST_REQUIRE(failed.has_value());
  BOOST_TEST(contains(failed->failure_reason, "compensating process_payment"));
  BOOST_TEST(contains(failed->failure_reason, "gateway_unavailable"));
  BOOST_TEST(failed->steps[1].status_ == sg::step_status::compensation_failed);
  BOOST_TEST(setup.control->refund_calls.load() == 3);
  BOOST_TEST(rt->order_state(placed.order_id).state.status_ == ord::status::confirmed);
  BOOST_TEST(rt->inventory_state("p1").state.reserved == 2);  // not yet released
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).refunds == 0);

  // Still failing: a retry fails again (FAILED is the only state a retry accepts).
  BOOST_TEST(rt->retry_saga(placed.saga_id).ok());
  BOOST_REQUIRE(eventually([&] { return setup.control->refund_calls.load() == 6; }, 5000ms));
  BOOST_REQUIRE(eventually([&] { return waiter.notifications() >= 3; }, 5000ms));
  BOOST_TEST(rt->saga_state(placed.saga_id).state.status_ == sg::status::failed);

  setup.control->refunds = gateway_control::pass;
  auto retried = rt->retry_saga(placed.saga_id);
  BOOST_REQUIRE_MESSAGE(retried.ok(), retried.message);
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(done->compensation_reason == "changed my mind");
  auto order = rt->order_state(placed.order_id);
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(order.state.failure_reason == "changed my mind");
  BOOST_TEST(rt->payment_state(sg::payment_id_for(placed.order_id)).state.status_ ==
             pay::status::refunded);
  auto stock = rt->inventory_state("p1");
  BOOST_TEST(stock.state.available == 10);
  BOOST_TEST(stock.state.reserved == 0);
  auto ledger = count_ledger(*setup.ledger, placed.order_id);
  BOOST_TEST(ledger.approved_charges == 1);
  BOOST_TEST(ledger.refunds == 1);

  auto again = rt->retry_saga(placed.saga_id);
  BOOST_TEST(again.kind == reply_kind::rejected);
  BOOST_TEST(again.rejection == dom::rejection_code::invalid_state);
}

BOOST_AUTO_TEST_CASE(cancelling_a_completed_order_refunds_releases_and_cancels) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 3));
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed));

  auto cancelled = rt->cancel_order(placed.order_id, "");
  BOOST_REQUIRE_MESSAGE(cancelled.ok(), cancelled.message);
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  auto order = rt->order_state(placed.order_id);
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(rt->payment_state(sg::payment_id_for(placed.order_id)).state.status_ ==
             pay::status::refunded);
  auto stock = rt->inventory_state("p1");
  BOOST_TEST(stock.state.available == 10);
  BOOST_TEST(stock.state.reserved == 0);
  auto ledger = count_ledger(*setup.ledger, placed.order_id);
  BOOST_TEST(ledger.approved_charges == 1);
  BOOST_TEST(ledger.refunds == 1);

  auto twice = rt->cancel_order(placed.order_id, "again");
  BOOST_TEST(twice.kind == reply_kind::rejected);
  BOOST_TEST(twice.rejection == dom::rejection_code::invalid_state);
  BOOST_TEST(contains(twice.message, "already cancelled"));
  auto unknown = rt->cancel_order("no-such-order", "x");
  BOOST_TEST(unknown.kind == reply_kind::rejected);
  BOOST_TEST(unknown.rejection == dom::rejection_code::not_found);
}

BOOST_AUTO_TEST_CASE(crashes_mid_saga_still_finish_it_and_charge_once) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  // An order created without starting its saga, so that the saga id is known in advance.
  ord::create create{"o-crash",   "customer-1",    {{"p1", "Widget p1", 2, 1500}},
                     "1 Main St", "corr-crash",    "saga-crash",
                     rt->now(),   "create-o-crash"};
  BOOST_REQUIRE(rt->send("o-crash", create).ok());
  auto& faults = *setup.options.regions.faults;
  // The payment actor dies right after committing the charge; the saga actor dies right after
  // committing the reservation's success (before sending the payment step).
  faults.crash_on(fault_point::after_append, "saga-crash/process_payment/process", 1);
  faults.crash_on(fault_point::after_append, "saga-crash/target_succeeded", 1);

  auto started = rt->start_saga_for_order("o-crash");
  BOOST_REQUIRE_MESSAGE(started.ok(), started.message);
  BOOST_TEST(started.kind == reply_kind::accepted);
  BOOST_TEST(started.saga_id == "saga-crash");
  auto done = waiter.wait("saga-crash", sg::status::completed);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(faults.fired() == 2u);
  BOOST_TEST(rt->stats(aggregate_kind::payment).crashes == 1u);
  BOOST_TEST(rt->stats(aggregate_kind::saga).crashes == 1u);
  BOOST_TEST(rt->order_state("o-crash").state.status_ == ord::status::confirmed);
  BOOST_TEST(count_ledger(*setup.ledger, "o-crash").approved_charges == 1);
  BOOST_TEST(setup.control->charge_calls.load() == 1);  // the re-send was answered from the journal
  std::size_t processed = 0;
  for (const auto& rec : setup.journal.events("payment-" + sg::payment_id_for("o-crash")))
    processed += rec.event_type == "PaymentProcessed" ? 1 : 0;
  BOOST_TEST(processed == 1u);
  auto stock = rt->inventory_state("p1");
  BOOST_TEST(stock.state.reserved == 2);

  // Starting it again is fine and changes nothing.
  auto repeated = rt->start_saga_for_order("o-crash");
  BOOST_TEST(repeated.kind == reply_kind::replayed);
  BOOST_TEST(rt->start_saga_for_order("nope").rejection == dom::rejection_code::not_found);
}

BOOST_AUTO_TEST_CASE(a_step_sent_before_its_start_was_committed_is_charged_once) {
  // Pipelining: the payment step goes out together with the append that records the
  // reservation's success and the payment step's start. That append is lost (once): the charge
  // has happened, the saga's journal still shows the reservation running. The saga re-reads its
  // journal, re-sends the reservation (answered from the inventory's journal), starts the
  // payment step again with the same key and completes, charging once.
  saga_setup setup;
  // Exactly one transition is lost, the first success; the next ones (after the re-send) are
  // written.
  auto run = run_losing_once(setup, "o-pipe", "SagaStepSucceeded", sg::status::completed);
  BOOST_REQUIRE_MESSAGE(run.started.ok(), run.started.message);
  BOOST_REQUIRE(run.done.has_value());
  BOOST_TEST(run.blocker->refused.load() >= 1);
  auto& rt = run.rt;
  // The charge went out while the lost append was in flight: before the payment step's start
  // was ever committed.
  BOOST_TEST(setup.control->charge_calls.load() == 1);
  BOOST_TEST(count_ledger(*setup.ledger, "o-pipe").approved_charges == 1);
  std::size_t processed = 0;
  for (const auto& rec : setup.journal.events("payment-" + sg::payment_id_for("o-pipe")))
    processed += rec.event_type == "PaymentProcessed" ? 1 : 0;
  BOOST_TEST(processed == 1u);
  BOOST_TEST(rt->inventory_state("p1").state.reserved == 2);
  BOOST_TEST(rt->order_state("o-pipe").state.status_ == ord::status::confirmed);
}

BOOST_AUTO_TEST_CASE(a_step_in_doubt_after_a_crash_is_compensated_too) {
  // The node dies after the payment step went out early but before its start was committed:
  // the journal shows the reservation running and the payment step never begun, while the
  // customer was charged. A compensation must refund that charge (the in-doubt step), release
  // the stock and cancel the order.
  saga_setup setup;
  auto blocker = std::make_shared<saga_append_blocker>();
  blocker->stream = "saga-saga-o-doubt";
  blocker->event_type = "SagaStepSucceeded";
  {
    auto rt = start_blocked(setup, blocker);
    register_stock(*rt, "p1", 10);
    create_order(*rt, "o-doubt", 3);
    auto started = rt->start_saga_for_order("o-doubt");
    BOOST_REQUIRE_MESSAGE(started.ok(), started.message);
    BOOST_REQUIRE(
        eventually([&] { return count_ledger(*setup.ledger, "o-doubt").approved_charges == 1; }));
  }  // the node stops with the saga's success still unwritten
  for (const auto& e : saga_events(setup.journal, "saga-o-doubt"))
    BOOST_TEST(!std::holds_alternative<sg::step_succeeded>(e));
  blocker->blocked = false;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  auto compensated = rt->compensate_saga("saga-o-doubt", "operator stop");
  BOOST_REQUIRE_MESSAGE(compensated.ok(), compensated.message);
  auto done = waiter.wait("saga-o-doubt", sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(done->steps[1].status_ == sg::step_status::compensated);
  BOOST_TEST(done->steps[0].status_ == sg::step_status::compensated);
  const auto ledger = count_ledger(*setup.ledger, "o-doubt");
  BOOST_TEST(ledger.approved_charges == 1);
  BOOST_TEST(ledger.refunds == 1);
  BOOST_TEST(rt->inventory_state("p1").state.available == 10);
  BOOST_TEST(rt->inventory_state("p1").state.reserved == 0);
  BOOST_TEST(rt->order_state("o-doubt").state.status_ == ord::status::cancelled);
}

BOOST_AUTO_TEST_CASE(a_cancel_sent_before_its_start_was_committed_cancels_once) {
  // Pipelined compensation: after a declined charge, the transition recording the release's
  // success carries the closing cancel's start, and the cancel goes out with it. That append
  // is lost (once): the order is cancelled while the saga's journal still shows the release
  // running. The saga re-reads its journal, re-sends the release (nothing left to release),
  // sends the cancel again with the same key and ends COMPENSATED, stock intact.
  saga_setup setup;
  setup.gateway.decline_above = 2000;
  auto run = run_losing_once(setup, "o-early", "SagaStepCompensated", sg::status::compensated);
  BOOST_REQUIRE_MESSAGE(run.started.ok(), run.started.message);
  BOOST_REQUIRE(run.done.has_value());
  BOOST_TEST(run.blocker->refused.load() >= 1);
  BOOST_TEST(run.done->steps[0].status_ == sg::step_status::compensated);
  auto& rt = run.rt;
  std::size_t cancelled = 0;
  std::int64_t cancelled_at = 0;
  for (const auto& rec : setup.journal.events("order-o-early")) {
    if (rec.event_type != "OrderCancelled") continue;
    ++cancelled;
    cancelled_at = rec.position;
  }
  BOOST_TEST(cancelled == 1u);
  // The cancel went out early: it was committed before the release's success ever was.
  std::int64_t release_recorded_at = 0;
  for (const auto& rec : setup.journal.events("saga-saga-o-early"))
    if (rec.event_type == "SagaStepCompensated" && release_recorded_at == 0)
      release_recorded_at = rec.position;
  BOOST_TEST(cancelled_at < release_recorded_at);
  BOOST_TEST(rt->order_state("o-early").state.status_ == ord::status::cancelled);
  BOOST_TEST(rt->inventory_state("p1").state.available == 10);
  BOOST_TEST(rt->inventory_state("p1").state.reserved == 0);
  std::size_t released = 0;
  for (const auto& rec : setup.journal.events("inventory-p1"))
    released += rec.event_type == "InventoryReleased" ? 1 : 0;
  BOOST_TEST(released == 1u);
  BOOST_TEST(count_ledger(*setup.ledger, "o-early").declined_charges == 1);
}

BOOST_AUTO_TEST_CASE(a_saga_whose_start_was_not_written_starts_itself_again) {
  // The journal refuses an order saga's SagaStarted until the test lets appends through (these
  // tests give the writer a single attempt): the caller hears that the start failed, while the
  // reservation, sent with it, is made. The saga tries its start again by itself and completes:
  // one reservation, one charge.
  saga_setup setup;
  auto run = run_losing_once(setup, "o-restart", "SagaStarted", sg::status::completed);
  BOOST_TEST(!run.started.ok());
  BOOST_REQUIRE(run.done.has_value());
  BOOST_TEST(run.blocker->refused.load() >= 1);  // a retry may come before the unblocking
  std::size_t starts = 0;
  for (const auto& e : saga_events(setup.journal, "saga-o-restart"))
    starts += std::holds_alternative<sg::saga_started>(e) ? 1 : 0;
  BOOST_TEST(starts == 1u);
  std::size_t reserved = 0;
  for (const auto& rec : setup.journal.events("inventory-p1"))
    reserved += rec.event_type == "InventoryReserved" ? 1 : 0;
  BOOST_TEST(reserved == 1u);
  BOOST_TEST(run.rt->inventory_state("p1").state.reserved == 2);
  BOOST_TEST(count_ledger(*setup.ledger, "o-restart").approved_charges == 1);
  BOOST_TEST(run.rt->order_state("o-restart").state.status_ == ord::status::confirmed);
}

BOOST_AUTO_TEST_CASE(a_saga_waiting_for_a_retry_resumes_in_a_new_runtime) {
  saga_setup setup;
  setup.options.saga_steps.retry = sg::retry_policy{3, 1000, 1.0, 1000, 0.0};
  setup.control->charges = gateway_control::fail;
  placed_order placed;
  {
    auto rt = setup.start();
    register_stock(*rt, "p1", 10);
    placed = place(*rt, order_of("p1", 2));
    BOOST_REQUIRE(eventually([&] {
      auto s = rt->saga_state(placed.saga_id).state;
      return s.awaiting_retry && s.current_step == 1;
    }));
  }  // stopped while the retry timer was armed
  const auto failed_before =
      attempt_failures(saga_events(setup.journal, placed.saga_id), 1, sg::phase::forward);
  BOOST_REQUIRE(!failed_before.empty());
  BOOST_TEST(failed_before.back().will_retry);
  BOOST_TEST(contains(failed_before.back().reason, "gateway_unavailable"));
  setup.control->charges = gateway_control::pass;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  auto resumed = rt->resume_saga(placed.saga_id);
  BOOST_REQUIRE(resumed.ok);
  BOOST_TEST(resumed.state.status_ == sg::status::running);
  BOOST_TEST(resumed.state.awaiting_retry);
  auto done = waiter.wait(placed.saga_id, sg::status::completed);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(rt->order_state(placed.order_id).state.status_ == ord::status::confirmed);
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 1);
  // The retry after the restart succeeded: no attempt failed after it.
  BOOST_TEST(
      attempt_failures(saga_events(setup.journal, placed.saga_id), 1, sg::phase::forward).size() ==
      failed_before.size());
}

BOOST_AUTO_TEST_CASE(a_charge_in_flight_at_shutdown_is_not_charged_twice_after_resume) {
  saga_setup setup;
  setup.control->charges = gateway_control::slow;  // charged, but answered late
  setup.control->hang_ms = 300;
  placed_order placed;
  {
    auto rt = setup.start();
    register_stock(*rt, "p1", 10);
    placed = place(*rt, order_of("p1", 2));
    BOOST_REQUIRE(eventually([&] { return setup.control->charge_calls.load() >= 1; }));
  }  // stopped while the charge was in flight; the gateway still records it
  BOOST_REQUIRE(eventually(
      [&] { return count_ledger(*setup.ledger, placed.order_id).approved_charges == 1; }));
  BOOST_TEST(payment_unrecorded(setup, placed.order_id));
  setup.control->charges = gateway_control::pass;
  const auto riders_before = setup.journal.faults->riders_written.load();
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  BOOST_REQUIRE(rt->resume_saga(placed.saga_id).ok);
  auto done = waiter.wait(placed.saga_id, sg::status::completed);
  BOOST_REQUIRE(done.has_value());
  // The re-sent charge builds on the saga's last event as recovered from the journal: its
  // outcome rides with it, and so does the confirmation's.
  BOOST_TEST(setup.journal.faults->riders_written.load() - riders_before == 2);
  auto entries = setup.ledger->entries_of_order(placed.order_id);
  BOOST_REQUIRE(entries.has_value());
  BOOST_REQUIRE_EQUAL(entries->size(), 1u);
  auto payment = rt->payment_state(sg::payment_id_for(placed.order_id));
  BOOST_TEST(payment.state.status_ == pay::status::processed);
  BOOST_TEST(payment.state.transaction_id == entries->front().transaction_id);
  BOOST_TEST(setup.control->charge_calls.load() == 2);  // the second got the ledger's answer
}

BOOST_AUTO_TEST_CASE(a_finished_saga_leaves_memory_and_still_answers_from_its_journal) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 1));
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed));
  BOOST_REQUIRE(eventually([&] { return rt->stats(aggregate_kind::saga).active == 0; }));
  auto state = rt->saga_state(placed.saga_id);
  BOOST_REQUIRE(state.ok);
  BOOST_TEST(state.state.status_ == sg::status::completed);
  BOOST_TEST(state.state.saga_id == placed.saga_id);
  BOOST_REQUIRE(eventually([&] { return rt->stats(aggregate_kind::saga).active == 0; }));
  auto stats = rt->stats(aggregate_kind::saga);
  BOOST_TEST(stats.spawned == 2u);
  BOOST_TEST(stats.passivations == 2u);
  BOOST_TEST(stats.crashes == 0u);

  // Queries racing with the self-stop: one that reaches the stopping actor is sent again to a
  // fresh activation, never answered with an error or counted as a crash.
  std::vector<std::future<state_reply<sg::state>>> queries;
  for (int i = 0; i < 20; ++i) queries.push_back(rt->saga_state_async(placed.saga_id));
  for (auto& q : queries) {
    auto answer = q.get();
    BOOST_REQUIRE_MESSAGE(answer.ok, answer.message);
    BOOST_TEST(answer.state.status_ == sg::status::completed);
  }
  BOOST_REQUIRE(eventually([&] { return rt->stats(aggregate_kind::saga).active == 0; }));
  stats = rt->stats(aggregate_kind::saga);
  BOOST_TEST(stats.crashes == 0u);
  BOOST_TEST(stats.restarts == 0u);
  BOOST_TEST(stats.spawned >= 3u);
  BOOST_TEST(stats.spawned == stats.passivations);
  BOOST_TEST_MESSAGE("activations for 20 racing queries: " << stats.spawned - 2);

  auto unknown = rt->saga_state("no-such-saga");
  BOOST_REQUIRE(unknown.ok);
  BOOST_TEST(unknown.state.status_ == sg::status::none);
  auto retry = rt->retry_saga("no-such-saga");
  BOOST_TEST(retry.kind == reply_kind::rejected);
  BOOST_TEST(retry.rejection == dom::rejection_code::not_found);
  auto compensate = rt->compensate_saga(placed.saga_id, "too late");
  BOOST_TEST(compensate.kind == reply_kind::rejected);
  BOOST_TEST(compensate.rejection == dom::rejection_code::invalid_state);
  BOOST_REQUIRE(eventually([&] { return rt->stats(aggregate_kind::saga).active == 0; }));
}

BOOST_AUTO_TEST_CASE(an_operator_compensates_a_running_saga) {
  saga_setup setup;
  setup.control->charges = gateway_control::hang;
  setup.control->hang_ms = 200;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 2));
  BOOST_REQUIRE(eventually([&] { return setup.control->charge_calls.load() >= 1; }));

  auto compensated = rt->compensate_saga(placed.saga_id, "operator stop");
  BOOST_REQUIRE_MESSAGE(compensated.ok(), compensated.message);
  setup.control->charges = gateway_control::pass;
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(done->steps[1].status_ == sg::step_status::compensated);
  auto order = rt->order_state(placed.order_id);
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(order.state.failure_reason == "operator stop");
  BOOST_TEST(rt->inventory_state("p1").state.available == 10);
  BOOST_TEST(count_ledger(*setup.ledger, placed.order_id).approved_charges == 0);
}

BOOST_AUTO_TEST_CASE(a_manual_confirmation_during_the_saga_counts_as_its_confirm_step) {
  saga_setup setup;
  setup.control->charges = gateway_control::slow;
  setup.control->hang_ms = 200;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 1));
  BOOST_REQUIRE(eventually([&] { return setup.control->charge_calls.load() >= 1; }));
  auto confirmed = rt->confirm_order(placed.order_id);
  BOOST_REQUIRE_MESSAGE(confirmed.ok(), confirmed.message);
  BOOST_TEST(rt->confirm_order(placed.order_id).kind == reply_kind::replayed);
  BOOST_REQUIRE(waiter.wait(placed.saga_id, sg::status::completed));
  BOOST_TEST(rt->order_state(placed.order_id).state.status_ == ord::status::confirmed);
}

BOOST_AUTO_TEST_CASE(orders_created_without_a_saga_get_one_even_to_be_cancelled) {
  saga_setup setup;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto create = [&](const std::string& id) {
    ord::create c{id,          "customer-1",  {{"p1", "Widget p1", 1, 1500}},
                  "1 Main St", "corr-" + id,  "",
                  rt->now(),   "create-" + id};
    BOOST_REQUIRE(rt->send(id, c).ok());
  };
  create("o-late");
  auto started = rt->start_saga_for_order("o-late");
  BOOST_REQUIRE_MESSAGE(started.ok(), started.message);
  BOOST_TEST(started.saga_id == "saga-of-o-late");
  auto done = waiter.wait("saga-of-o-late", sg::status::completed);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(done->correlation_id == "corr-o-late");
  BOOST_TEST(rt->start_saga_for_order("o-late").kind == reply_kind::replayed);

  // No saga ever ran: the cancel starts it and compensates through it (a lost start's first
  // step may have reserved stock), ending with the order cancelled for the customer's reason.
  create("o-never");
  auto cancelled = rt->cancel_order("o-never", "not wanted");
  BOOST_REQUIRE_MESSAGE(cancelled.ok(), cancelled.message);
  BOOST_TEST(cancelled.saga_id == "saga-of-o-never");
  auto compensated = waiter.wait("saga-of-o-never", sg::status::compensated);
  BOOST_REQUIRE(compensated.has_value());
  BOOST_TEST(compensated->compensation_reason == "not wanted");
  auto order = rt->order_state("o-never");
  BOOST_TEST(order.state.status_ == ord::status::cancelled);
  BOOST_TEST(order.state.failure_reason == "not wanted");
  BOOST_TEST(rt->start_saga_for_order("o-never").kind == reply_kind::replayed);
  BOOST_TEST(rt->inventory_state("p1").state.available == 9);  // o-late's unit only
  BOOST_TEST(count_ledger(*setup.ledger, "o-never").approved_charges == 0);
}

BOOST_AUTO_TEST_CASE(a_first_step_sent_before_a_lost_start_is_found_again_or_undone) {
  // An order's saga sends its reservation together with SagaStarted. Here that append is lost
  // and the node stops: the stock is held, the journal has no saga. After the restart, one
  // order's saga is started again (as recovery does) and finds its reservation by key; the
  // other order is cancelled first, and its saga, started by the cancel, releases the stock.
  saga_setup setup;
  auto blocker = std::make_shared<saga_append_blocker>();
  blocker->event_type = "SagaStarted";
  const std::vector<std::string> orders{"o-resume", "o-cancel"};
  for (const auto& id : orders) {
    blocker->stream = "saga-saga-" + id;
    auto rt = start_blocked(setup, blocker);
    if (id == orders.front()) register_stock(*rt, "p1", 10);
    create_order(*rt, id, 2);
    auto started = rt->start_saga_for_order(id);
    BOOST_TEST(!started.ok());  // its start was lost
    BOOST_REQUIRE(eventually([&] {
      for (const auto& rec : setup.journal.events("inventory-p1"))
        if (rec.event_type == "InventoryReserved" && rec.payload.find(id) != std::string::npos)
          return true;
      return false;
    }));
  }  // each node stops with its saga's start unwritten
  BOOST_TEST(saga_events(setup.journal, "saga-o-resume").empty());
  BOOST_TEST(saga_events(setup.journal, "saga-o-cancel").empty());
  blocker->blocked = false;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  BOOST_TEST(rt->inventory_state("p1").state.reserved == 4);

  auto cancelled = rt->cancel_order("o-cancel", "changed my mind");
  BOOST_REQUIRE_MESSAGE(cancelled.ok(), cancelled.message);
  BOOST_REQUIRE(waiter.wait("saga-o-cancel", sg::status::compensated).has_value());
  BOOST_TEST(rt->order_state("o-cancel").state.status_ == ord::status::cancelled);

  auto resumed = rt->start_saga_for_order("o-resume");
  BOOST_REQUIRE_MESSAGE(resumed.ok(), resumed.message);
  BOOST_REQUIRE(waiter.wait("saga-o-resume", sg::status::completed).has_value());
  BOOST_TEST(rt->order_state("o-resume").state.status_ == ord::status::confirmed);
  BOOST_TEST(count_ledger(*setup.ledger, "o-resume").approved_charges == 1);

  // o-resume holds its 2 units (reserved once), o-cancel's are back.
  const auto stock = rt->inventory_state("p1").state;
  BOOST_TEST(stock.reserved == 2);
  BOOST_TEST(stock.available == 8);
  std::size_t reserved_events = 0;
  for (const auto& rec : setup.journal.events("inventory-p1"))
    if (rec.event_type == "InventoryReserved" && rec.payload.find("o-resume") != std::string::npos)
      ++reserved_events;
  BOOST_TEST(reserved_events == 1u);
}

BOOST_AUTO_TEST_CASE(a_second_definition_runs_without_new_runtime_code) {
  // "HoldStock": reserve every product of the input, then nothing else; compensation releases.
  sg::saga_definition hold;
  hold.type = "HoldStock";
  sg::step_definition reserve_step;
  reserve_step.name = "hold";
  reserve_step.timeout_ms = 1000;
  reserve_step.action = [](const sg::saga_context& ctx) {
    std::vector<sg::step_command> out;
    for (const auto& item : ctx.input.items)
      out.push_back({sg::aggregate_kind::inventory, item.product_id,
                     inv::reserve{ctx.input.order_id, item.quantity, ctx.at, {}}});
    return out;
  };
  reserve_step.compensation = [](const sg::saga_context& ctx) {
    std::vector<sg::step_command> out;
    for (const auto& item : ctx.input.items)
      out.push_back({sg::aggregate_kind::inventory, item.product_id,
                     inv::release{ctx.input.order_id, ctx.reason, ctx.at, {}}});
    return out;
  };
  hold.steps.push_back(reserve_step);
  auto catalog = std::make_shared<sg::saga_catalog>();
  BOOST_REQUIRE(catalog->add(hold));
  BOOST_REQUIRE(catalog->add(sg::order_processing()));

  saga_setup setup;
  setup.options.sagas = catalog;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "a", 5);
  register_stock(*rt, "b", 5);
  sg::saga_input input;
  input.order_id = "hold-1";
  input.items = {{"a", "A", 2, 100}, {"b", "B", 3, 100}};
  auto started = rt->start_saga("HoldStock", sg::start{"hold-saga", "corr-hold", input});
  BOOST_REQUIRE_MESSAGE(started.ok(), started.message);
  BOOST_REQUIRE(waiter.wait("hold-saga", sg::status::completed));
  BOOST_TEST(rt->inventory_state("a").state.reserved == 2);
  BOOST_TEST(rt->inventory_state("b").state.reserved == 3);
  // Several targets: each gets its own key (saga/step/action/aggregate).
  auto held = setup.journal.events("inventory-b");
  BOOST_TEST(held.back().metadata.command_id == "hold-saga/hold/reserve/b");

  auto undo = rt->compensate_saga("hold-saga", "no longer needed");
  BOOST_TEST(undo.kind == reply_kind::rejected);  // COMPLETED: only a cancellation undoes it
  BOOST_TEST(undo.rejection == dom::rejection_code::invalid_state);
  auto unknown = rt->start_saga("NoSuchType", sg::start{"x-saga", "c", input});
  BOOST_TEST(unknown.kind == reply_kind::rejected);
  BOOST_TEST(unknown.rejection == dom::rejection_code::invalid_argument);
  auto nameless = rt->start_saga("HoldStock", sg::start{"", "c", input});
  BOOST_TEST(nameless.kind == reply_kind::rejected);
  auto twice = rt->start_saga("HoldStock", sg::start{"hold-saga", "corr-hold", input});
  BOOST_TEST(twice.kind == reply_kind::rejected);
  BOOST_TEST(twice.rejection == dom::rejection_code::invalid_state);
}

BOOST_AUTO_TEST_CASE(an_invalid_order_is_rejected_without_a_saga) {
  saga_setup setup;
  auto rt = setup.start();
  register_stock(*rt, "p1", 10);
  auto bad = rt->place_order(order_of("p1", 0));
  BOOST_TEST(bad.kind == reply_kind::rejected);
  BOOST_TEST(bad.rejection == dom::rejection_code::invalid_quantity);
  BOOST_TEST(!bad.saga_started);
  BOOST_TEST(bad.saga_id.empty());
  BOOST_TEST(rt->stats(aggregate_kind::saga).spawned == 0u);
}

BOOST_AUTO_TEST_CASE(without_a_gateway_payments_fail_retryably_and_the_saga_compensates) {
  saga_setup setup;
  placed_order placed;
  {
    auto options = saga_fast_options();  // no gateway factory
    runtime rt(options, setup.journal.factory());
    saga_waiter waiter(rt);
    register_stock(rt, "p1", 10);
    placed = place(rt, order_of("p1", 1));
    // Nobody can tell whether the charge happened (another node may have made it), so the
    // refund cannot settle it either: the compensation fails until a gateway is back.
    auto failed = waiter.wait(placed.saga_id, sg::status::failed);
    BOOST_REQUIRE(failed.has_value());
    BOOST_TEST(contains(failed->compensation_reason, "no payment gateway is configured"));
    BOOST_TEST(contains(failed->compensation_reason, "gave up after 3 attempts"));
    BOOST_TEST(contains(failed->failure_reason, "compensating process_payment"));
    BOOST_TEST(rt.inventory_state("p1").state.reserved == 1);  // released after the refund
  }
  // With a gateway the operator's retry settles the charge (there was none) and finishes.
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  BOOST_REQUIRE(rt->retry_saga(placed.saga_id).ok());
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(rt->inventory_state("p1").state.available == 10);
  BOOST_TEST(rt->order_state(placed.order_id).state.status_ == ord::status::cancelled);
  const auto ledger = count_ledger(*setup.ledger, placed.order_id);
  BOOST_TEST(ledger.approved_charges == 0);
  BOOST_TEST(ledger.declined_charges == 1);  // the void's tombstone bars the charge key
}

BOOST_AUTO_TEST_SUITE_END()

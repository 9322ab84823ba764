// OrderProcessing on the saga state machine: given events → when input → then events,
// actions or rejection. Only the aggregates' command structs are used, never their decide().
#include <boost/test/unit_test.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "domain/order_processing.hpp"
#include "domain/saga.hpp"
#include "domain/saga_codec.hpp"

// Readable failure messages for the saga enums (found by ADL).
namespace saga::domain::sagas {
inline std::ostream& boost_test_print_type(std::ostream& os, phase v) { return os << to_string(v); }
inline std::ostream& boost_test_print_type(std::ostream& os, status v) {
  return os << to_string(v);
}
inline std::ostream& boost_test_print_type(std::ostream& os, step_status v) {
  return os << to_string(v);
}
inline std::ostream& boost_test_print_type(std::ostream& os, target_status v) {
  return os << to_string(v);
}
inline std::ostream& boost_test_print_type(std::ostream& os, aggregate_kind v) {
  return os << to_string(v);
}
inline std::ostream& boost_test_print_type(std::ostream& os, timer_kind v) {
  return os << (v == timer_kind::deadline ? "deadline" : "retry");
}
}  // namespace saga::domain::sagas

namespace sg = saga::domain::sagas;
namespace inv = saga::domain::inventory;
namespace pay = saga::domain::payment;
namespace ord = saga::domain::order;
using saga::domain::rejection_code;
using saga::domain::timestamp;

namespace {

constexpr auto fwd = sg::phase::forward;
constexpr auto comp = sg::phase::compensation;
constexpr auto closing = sg::phase::on_compensated;

struct harness {
  sg::saga_definition def = sg::order_processing();
  sg::state s;
  std::vector<sg::event> history;

  saga::domain::result<sg::transition> when(const sg::input& in, timestamp now,
                                            double random01 = 0.5) {
    auto res = sg::decide(def, s, in, now, random01);
    if (res) {
      for (const auto& e : res->events) {
        s = sg::evolve(s, e);
        history.push_back(e);
      }
    }
    return res;
  }
  sg::transition then_ok(const sg::input& in, timestamp now, double random01 = 0.5) {
    auto res = when(in, now, random01);
    BOOST_REQUIRE_MESSAGE(res.has_value(), (res ? "" : res.error().message));
    return std::move(res).value();
  }
  void then_rejected(const sg::input& in, timestamp now, rejection_code code) {
    const auto before = s;
    auto res = when(in, now);
    BOOST_REQUIRE(!res.has_value());
    BOOST_TEST((res.error().code == code));
    BOOST_TEST((s == before));
  }
  void then_ignored(const sg::input& in, timestamp now) {
    const auto before = s;
    auto t = then_ok(in, now);
    BOOST_TEST(t.events.empty());
    BOOST_TEST(t.actions.empty());
    BOOST_TEST((s == before));
  }
};

/// The step start folded into `e` (its `next`), or nullptr.
const sg::step_started* folded_start(const sg::event& e) {
  return std::visit(
      [](const auto& ev) -> const sg::step_started* {
        using E = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<E, sg::saga_started> ||
                      std::is_same_v<E, sg::step_succeeded> ||
                      std::is_same_v<E, sg::step_compensated> ||
                      std::is_same_v<E, sg::compensation_started>) {
          return ev.next ? &*ev.next : nullptr;
        } else {
          return nullptr;
        }
      },
      e);
}

/// Event type names; a folded step start shows as "<event>+SagaStepStarted".
std::vector<std::string> names(const sg::transition& t) {
  std::vector<std::string> out;
  for (const auto& e : t.events) {
    std::string name(saga::domain::event_type(e));
    if (folded_start(e) != nullptr) name += "+SagaStepStarted";
    out.push_back(std::move(name));
  }
  return out;
}
using strings = std::vector<std::string>;

template <class T>
std::vector<T> actions_of(const sg::transition& t) {
  std::vector<T> out;
  for (const auto& a : t.actions)
    if (const auto* x = std::get_if<T>(&a)) out.push_back(*x);
  return out;
}

/// The only event of type T; step starts are found folded into other events as well.
template <class T>
T only_event(const sg::transition& t) {
  std::vector<T> found;
  for (const auto& e : t.events) {
    if (const auto* x = std::get_if<T>(&e)) found.push_back(*x);
    if constexpr (std::is_same_v<T, sg::step_started>) {
      if (const auto* folded = folded_start(e)) found.push_back(*folded);
    }
  }
  BOOST_REQUIRE_EQUAL(found.size(), 1u);
  return found.front();
}

sg::send_commands only_send(const sg::transition& t) {
  auto sends = actions_of<sg::send_commands>(t);
  BOOST_REQUIRE_EQUAL(sends.size(), 1u);
  return sends.front();
}

sg::arm_timer only_timer(const sg::transition& t) {
  auto timers = actions_of<sg::arm_timer>(t);
  BOOST_REQUIRE_EQUAL(timers.size(), 1u);
  return timers.front();
}

template <class Cmd, class AggregateCommand>
const Cmd& as(const sg::targeted_command& c) {
  return std::get<Cmd>(std::get<AggregateCommand>(c.command.command));
}

std::vector<std::string> keys(const sg::send_commands& send) {
  std::vector<std::string> out;
  for (const auto& c : send.commands) out.push_back(sg::idempotency_key_of(c.command.command));
  return out;
}

/// Two lines of p-1 (2 + 3) and one of p-2: two reserve targets.
sg::start two_products() {
  sg::start st;
  st.saga_id = "s-1";
  st.correlation_id = "corr-1";
  st.input.order_id = "o-1";
  st.input.customer_id = "c-1";
  st.input.items = {{"p-1", "Pen", 2, 500}, {"p-2", "Ink", 1, 1200}, {"p-1", "Pen", 3, 500}};
  st.input.total = 3700;
  return st;
}

sg::start one_product() {
  auto st = two_products();
  st.input.items = {{"p-1", "Pen", 2, 500}};
  st.input.total = 1000;
  return st;
}

/// Starts at t=1000 and lets inventory succeed: the payment attempt 1 is in flight.
harness at_payment(const sg::start& st = two_products()) {
  harness h;
  const auto t = h.then_ok(st, 1000);
  const auto send = only_send(t);
  for (const auto& c : send.commands) h.then_ok(sg::target_succeeded{0, fwd, 1, c.target}, 1100);
  BOOST_REQUIRE(h.s.current_step == 1);
  return h;
}

harness completed() {
  auto h = at_payment();
  h.then_ok(sg::target_succeeded{1, fwd, 1, 0}, 1200);
  h.then_ok(sg::target_succeeded{2, fwd, 1, 0}, 1300);
  BOOST_REQUIRE(h.s.status_ == sg::status::completed);
  return h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(saga_order_processing)

BOOST_AUTO_TEST_CASE(the_definition_has_the_documented_steps_and_defaults) {
  const auto def = sg::order_processing();
  BOOST_TEST(def.type == "OrderProcessing");
  BOOST_REQUIRE_EQUAL(def.steps.size(), 3u);
  BOOST_TEST(def.steps[0].name == "reserve_inventory");
  BOOST_TEST(def.steps[1].name == "process_payment");
  BOOST_TEST(def.steps[2].name == "confirm_order");
  BOOST_TEST(static_cast<bool>(def.steps[0].compensation));
  BOOST_TEST(static_cast<bool>(def.steps[1].compensation));
  BOOST_TEST(!def.steps[2].compensation);
  BOOST_TEST(static_cast<bool>(def.on_compensated));
  for (const auto& st : def.steps) {
    BOOST_TEST(st.timeout_ms == 5000);
    BOOST_TEST(st.retry.max_attempts == 3);
    BOOST_TEST(st.retry.initial_backoff_ms == 100);
    BOOST_TEST(st.retry.multiplier == 2.0);
    BOOST_TEST(st.retry.max_backoff_ms == 2000);
    BOOST_TEST(st.retry.jitter == 0.2);
    BOOST_TEST(st.compensation_retry.max_attempts == 5);
  }
  BOOST_TEST(def.on_compensated_retry.max_attempts == 5);

  sg::order_processing_options options;
  options.step_timeout_ms = 750;
  options.retry.max_attempts = 7;
  const auto custom = sg::order_processing(options);
  BOOST_TEST(custom.steps[1].timeout_ms == 750);
  BOOST_TEST(custom.steps[1].retry.max_attempts == 7);
  BOOST_TEST(custom.on_compensated_timeout_ms == 750);
}

BOOST_AUTO_TEST_CASE(quantities_are_summed_per_distinct_product_in_order_of_appearance) {
  const auto q = sg::quantities_by_product(two_products().input.items);
  BOOST_REQUIRE_EQUAL(q.size(), 2u);
  BOOST_TEST(q[0].first == "p-1");
  BOOST_TEST(q[0].second == 5);
  BOOST_TEST(q[1].first == "p-2");
  BOOST_TEST(q[1].second == 1);
  const auto huge = sg::quantities_by_product({{"p", "x", INT64_MAX, 1}, {"p", "x", 1, 1}});
  BOOST_TEST(huge[0].second == INT64_MAX);
  BOOST_TEST(sg::payment_id_for("o-7") == "pay-o-7");
}

BOOST_AUTO_TEST_CASE(happy_path_reserves_charges_confirms_and_completes) {
  harness h;
  auto t = h.then_ok(two_products(), 1000);
  BOOST_TEST(names(t) == strings{"SagaStarted+SagaStepStarted"});
  BOOST_TEST(sg::is_active(h.s.status_));
  const auto started = only_event<sg::step_started>(t);
  BOOST_TEST(started.step == 0);
  BOOST_TEST(started.attempt == 1);
  BOOST_TEST(started.target_count == 2);
  BOOST_TEST(started.targets == (std::vector<int>{0, 1}));
  BOOST_TEST(started.deadline_at == 6000);
  auto send = only_send(t);
  BOOST_TEST(send.deadline_at == 6000);
  BOOST_REQUIRE_EQUAL(send.commands.size(), 2u);
  BOOST_TEST(send.commands[0].command.target == sg::aggregate_kind::inventory);
  BOOST_TEST(send.commands[0].command.aggregate_id == "p-1");
  BOOST_TEST((as<inv::reserve, inv::command>(send.commands[0]).quantity) == 5);
  BOOST_TEST((as<inv::reserve, inv::command>(send.commands[0]).order_id) == "o-1");
  BOOST_TEST((as<inv::reserve, inv::command>(send.commands[0]).at) == 1000);
  BOOST_TEST(send.commands[1].command.aggregate_id == "p-2");
  BOOST_TEST((as<inv::reserve, inv::command>(send.commands[1]).quantity) == 1);
  BOOST_TEST(keys(send) ==
             (strings{"s-1/reserve_inventory/reserve/p-1", "s-1/reserve_inventory/reserve/p-2"}));
  const auto timer = only_timer(t);
  BOOST_TEST((timer.kind == sg::timer_kind::deadline));
  BOOST_TEST(timer.at == 6000);

  t = h.then_ok(sg::target_succeeded{0, fwd, 1, 1}, 1100);
  BOOST_TEST(names(t) == strings{"SagaStepSucceeded"});
  BOOST_TEST(!only_event<sg::step_succeeded>(t).step_done);
  BOOST_TEST(t.actions.empty());

  t = h.then_ok(sg::target_succeeded{0, fwd, 1, 0}, 1150);
  BOOST_TEST(names(t) == strings{"SagaStepSucceeded+SagaStepStarted"});
  BOOST_TEST(only_event<sg::step_succeeded>(t).step_done);
  send = only_send(t);
  BOOST_TEST(send.step == 1);
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  BOOST_TEST(send.commands[0].command.target == sg::aggregate_kind::payment);
  BOOST_TEST(send.commands[0].command.aggregate_id == "pay-o-1");
  const auto& process = as<pay::process, pay::command>(send.commands[0]);
  BOOST_TEST(process.payment_id == "pay-o-1");
  BOOST_TEST(process.order_id == "o-1");
  BOOST_TEST(process.customer_id == "c-1");
  BOOST_TEST(process.amount == 3700);
  BOOST_TEST(process.idempotency_key == "s-1/process_payment/process");
  BOOST_TEST(!process.gateway.has_value());
  BOOST_TEST(send.deadline_at == 6150);

  t = h.then_ok(sg::target_succeeded{1, fwd, 1, 0}, 1200);
  BOOST_TEST(names(t) == strings{"SagaStepSucceeded+SagaStepStarted"});
  send = only_send(t);
  BOOST_TEST(send.commands[0].command.target == sg::aggregate_kind::order);
  BOOST_TEST(send.commands[0].command.aggregate_id == "o-1");
  BOOST_TEST((as<ord::confirm, ord::command>(send.commands[0]).idempotency_key) ==
             "s-1/confirm_order/confirm");

  t = h.then_ok(sg::target_succeeded{2, fwd, 1, 0}, 1300);
  BOOST_TEST(names(t) == (strings{"SagaStepSucceeded", "SagaCompleted"}));
  BOOST_REQUIRE_EQUAL(t.actions.size(), 1u);
  BOOST_TEST((std::get<sg::finished>(t.actions[0]).status_ == sg::status::completed));
  BOOST_TEST((h.s.status_ == sg::status::completed));
  BOOST_TEST(!sg::is_active(h.s.status_));
  for (const auto& st : h.s.steps) BOOST_TEST((st.status_ == sg::step_status::succeeded));
  BOOST_TEST(h.s.version == static_cast<std::int64_t>(h.history.size()));
  BOOST_TEST(h.s.started_at == 1000);
  BOOST_TEST(h.s.updated_at == 1300);
  BOOST_TEST(h.s.deadline_at == 0);
}

BOOST_AUTO_TEST_CASE(payment_declined_releases_stock_then_cancels_the_order) {
  auto h = at_payment();
  auto t = h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined: above limit", false}, 1200);
  BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaStepFailed",
                                  "SagaCompensationStarted+SagaStepStarted"}));
  const auto verdict = std::get<sg::step_failed>(t.events[1]);
  BOOST_TEST(verdict.target == -1);
  BOOST_TEST(!verdict.retryable);
  BOOST_TEST(!verdict.will_retry);
  const auto reason = std::string("process_payment: declined: above limit");
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == reason);
  BOOST_TEST((h.s.status_ == sg::status::compensating));
  // The declined charge did nothing: no refund, straight to releasing step 1's stock.
  auto send = only_send(t);
  BOOST_TEST(send.step == 0);
  BOOST_TEST((send.phase_ == comp));
  BOOST_TEST(keys(send) ==
             (strings{"s-1/reserve_inventory/release/p-1", "s-1/reserve_inventory/release/p-2"}));
  BOOST_TEST((as<inv::release, inv::command>(send.commands[0]).reason) == reason);
  BOOST_TEST((as<inv::release, inv::command>(send.commands[1]).order_id) == "o-1");

  t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1300);
  BOOST_TEST(names(t) == strings{"SagaStepCompensated"});
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 1}, 1310);
  BOOST_TEST(names(t) == strings{"SagaStepCompensated+SagaStepStarted"});
  send = only_send(t);
  BOOST_TEST((send.phase_ == closing));
  BOOST_TEST(send.step == 3);
  BOOST_TEST(send.commands[0].command.aggregate_id == "o-1");
  const auto& cancel = as<ord::cancel, ord::command>(send.commands[0]);
  BOOST_TEST(cancel.reason == reason);
  BOOST_TEST(cancel.idempotency_key == "s-1/on_compensated/cancel");

  t = h.then_ok(sg::target_succeeded{3, closing, 1, 0}, 1400);
  BOOST_TEST(names(t) == (strings{"SagaStepCompensated", "SagaCompensated"}));
  BOOST_TEST(only_event<sg::saga_compensated>(t).reason == reason);
  BOOST_TEST((std::get<sg::finished>(t.actions.at(0)).status_ == sg::status::compensated));
  BOOST_TEST((h.s.status_ == sg::status::compensated));
  BOOST_TEST((h.s.steps[0].status_ == sg::step_status::compensated));
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::failed));
  BOOST_TEST((h.s.steps[2].status_ == sg::step_status::pending));
}

BOOST_AUTO_TEST_CASE(a_timed_out_step_is_retried_with_backoff_then_compensated) {
  auto h = at_payment(one_product());
  const auto policy = h.def.steps[1].retry;
  auto t = h.then_ok(sg::deadline_reached{1, fwd, 1}, 6100, 0.9);
  BOOST_TEST(names(t) == strings{"SagaStepFailed"});
  auto failed = only_event<sg::step_failed>(t);
  BOOST_TEST(failed.reason == "timed out after 5000 ms");
  BOOST_TEST(failed.retryable);
  BOOST_TEST(failed.will_retry);
  BOOST_TEST(failed.retry_at == 6100 + sg::backoff_delay_ms(policy, 1, 0.9));
  BOOST_TEST(failed.retry_at == 6216);  // 100 ms · (1 + 0.2 · 0.8)
  auto timer = only_timer(t);
  BOOST_TEST((timer.kind == sg::timer_kind::retry));
  BOOST_TEST(timer.at == 6216);
  BOOST_TEST(h.s.awaiting_retry);
  BOOST_TEST(h.s.retry_at == 6216);

  t = h.then_ok(sg::retry_due{1, fwd, 1}, 6216);
  BOOST_TEST(names(t) == strings{"SagaStepStarted"});
  auto send = only_send(t);
  BOOST_TEST(send.attempt == 2);
  BOOST_TEST(keys(send) == strings{"s-1/process_payment/process"});  // same key on a retry
  // The command is identical to the first attempt's, `at` included.
  BOOST_TEST((as<pay::process, pay::command>(send.commands[0]).at) == 1100);
  BOOST_TEST(send.deadline_at == 11216);

  t = h.then_ok(sg::deadline_reached{1, fwd, 2}, 11216, 0.9);
  failed = only_event<sg::step_failed>(t);
  BOOST_TEST(failed.will_retry);
  BOOST_TEST(failed.retry_at == 11216 + 232);  // 200 ms · 1.16
  h.then_ok(sg::retry_due{1, fwd, 2}, 11448);
  t = h.then_ok(sg::deadline_reached{1, fwd, 3}, 16448, 0.9);
  BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaCompensationStarted+SagaStepStarted"}));
  failed = only_event<sg::step_failed>(t);
  BOOST_TEST(!failed.will_retry);
  BOOST_TEST(failed.retryable);
  const auto reason =
      std::string("process_payment: timed out after 5000 ms (gave up after 3 attempts)");
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == reason);
  // Nobody knows whether the charge happened: refund first, then release, then cancel.
  send = only_send(t);
  BOOST_TEST(send.step == 1);
  BOOST_TEST((send.phase_ == comp));
  BOOST_TEST((as<pay::refund, pay::command>(send.commands[0]).idempotency_key) ==
             "s-1/process_payment/refund");
  BOOST_TEST((as<pay::refund, pay::command>(send.commands[0]).reason) == reason);
  BOOST_TEST(send.commands[0].command.aggregate_id == "pay-o-1");
  // The refund names the charge it undoes (the key the process commands carried), so a charge
  // whose answer never came back is voided at the gateway rather than left on the card.
  const auto& charge = as<pay::refund, pay::command>(send.commands[0]).charge;
  BOOST_REQUIRE(charge.has_value());
  BOOST_TEST(charge->idempotency_key == "s-1/process_payment/process");
  BOOST_TEST(charge->idempotency_key == sg::charge_key_for("s-1"));
  BOOST_TEST(charge->payment_id == "pay-o-1");
  BOOST_TEST(charge->order_id == "o-1");
  BOOST_TEST(charge->customer_id == h.s.input.customer_id);
  BOOST_TEST(charge->amount == h.s.input.total);
  BOOST_TEST(!(as<pay::refund, pay::command>(send.commands[0]).voided.has_value()));

  t = h.then_ok(sg::target_succeeded{1, comp, 1, 0}, 16500);
  send = only_send(t);
  BOOST_TEST(send.step == 0);
  BOOST_TEST(keys(send) == strings{"s-1/reserve_inventory/release"});  // one target: no suffix
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 16600);
  BOOST_TEST((only_send(t).phase_ == closing));
  t = h.then_ok(sg::target_succeeded{3, closing, 1, 0}, 16700);
  BOOST_TEST(names(t) == (strings{"SagaStepCompensated", "SagaCompensated"}));
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::compensated));
}

BOOST_AUTO_TEST_CASE(a_transient_failure_waits_for_the_other_targets_then_retries_only_the_rest) {
  harness h;
  h.then_ok(two_products(), 1000);
  auto t = h.then_ok(sg::target_failed{0, fwd, 1, 1, "inventory busy", true}, 1050);
  BOOST_TEST(names(t) == strings{"SagaStepFailed"});
  BOOST_TEST(t.actions.empty());
  t = h.then_ok(sg::target_succeeded{0, fwd, 1, 0}, 1060);
  BOOST_TEST(names(t) == (strings{"SagaStepSucceeded", "SagaStepFailed"}));
  const auto verdict = std::get<sg::step_failed>(t.events[1]);
  BOOST_TEST(verdict.reason == "inventory busy");
  BOOST_TEST(verdict.will_retry);
  t = h.then_ok(sg::retry_due{0, fwd, 1}, verdict.retry_at);
  const auto started = only_event<sg::step_started>(t);
  BOOST_TEST(started.targets == std::vector<int>{1});
  const auto send = only_send(t);
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  BOOST_TEST(send.commands[0].target == 1);
  BOOST_TEST(keys(send) == strings{"s-1/reserve_inventory/reserve/p-2"});
  t = h.then_ok(sg::target_succeeded{0, fwd, 2, 1}, 1300);
  BOOST_TEST(names(t) == strings{"SagaStepSucceeded+SagaStepStarted"});
}

BOOST_AUTO_TEST_CASE(one_product_out_of_stock_releases_only_the_reserved_one) {
  harness h;
  h.then_ok(two_products(), 1000);
  // The refusal arrives first: the step waits for the other product's answer.
  auto t = h.then_ok(sg::target_failed{0, fwd, 1, 1, "insufficient_stock", false}, 1050);
  BOOST_TEST(names(t) == strings{"SagaStepFailed"});
  BOOST_TEST(t.actions.empty());
  t = h.then_ok(sg::target_succeeded{0, fwd, 1, 0}, 1060);
  BOOST_TEST(names(t) == (strings{"SagaStepSucceeded", "SagaStepFailed",
                                  "SagaCompensationStarted+SagaStepStarted"}));
  BOOST_TEST(only_event<sg::compensation_started>(t).reason ==
             "reserve_inventory: insufficient_stock");
  const auto started = only_event<sg::step_started>(t);
  BOOST_TEST((started.phase_ == comp));
  BOOST_TEST(started.target_count == 2);
  BOOST_TEST(started.targets == std::vector<int>{0});
  const auto send = only_send(t);
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  BOOST_TEST(send.commands[0].target == 0);
  BOOST_TEST(send.commands[0].command.aggregate_id == "p-1");
  BOOST_TEST(keys(send) == strings{"s-1/reserve_inventory/release/p-1"});
  BOOST_TEST(
      (h.s.steps[0].compensation ==
       std::vector<sg::target_status>{sg::target_status::pending, sg::target_status::skipped}));

  t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1100);
  BOOST_TEST(names(t) == strings{"SagaStepCompensated+SagaStepStarted"});
  BOOST_TEST((only_send(t).phase_ == closing));
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::pending));  // never charged
}

BOOST_AUTO_TEST_CASE(a_step_deadline_with_a_refusal_compensates_the_silent_target_too) {
  harness h;
  h.then_ok(two_products(), 1000);
  h.then_ok(sg::target_failed{0, fwd, 1, 0, "insufficient_stock", false}, 1050);
  auto t = h.then_ok(sg::deadline_reached{0, fwd, 1}, 6000);
  BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaCompensationStarted+SagaStepStarted"}));
  BOOST_TEST(only_event<sg::compensation_started>(t).reason ==
             "reserve_inventory: insufficient_stock");
  const auto send = only_send(t);
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  BOOST_TEST(send.commands[0].command.aggregate_id == "p-2");  // outcome unknown → released
}

BOOST_AUTO_TEST_CASE(a_compensation_that_keeps_failing_fails_the_saga_until_retried) {
  auto h = at_payment(one_product());
  h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  const auto policy = h.def.steps[0].compensation_retry;
  timestamp now = 1300;
  for (int attempt = 1; attempt < policy.max_attempts; ++attempt) {
    auto t = h.then_ok(sg::target_failed{0, comp, attempt, 0, "inventory unavailable", true}, now);
    BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaStepFailed"}));
    const auto verdict = std::get<sg::step_failed>(t.events[1]);
    BOOST_TEST(verdict.will_retry);
    BOOST_TEST(verdict.retry_at == now + sg::backoff_delay_ms(policy, attempt, 0.5));
    now = verdict.retry_at;
    t = h.then_ok(sg::retry_due{0, comp, attempt}, now);
    BOOST_TEST(only_send(t).attempt == attempt + 1);
    BOOST_TEST(keys(only_send(t)) == strings{"s-1/reserve_inventory/release"});
  }
  auto t = h.then_ok(
      sg::target_failed{0, comp, policy.max_attempts, 0, "inventory unavailable", true}, now);
  BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaStepFailed", "SagaFailed"}));
  const auto failed = only_event<sg::saga_failed>(t);
  BOOST_TEST(failed.step == 0);
  BOOST_TEST((failed.phase_ == comp));
  BOOST_TEST(failed.reason ==
             "compensating reserve_inventory: inventory unavailable (gave up after 5 attempts)");
  BOOST_TEST((std::get<sg::finished>(t.actions.at(0)).status_ == sg::status::failed));
  BOOST_TEST((h.s.status_ == sg::status::failed));
  BOOST_TEST(h.s.failure_reason == failed.reason);
  BOOST_TEST((h.s.steps[0].status_ == sg::step_status::compensation_failed));

  // Nothing moves a FAILED saga but an operator; late replies are ignored.
  h.then_ignored(sg::target_succeeded{0, comp, policy.max_attempts, 0}, now + 1);
  h.then_ignored(sg::retry_due{0, comp, policy.max_attempts}, now + 1);
  auto rec = sg::recover(h.def, h.s, now + 2);
  BOOST_REQUIRE(rec.has_value());
  BOOST_TEST(rec->empty());

  t = h.then_ok(sg::manual_retry{}, now + 10);
  BOOST_TEST(names(t) == strings{"SagaCompensationStarted+SagaStepStarted"});
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == "process_payment: declined");
  BOOST_TEST((h.s.status_ == sg::status::compensating));
  BOOST_TEST(h.s.failure_reason.empty());
  auto send = only_send(t);
  BOOST_TEST(send.attempt == 1);  // fresh attempts
  BOOST_TEST((send.phase_ == comp));
  BOOST_TEST(keys(send) == strings{"s-1/reserve_inventory/release"});
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, now + 20);
  send = only_send(t);
  BOOST_TEST((send.phase_ == closing));
  BOOST_TEST((as<ord::cancel, ord::command>(send.commands[0]).reason) ==
             "process_payment: declined");
  t = h.then_ok(sg::target_succeeded{3, closing, 1, 0}, now + 30);
  BOOST_TEST(names(t) == (strings{"SagaStepCompensated", "SagaCompensated"}));
  BOOST_TEST((h.s.status_ == sg::status::compensated));
}

BOOST_AUTO_TEST_CASE(a_silent_compensation_is_retried_with_the_compensation_policy) {
  sg::order_processing_options options;
  options.compensation_retry = {2, 300, 2.0, 2000, 0.0};
  harness h;
  h.def = sg::order_processing(options);
  h.then_ok(one_product(), 1000);
  h.then_ok(sg::target_failed{0, fwd, 1, 0, "insufficient_stock", false}, 1100);
  // insufficient_stock means nothing was reserved: straight to the order cancel.
  BOOST_TEST((h.s.phase_ == closing));
  auto t = h.then_ok(sg::deadline_reached{3, closing, 1}, 6100);
  auto failed = only_event<sg::step_failed>(t);
  BOOST_TEST(failed.will_retry);
  BOOST_TEST(failed.retry_at == 6400);  // compensation_retry, not retry: 300 ms
  t = h.then_ok(sg::retry_due{3, closing, 1}, 6400);
  BOOST_TEST(only_send(t).attempt == 2);
  BOOST_TEST(sg::at_of(only_send(t).commands[0].command.command) == 1100);
  t = h.then_ok(sg::deadline_reached{3, closing, 2}, 11400);
  BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaFailed"}));
  BOOST_TEST(only_event<sg::saga_failed>(t).reason ==
             "on_compensated: timed out after 5000 ms (gave up after 2 attempts)");
  BOOST_TEST(!sg::is_active(h.s.status_));
}

BOOST_AUTO_TEST_CASE(a_compensation_refused_for_good_fails_the_saga_at_once) {
  auto h = at_payment(one_product());
  h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  auto t = h.then_ok(sg::target_failed{0, comp, 1, 0, "unknown_product", false}, 1300);
  BOOST_TEST(names(t) == (strings{"SagaStepFailed", "SagaStepFailed", "SagaFailed"}));
  BOOST_TEST(only_event<sg::saga_failed>(t).reason ==
             "compensating reserve_inventory: unknown_product");
  // An operator can also resume with manual_compensate; it keeps the original reason.
  t = h.then_ok(sg::manual_compensate{"operator"}, 1400);
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == "process_payment: declined");
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/reserve_inventory/release"});
}

BOOST_AUTO_TEST_CASE(a_failing_order_cancel_fails_the_saga_and_a_retry_resends_only_it) {
  auto h = at_payment(one_product());
  h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1300);
  auto t = h.then_ok(sg::target_failed{3, closing, 1, 0, "not_found", false}, 1400);
  BOOST_TEST(only_event<sg::saga_failed>(t).reason == "on_compensated: not_found");
  t = h.then_ok(sg::cancel_requested{"customer"}, 1500);
  BOOST_TEST(names(t) == strings{"SagaCompensationStarted+SagaStepStarted"});
  const auto send = only_send(t);
  BOOST_TEST((send.phase_ == closing));  // the release is not sent again
  BOOST_TEST(keys(send) == strings{"s-1/on_compensated/cancel"});
}

BOOST_AUTO_TEST_CASE(stale_and_late_replies_are_ignored) {
  auto h = at_payment();
  h.then_ignored(sg::target_succeeded{0, fwd, 1, 0}, 1150);   // reserve answered twice
  h.then_ignored(sg::target_succeeded{2, fwd, 1, 0}, 1150);   // a step not started
  h.then_ignored(sg::target_succeeded{1, fwd, 2, 0}, 1150);   // an attempt not started
  h.then_ignored(sg::target_succeeded{1, comp, 1, 0}, 1150);  // the wrong phase
  h.then_ignored(sg::target_succeeded{1, fwd, 1, 5}, 1150);   // no such target
  h.then_ignored(sg::target_failed{1, fwd, 1, -1, "x", false}, 1150);
  h.then_ignored(sg::retry_due{1, fwd, 1}, 1150);         // no retry pending
  h.then_ignored(sg::deadline_reached{0, fwd, 1}, 6000);  // a finished step's deadline

  h.then_ok(sg::deadline_reached{1, fwd, 1}, 6100);
  // The reply to attempt 1 arrives after its deadline: the retry will ask again.
  h.then_ignored(sg::target_succeeded{1, fwd, 1, 0}, 6105);
  h.then_ignored(sg::deadline_reached{1, fwd, 1}, 6106);
  h.then_ok(sg::retry_due{1, fwd, 1}, 6300);
  h.then_ignored(sg::target_failed{1, fwd, 1, 0, "late", true}, 6301);
  h.then_ignored(sg::retry_due{1, fwd, 1}, 6302);  // the timer fired twice
  auto t = h.then_ok(sg::target_succeeded{1, fwd, 2, 0}, 6400);
  BOOST_TEST(names(t) == strings{"SagaStepSucceeded+SagaStepStarted"});

  // A late forward reply during compensation changes nothing.
  h.then_ok(sg::cancel_requested{"changed my mind"}, 6500);
  h.then_ignored(sg::target_succeeded{2, fwd, 1, 0}, 6600);
}

BOOST_AUTO_TEST_CASE(recover_resends_the_unanswered_targets_with_the_durable_deadline) {
  harness h;
  const auto first = only_send(h.then_ok(two_products(), 1000));
  h.then_ok(sg::target_succeeded{0, fwd, 1, 0}, 1100);

  // Restart: the state comes back from the journal (through the codec) alone.
  sg::state replayed;
  for (const auto& e : h.history) {
    const auto decoded = saga::domain::decode_saga_event(saga::domain::encode(e));
    BOOST_REQUIRE(decoded.has_value());
    replayed = sg::evolve(replayed, decoded.value());
  }
  BOOST_TEST((replayed == h.s));

  auto actions = sg::recover(h.def, replayed, 3000);
  BOOST_REQUIRE(actions.has_value());
  BOOST_REQUIRE_EQUAL(actions->size(), 2u);
  const auto& send = std::get<sg::send_commands>(actions->at(0));
  BOOST_TEST(send.step == 0);
  BOOST_TEST(send.attempt == 1);
  BOOST_TEST(send.deadline_at == 6000);  // not 3000 + timeout: the deadline is durable
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  BOOST_TEST(send.commands[0].target == 1);
  const auto& again = as<inv::reserve, inv::command>(send.commands[0]);
  const auto& before = as<inv::reserve, inv::command>(first.commands[1]);
  BOOST_TEST(again.idempotency_key == before.idempotency_key);
  BOOST_TEST(again.at == before.at);
  BOOST_TEST(again.quantity == before.quantity);
  const auto& timer = std::get<sg::arm_timer>(actions->at(1));
  BOOST_TEST((timer.kind == sg::timer_kind::deadline));
  BOOST_TEST(timer.at == 6000);

  // Past the deadline nothing is re-sent: the timer fires at once and decides.
  actions = sg::recover(h.def, replayed, 7000);
  BOOST_REQUIRE(actions.has_value());
  BOOST_REQUIRE_EQUAL(actions->size(), 1u);
  BOOST_TEST(std::get<sg::arm_timer>(actions->at(0)).at == 6000);

  // The recovered saga answers like the original.
  h.s = replayed;
  auto t = h.then_ok(sg::target_succeeded{0, fwd, 1, 1}, 3100);
  BOOST_TEST(names(t) == strings{"SagaStepSucceeded+SagaStepStarted"});
}

BOOST_AUTO_TEST_CASE(recover_rearms_a_pending_retry_timer) {
  auto h = at_payment();
  const auto failed =
      only_event<sg::step_failed>(h.then_ok(sg::deadline_reached{1, fwd, 1}, 6100, 0.1));
  const auto snapshot = saga::domain::decode_saga_state(saga::domain::encode_state(h.s));
  BOOST_REQUIRE(snapshot.has_value());
  auto actions = sg::recover(h.def, snapshot.value(), 6105);
  BOOST_REQUIRE(actions.has_value());
  BOOST_REQUIRE_EQUAL(actions->size(), 1u);
  const auto& timer = std::get<sg::arm_timer>(actions->at(0));
  BOOST_TEST((timer.kind == sg::timer_kind::retry));
  BOOST_TEST(timer.at == failed.retry_at);
  BOOST_TEST(timer.step == 1);
  BOOST_TEST(timer.attempt == 1);
}

BOOST_AUTO_TEST_CASE(recover_resumes_a_compensation_in_flight) {
  auto h = at_payment();
  const auto t = h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  const auto original = only_send(t);
  h.then_ok(sg::target_succeeded{0, comp, 1, 1}, 1250);
  auto actions = sg::recover(h.def, h.s, 1300);
  BOOST_REQUIRE(actions.has_value());
  const auto& send = std::get<sg::send_commands>(actions->at(0));
  BOOST_TEST((send.phase_ == comp));
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  BOOST_TEST(send.commands[0].target == 0);
  BOOST_TEST(sg::idempotency_key_of(send.commands[0].command.command) ==
             sg::idempotency_key_of(original.commands[0].command.command));
  BOOST_TEST((as<inv::release, inv::command>(send.commands[0]).reason) ==
             "process_payment: declined");
  BOOST_TEST(send.deadline_at == original.deadline_at);

  auto done = completed();
  actions = sg::recover(done.def, done.s, 9999);
  BOOST_REQUIRE(actions.has_value());
  BOOST_TEST(actions->empty());
}

BOOST_AUTO_TEST_CASE(cancelling_a_completed_saga_refunds_releases_and_cancels) {
  auto h = completed();
  auto t = h.then_ok(sg::cancel_requested{"customer cancelled"}, 2000);
  BOOST_TEST(names(t) == strings{"SagaCompensationStarted+SagaStepStarted"});
  auto send = only_send(t);
  BOOST_TEST(send.step == 1);  // confirm_order has nothing to undo
  BOOST_TEST(keys(send) == strings{"s-1/process_payment/refund"});
  BOOST_TEST((as<pay::refund, pay::command>(send.commands[0]).reason) == "customer cancelled");
  BOOST_TEST((as<pay::refund, pay::command>(send.commands[0]).at) == 2000);

  t = h.then_ok(sg::target_succeeded{1, comp, 1, 0}, 2100);
  send = only_send(t);
  BOOST_TEST(send.step == 0);
  BOOST_TEST(keys(send) ==
             (strings{"s-1/reserve_inventory/release/p-1", "s-1/reserve_inventory/release/p-2"}));
  h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 2200);
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 1}, 2210);
  send = only_send(t);
  BOOST_TEST((as<ord::cancel, ord::command>(send.commands[0]).reason) == "customer cancelled");
  t = h.then_ok(sg::target_succeeded{3, closing, 1, 0}, 2300);
  BOOST_TEST(names(t) == (strings{"SagaStepCompensated", "SagaCompensated"}));
  BOOST_TEST((h.s.steps[2].status_ == sg::step_status::succeeded));
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::compensated));
  BOOST_TEST((h.s.steps[0].status_ == sg::step_status::compensated));
}

BOOST_AUTO_TEST_CASE(manual_compensation_of_a_running_saga_undoes_the_step_in_flight) {
  auto h = at_payment(one_product());
  auto t = h.then_ok(sg::manual_compensate{}, 1500);
  BOOST_TEST(names(t) == strings{"SagaCompensationStarted+SagaStepStarted"});
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == "manual compensation");
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::compensating));
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/process_payment/refund"});  // may have charged
  // The charge's own deadline no longer matters.
  h.then_ignored(sg::deadline_reached{1, fwd, 1}, 6100);
}

BOOST_AUTO_TEST_CASE(manual_compensation_while_a_retry_waits_cancels_the_retry) {
  harness h;
  h.then_ok(one_product(), 1000);
  h.then_ok(sg::target_failed{0, fwd, 1, 0, "busy", true}, 1050);
  BOOST_TEST(h.s.awaiting_retry);
  auto t = h.then_ok(sg::cancel_requested{}, 1060);
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == "cancelled");
  BOOST_TEST(!h.s.awaiting_retry);
  // The payment step is in doubt (its charge may have gone out early from a lost transition),
  // so it is voided first; then the reservation is released.
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::compensating));
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/process_payment/refund"});
  h.then_ignored(sg::retry_due{0, fwd, 1}, 1200);
  t = h.then_ok(sg::target_succeeded{1, comp, 1, 0}, 1300);
  BOOST_TEST((h.s.steps[0].status_ == sg::step_status::compensating));
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/reserve_inventory/release"});
}

BOOST_AUTO_TEST_CASE(only_a_step_after_a_success_may_be_sent_before_the_commit) {
  harness h;
  auto t = h.then_ok(one_product(), 1000);
  BOOST_TEST(!only_send(t).before_commit);  // the saga must exist before its first command
  t = h.then_ok(sg::target_succeeded{0, fwd, 1, 0}, 1100);
  BOOST_TEST(only_send(t).before_commit);
  BOOST_TEST(only_send(t).step == 1);
  // A retry, a compensation and the closing cancel wait for their commit.
  t = h.then_ok(sg::target_failed{1, fwd, 1, 0, "busy", true}, 1200);
  BOOST_TEST(actions_of<sg::send_commands>(t).empty());
  t = h.then_ok(sg::retry_due{1, fwd, 1}, 1400);
  BOOST_TEST(!only_send(t).before_commit);
  t = h.then_ok(sg::target_succeeded{1, fwd, 2, 0}, 1500);
  BOOST_TEST(only_send(t).before_commit);
  BOOST_TEST(only_send(t).step == 2);
  t = h.then_ok(sg::cancel_requested{}, 1600);
  BOOST_TEST(!only_send(t).before_commit);
}

/// The first transition of a one-product saga, started anchored or not.
std::pair<sg::send_commands, sg::state> first_send(bool anchored) {
  harness h;
  auto st = one_product();
  st.anchored = anchored;
  const auto t = h.then_ok(st, 1000);
  return {only_send(t), h.s};
}

BOOST_AUTO_TEST_CASE(an_anchored_start_sends_its_first_step_before_the_commit) {
  // An order anchors its saga (recovery and cancels start it again), so the reservation may go
  // out with SagaStarted; a start that nothing would repeat waits for its commit.
  const auto [anchored, anchored_state] = first_send(true);
  const auto [plain, plain_state] = first_send(false);
  BOOST_TEST(anchored.step == 0);
  BOOST_TEST(anchored.before_commit);
  BOOST_TEST(!plain.before_commit);
  // Either way the same commands, keys and events.
  BOOST_TEST(keys(anchored) == strings{"s-1/reserve_inventory/reserve"});
  BOOST_TEST(keys(plain) == keys(anchored));
  BOOST_TEST((anchored_state == plain_state));
}

BOOST_AUTO_TEST_CASE(compensation_steps_after_the_first_may_be_sent_before_the_commit) {
  // Once the journal records the compensation, the next compensation step (and the closing
  // cancel) goes out with the transition that finishes the previous one.
  auto h = completed();
  auto t = h.then_ok(sg::cancel_requested{"customer cancelled"}, 2000);
  BOOST_TEST(!only_send(t).before_commit);  // lost, the saga would still be COMPLETED
  t = h.then_ok(sg::target_succeeded{1, comp, 1, 0}, 2100);
  BOOST_TEST(only_send(t).step == 0);
  BOOST_TEST(only_send(t).before_commit);
  h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 2200);
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 1}, 2210);
  BOOST_TEST((only_send(t).phase_ == closing));
  BOOST_TEST(only_send(t).before_commit);

  // A refusal starts the compensation: its first step still waits for the commit (a re-sent
  // step is not always refused again), the closing cancel does not.
  auto d = at_payment(one_product());
  t = d.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  BOOST_TEST(only_send(t).step == 0);
  BOOST_TEST(!only_send(t).before_commit);
  t = d.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1300);
  BOOST_TEST((only_send(t).phase_ == closing));
  BOOST_TEST(only_send(t).before_commit);

  // Retries of a compensation step wait for their commit, like forward retries.
  auto r = at_payment(one_product());
  r.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  t = r.then_ok(sg::target_failed{0, comp, 1, 0, "busy", true}, 1300);
  BOOST_TEST(actions_of<sg::send_commands>(t).empty());
  t = r.then_ok(sg::retry_due{0, comp, 1}, 1500);
  BOOST_TEST(!only_send(t).before_commit);
}

BOOST_AUTO_TEST_CASE(a_lost_compensation_transition_repeats_the_compensation_harmlessly) {
  // The release's success and the early cancel's start are lost: the journal still shows the
  // release running. Recovery re-sends the release (answered "nothing left" or replayed),
  // then sends the cancel again with the same key.
  auto h = at_payment(one_product());
  h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  const auto journal = h.s;
  auto t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1300);
  const auto early_keys = keys(only_send(t));
  h.s = journal;  // the transition never reached the journal
  auto resumed = sg::recover(h.def, h.s, 1400);
  BOOST_REQUIRE(resumed.has_value());
  auto sends = std::vector<sg::send_commands>{};
  for (const auto& a : *resumed)
    if (const auto* x = std::get_if<sg::send_commands>(&a)) sends.push_back(*x);
  BOOST_REQUIRE_EQUAL(sends.size(), 1u);
  BOOST_TEST(keys(sends[0]) == strings{"s-1/reserve_inventory/release"});
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1500);
  BOOST_TEST(keys(only_send(t)) == early_keys);
  h.then_ok(sg::target_succeeded{3, closing, 1, 0}, 1600);
  BOOST_TEST((h.s.status_ == sg::status::compensated));
}

BOOST_AUTO_TEST_CASE(a_step_in_doubt_is_undone) {
  // The journal says: reservation sent, no answer recorded. The payment step may have been
  // sent early by a transition that was lost, so compensation voids the charge by its key.
  harness h;
  h.then_ok(one_product(), 1000);
  auto t = h.then_ok(sg::manual_compensate{"stop"}, 1050);
  BOOST_TEST(names(t) == strings{"SagaCompensationStarted+SagaStepStarted"});
  const auto send = only_send(t);
  BOOST_TEST(send.step == 1);
  BOOST_TEST(send.phase_ == comp);
  BOOST_TEST(keys(send) == strings{"s-1/process_payment/refund"});
  const auto& refund = as<pay::refund, pay::command>(send.commands[0]);
  BOOST_REQUIRE(refund.charge.has_value());
  BOOST_TEST(refund.charge->idempotency_key == "s-1/process_payment/process");
  BOOST_TEST(h.s.steps[1].forward.empty());  // never started forward
  t = h.then_ok(sg::target_succeeded{1, comp, 1, 0}, 1100);
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/reserve_inventory/release"});
  t = h.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1150);
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/on_compensated/cancel"});
  h.then_ok(sg::target_succeeded{3, closing, 1, 0}, 1200);
  BOOST_TEST((h.s.status_ == sg::status::compensated));
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::compensated));
}

BOOST_AUTO_TEST_CASE(a_step_after_a_refusal_is_not_in_doubt) {
  // A refusal is final: the reservation never succeeded, so the payment was never sent.
  harness h;
  h.then_ok(one_product(), 1000);
  auto t = h.then_ok(sg::target_failed{0, fwd, 1, 0, "out of stock", false}, 1050);
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/on_compensated/cancel"});
  BOOST_TEST((h.s.steps[1].status_ == sg::step_status::pending));
}

BOOST_AUTO_TEST_CASE(a_step_without_compensation_is_skipped_even_in_doubt) {
  // Confirming has no compensation: a saga stopped during the payment only refunds and releases.
  auto h = at_payment(one_product());
  auto t = h.then_ok(sg::manual_compensate{}, 1500);
  BOOST_TEST(keys(only_send(t)) == strings{"s-1/process_payment/refund"});
  BOOST_TEST((h.s.steps[2].status_ == sg::step_status::pending));
}

BOOST_AUTO_TEST_CASE(folded_and_separate_step_starts_replay_to_the_same_state) {
  // Journals written before folding hold SagaStepStarted on its own; they replay as before.
  auto h = completed();
  sg::state folded;
  sg::state separate;
  std::size_t starts = 0;
  for (const auto& e : h.history) {
    folded = sg::evolve(folded, e);
    sg::event plain = e;
    std::optional<sg::step_started> next;
    std::visit(
        [&](auto& ev) {
          using E = std::decay_t<decltype(ev)>;
          if constexpr (std::is_same_v<E, sg::saga_started> ||
                        std::is_same_v<E, sg::step_succeeded> ||
                        std::is_same_v<E, sg::step_compensated> ||
                        std::is_same_v<E, sg::compensation_started>) {
            next = std::move(ev.next);
            ev.next.reset();
          }
        },
        plain);
    separate = sg::evolve(separate, plain);
    if (next) {
      separate = sg::evolve(separate, *next);
      ++starts;
    }
  }
  BOOST_TEST(starts == 3u);            // every step's start was folded
  BOOST_TEST(h.history.size() == 6u);  // 9 before folding
  BOOST_TEST(separate.version == folded.version + 3);
  separate.version = folded.version;
  BOOST_TEST((separate == folded));
  BOOST_TEST((folded == h.s));
}

BOOST_AUTO_TEST_CASE(invalid_manual_operations_are_rejected) {
  harness fresh;
  fresh.then_rejected(sg::manual_retry{}, 10, rejection_code::invalid_state);
  fresh.then_rejected(sg::manual_compensate{}, 10, rejection_code::invalid_state);
  fresh.then_rejected(sg::cancel_requested{}, 10, rejection_code::invalid_state);
  fresh.then_ignored(sg::target_succeeded{0, fwd, 1, 0}, 10);

  auto running = at_payment();
  running.then_rejected(sg::manual_retry{}, 1200, rejection_code::invalid_state);
  running.then_rejected(two_products(), 1200, rejection_code::invalid_state);

  auto done = completed();
  done.then_rejected(sg::manual_compensate{"no"}, 2000, rejection_code::invalid_state);
  done.then_rejected(sg::manual_retry{}, 2000, rejection_code::invalid_state);

  auto compensating = at_payment();
  compensating.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
  compensating.then_rejected(sg::manual_retry{}, 1300, rejection_code::invalid_state);
  compensating.then_rejected(sg::manual_compensate{}, 1300, rejection_code::invalid_state);
  compensating.then_rejected(sg::cancel_requested{}, 1300, rejection_code::invalid_state);

  compensating.then_ok(sg::target_succeeded{0, comp, 1, 0}, 1400);
  compensating.then_ok(sg::target_succeeded{0, comp, 1, 1}, 1400);
  compensating.then_ok(sg::target_succeeded{3, closing, 1, 0}, 1500);
  BOOST_REQUIRE(compensating.s.status_ == sg::status::compensated);
  compensating.then_rejected(sg::manual_retry{}, 1600, rejection_code::invalid_state);
  compensating.then_rejected(sg::manual_compensate{}, 1600, rejection_code::invalid_state);
  compensating.then_rejected(sg::cancel_requested{}, 1600, rejection_code::invalid_state);
  compensating.then_rejected(two_products(), 1600, rejection_code::invalid_state);
  const auto res = compensating.when(sg::manual_retry{}, 1600);
  BOOST_TEST(res.error().message.find("COMPENSATED") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_same_saga_yields_the_same_keys_on_every_run) {
  std::vector<std::string> first_run, second_run;
  for (auto* out : {&first_run, &second_run}) {
    auto h = at_payment();
    auto t = h.then_ok(sg::target_failed{1, fwd, 1, 0, "declined", false}, 1200);
    for (const auto& k : keys(only_send(t))) out->push_back(k);
  }
  BOOST_TEST(first_run == second_run);
  for (const auto& k : first_run) BOOST_TEST(k.rfind("s-1/reserve_inventory/release/", 0) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

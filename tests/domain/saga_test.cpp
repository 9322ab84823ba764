// The saga state machine on definitions written here, not in domain/: retry backoff,
// idempotency keys, the catalog, and a second definition ("QuickCheckout") driven through the
// same decide/evolve with no runtime code of its own — definitions are data.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

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
using saga::domain::rejection_code;
using saga::domain::timestamp;

namespace {

/// Given events → when input → then events / actions / rejection.
struct harness {
  sg::saga_definition def;
  sg::state s;

  saga::domain::result<sg::transition> when(const sg::input& in, timestamp now,
                                            double random01 = 0.5) {
    auto res = sg::decide(def, s, in, now, random01);
    if (res)
      for (const auto& e : res->events) s = sg::evolve(s, e);
    return res;
  }
  sg::transition then_ok(const sg::input& in, timestamp now, double random01 = 0.5) {
    auto res = when(in, now, random01);
    BOOST_REQUIRE_MESSAGE(res.has_value(), (res ? "" : res.error().message));
    return std::move(res).value();
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

/// Process payment → confirm order; on_compensated cancels the order. A definition the
/// engine has never seen, built from the same command structs.
sg::saga_definition quick_checkout() {
  sg::saga_definition def;
  def.type = "QuickCheckout";
  sg::step_definition pay;
  pay.name = "charge";
  pay.action = [](const sg::saga_context& ctx) {
    return std::vector<sg::step_command>{{sg::aggregate_kind::payment, "qc-" + ctx.input.order_id,
                                          saga::domain::payment::process{"qc-" + ctx.input.order_id,
                                                                         ctx.input.order_id,
                                                                         ctx.input.customer_id,
                                                                         ctx.input.total,
                                                                         0,
                                                                         {},
                                                                         {}}}};
  };
  pay.compensation = [](const sg::saga_context& ctx) {
    return std::vector<sg::step_command>{{sg::aggregate_kind::payment, "qc-" + ctx.input.order_id,
                                          saga::domain::payment::refund{ctx.reason, 0, {}, {}}}};
  };
  pay.timeout_ms = 1000;
  pay.retry = {2, 50, 2.0, 500, 0.0};
  pay.compensation_retry = {2, 50, 2.0, 500, 0.0};
  sg::step_definition confirm;
  confirm.name = "confirm";
  confirm.action = [](const sg::saga_context& ctx) {
    return std::vector<sg::step_command>{
        {sg::aggregate_kind::order, ctx.input.order_id, saga::domain::order::confirm{0, {}}}};
  };
  confirm.timeout_ms = 1000;
  def.steps = {pay, confirm};
  def.on_compensated = [](const sg::saga_context& ctx) {
    return std::vector<sg::step_command>{{sg::aggregate_kind::order, ctx.input.order_id,
                                          saga::domain::order::cancel{ctx.reason, 0, {}}}};
  };
  def.on_compensated_timeout_ms = 1000;
  def.on_compensated_retry = {3, 10, 1.0, 10, 0.0};
  return def;
}

sg::start quick_start() {
  sg::start st;
  st.saga_id = "qc-saga";
  st.correlation_id = "corr-9";
  st.input.order_id = "o-9";
  st.input.customer_id = "c-9";
  st.input.total = 4200;
  return st;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(saga_backoff)

BOOST_AUTO_TEST_CASE(without_jitter_the_delay_grows_geometrically_up_to_the_cap) {
  const sg::retry_policy p{10, 100, 2.0, 2000, 0.0};
  const std::vector<std::int64_t> expected{100, 200, 400, 800, 1600, 2000, 2000, 2000};
  for (std::size_t i = 0; i < expected.size(); ++i)
    BOOST_TEST(sg::backoff_delay_ms(p, static_cast<int>(i) + 1, 0.73) == expected[i]);
}

BOOST_AUTO_TEST_CASE(jitter_spreads_the_delay_symmetrically_around_the_base) {
  const sg::retry_policy p{3, 100, 2.0, 2000, 0.2};
  BOOST_TEST(sg::backoff_delay_ms(p, 1, 0.0) == 80);    // base·(1 − 0.2)
  BOOST_TEST(sg::backoff_delay_ms(p, 1, 0.5) == 100);   // base
  BOOST_TEST(sg::backoff_delay_ms(p, 2, 0.9) == 232);   // 200·(1 + 0.2·0.8)
  BOOST_TEST(sg::backoff_delay_ms(p, 3, 0.25) == 360);  // 400·(1 − 0.2·0.5)
}

BOOST_AUTO_TEST_CASE(delays_stay_within_bounds_for_any_attempt_and_sample) {
  const std::vector<sg::retry_policy> policies{
      {3, 100, 2.0, 2000, 0.2}, {5, 1, 10.0, 1'000'000, 1.0}, {9, 500, 1.5, 600, 0.5},
      {2, 0, 2.0, 100, 0.3},    {4, 7000, 3.0, 5000, 0.1},    {3, 1, 1e300, INT64_MAX, 0.9}};
  for (const auto& p : policies) {
    for (int attempt = 1; attempt <= 200; ++attempt) {
      const double base =
          std::min(static_cast<double>(p.max_backoff_ms),
                   static_cast<double>(p.initial_backoff_ms) * std::pow(p.multiplier, attempt - 1));
      for (int k = 0; k < 100; ++k) {
        const double r = k / 100.0;
        const auto d = sg::backoff_delay_ms(p, attempt, r);
        BOOST_TEST_REQUIRE(d >= 0);
        BOOST_TEST_REQUIRE(d <= p.max_backoff_ms);
        BOOST_TEST_REQUIRE(static_cast<double>(d) >= std::floor(base * (1.0 - p.jitter)) - 1.0);
        BOOST_TEST_REQUIRE(static_cast<double>(d) <= std::ceil(base * (1.0 + p.jitter)) + 1.0);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(out_of_range_inputs_are_clamped_not_trusted) {
  const sg::retry_policy p{3, 100, 2.0, 2000, 0.2};
  BOOST_TEST(sg::backoff_delay_ms(p, 0, 0.5) == 100);  // attempt < 1 → 1
  BOOST_TEST(sg::backoff_delay_ms(p, -7, 0.5) == 100);
  BOOST_TEST(sg::backoff_delay_ms(p, 1, 5.0) == 120);  // sample clamped to 1
  BOOST_TEST(sg::backoff_delay_ms(p, 1, -3.0) == 80);  // sample clamped to 0
  BOOST_TEST(sg::backoff_delay_ms(p, 1, std::nan("")) == 80);
  BOOST_TEST(sg::backoff_delay_ms({3, -100, 2.0, 2000, 0.2}, 2, 0.5) == 0);
  BOOST_TEST(sg::backoff_delay_ms({3, 100, 2.0, -5, 0.2}, 2, 0.5) == 0);
  BOOST_TEST(sg::backoff_delay_ms({3, 100, 0.5, 2000, 0.0}, 3, 0.5) == 100);  // multiplier < 1 → 1
  BOOST_TEST(sg::backoff_delay_ms({3, 100, 2.0, 2000, 7.0}, 1, 0.0) == 0);    // jitter → 1
  BOOST_TEST(sg::backoff_delay_ms({3, 100, 2.0, 2000, 7.0}, 1, 0.99) == 198);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(saga_definitions)

BOOST_AUTO_TEST_CASE(idempotency_keys_are_saga_step_action_plus_target_when_several) {
  BOOST_TEST(sg::make_idempotency_key("s-1", "process_payment", "process", "pay-o-1", false) ==
             "s-1/process_payment/process");
  BOOST_TEST(sg::make_idempotency_key("s-1", "reserve_inventory", "reserve", "p-2", true) ==
             "s-1/reserve_inventory/reserve/p-2");
}

BOOST_AUTO_TEST_CASE(command_names_follow_the_command_alternative) {
  namespace inv = saga::domain::inventory;
  BOOST_TEST(sg::command_name(inv::command{inv::reserve{}}) == "reserve");
  BOOST_TEST(sg::command_name(inv::command{inv::release{}}) == "release");
  BOOST_TEST(sg::command_name(saga::domain::payment::command{saga::domain::payment::refund{}}) ==
             "refund");
  BOOST_TEST(sg::command_name(saga::domain::order::command{saga::domain::order::cancel{}}) ==
             "cancel");
}

BOOST_AUTO_TEST_CASE(the_catalog_finds_definitions_by_type_and_refuses_duplicates) {
  sg::saga_catalog catalog;
  BOOST_TEST(catalog.add(quick_checkout()));
  BOOST_TEST(!catalog.add(quick_checkout()));
  auto nameless = quick_checkout();
  nameless.type.clear();
  BOOST_TEST(!catalog.add(nameless));
  const auto* found = catalog.find("QuickCheckout");
  BOOST_REQUIRE(found != nullptr);
  BOOST_TEST(found->steps.size() == 2u);
  BOOST_TEST(catalog.find("OrderProcessing") == nullptr);
  BOOST_TEST(catalog.types() == std::vector<std::string>{"QuickCheckout"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(saga_second_definition)

BOOST_AUTO_TEST_CASE(quick_checkout_runs_to_completion_on_the_same_engine) {
  harness h{quick_checkout(), {}};
  auto t = h.then_ok(quick_start(), 100);
  BOOST_TEST(names(t) == std::vector<std::string>{"SagaStarted+SagaStepStarted"});
  const auto started = only_event<sg::saga_started>(t);
  BOOST_TEST(started.saga_type == "QuickCheckout");
  BOOST_TEST(started.steps == (std::vector<std::string>{"charge", "confirm"}));
  auto send = only_send(t);
  BOOST_REQUIRE_EQUAL(send.commands.size(), 1u);
  const auto& cmd = send.commands[0].command;
  BOOST_TEST(cmd.aggregate_id == "qc-o-9");
  const auto& process = std::get<saga::domain::payment::process>(
      std::get<saga::domain::payment::command>(cmd.command));
  BOOST_TEST(process.amount == 4200);
  BOOST_TEST(process.idempotency_key == "qc-saga/charge/process");
  BOOST_TEST(process.at == 100);  // stamped by the engine, the definition left 0
  BOOST_TEST(send.deadline_at == 1100);

  t = h.then_ok(sg::target_succeeded{0, sg::phase::forward, 1, 0}, 150);
  BOOST_TEST(names(t) == std::vector<std::string>{"SagaStepSucceeded+SagaStepStarted"});
  send = only_send(t);
  BOOST_TEST(sg::idempotency_key_of(send.commands[0].command.command) == "qc-saga/confirm/confirm");
  t = h.then_ok(sg::target_succeeded{1, sg::phase::forward, 1, 0}, 160);
  BOOST_TEST(names(t) == (std::vector<std::string>{"SagaStepSucceeded", "SagaCompleted"}));
  BOOST_REQUIRE_EQUAL(actions_of<sg::finished>(t).size(), 1u);
  BOOST_TEST(actions_of<sg::finished>(t)[0].status_ == sg::status::completed);
  BOOST_TEST(h.s.status_ == sg::status::completed);
}

BOOST_AUTO_TEST_CASE(quick_checkout_failing_to_confirm_refunds_then_cancels) {
  harness h{quick_checkout(), {}};
  h.then_ok(quick_start(), 100);
  h.then_ok(sg::target_succeeded{0, sg::phase::forward, 1, 0}, 150);
  auto t =
      h.then_ok(sg::target_failed{1, sg::phase::forward, 1, 0, "already_cancelled", false}, 170);
  BOOST_TEST(names(t) == (std::vector<std::string>{"SagaStepFailed", "SagaStepFailed",
                                                   "SagaCompensationStarted+SagaStepStarted"}));
  BOOST_TEST(only_event<sg::compensation_started>(t).reason == "confirm: already_cancelled");
  auto send = only_send(t);
  BOOST_TEST(send.step == 0);
  BOOST_TEST(send.phase_ == sg::phase::compensation);
  const auto& refund = std::get<saga::domain::payment::refund>(
      std::get<saga::domain::payment::command>(send.commands[0].command.command));
  BOOST_TEST(refund.reason == "confirm: already_cancelled");
  BOOST_TEST(refund.idempotency_key == "qc-saga/charge/refund");

  t = h.then_ok(sg::target_succeeded{0, sg::phase::compensation, 1, 0}, 180);
  BOOST_TEST(names(t) == std::vector<std::string>{"SagaStepCompensated+SagaStepStarted"});
  send = only_send(t);
  BOOST_TEST(send.phase_ == sg::phase::on_compensated);
  BOOST_TEST(send.step == 2);
  BOOST_TEST(sg::idempotency_key_of(send.commands[0].command.command) ==
             "qc-saga/on_compensated/cancel");
  t = h.then_ok(sg::target_succeeded{2, sg::phase::on_compensated, 1, 0}, 190);
  BOOST_TEST(names(t) == (std::vector<std::string>{"SagaStepCompensated", "SagaCompensated"}));
  BOOST_TEST(h.s.status_ == sg::status::compensated);
  BOOST_TEST(h.s.steps[0].status_ == sg::step_status::compensated);
  BOOST_TEST(h.s.steps[1].status_ == sg::step_status::failed);
}

BOOST_AUTO_TEST_CASE(a_declined_first_step_has_nothing_to_undo_and_only_cancels) {
  harness h{quick_checkout(), {}};
  h.then_ok(quick_start(), 100);
  auto t = h.then_ok(sg::target_failed{0, sg::phase::forward, 1, 0, "declined", false}, 120);
  BOOST_TEST(names(t) == (std::vector<std::string>{"SagaStepFailed", "SagaStepFailed",
                                                   "SagaCompensationStarted+SagaStepStarted"}));
  const auto send = only_send(t);
  BOOST_TEST(send.phase_ == sg::phase::on_compensated);
  const auto& cancel = std::get<saga::domain::order::cancel>(
      std::get<saga::domain::order::command>(send.commands[0].command.command));
  BOOST_TEST(cancel.reason == "charge: declined");
}

BOOST_AUTO_TEST_CASE(a_single_attempt_policy_gives_up_on_the_first_transient_failure) {
  auto def = quick_checkout();
  def.steps[0].retry.max_attempts = 1;
  harness h{def, {}};
  h.then_ok(quick_start(), 100);
  auto t =
      h.then_ok(sg::target_failed{0, sg::phase::forward, 1, 0, "gateway unavailable", true}, 120);
  const auto verdict = std::get<sg::step_failed>(t.events[1]);
  BOOST_TEST(verdict.target == -1);
  BOOST_TEST(verdict.retryable);
  BOOST_TEST(!verdict.will_retry);
  // The charge may have happened: it is refunded before the cancel.
  BOOST_TEST(only_event<sg::compensation_started>(t).reason ==
             "charge: gateway unavailable (gave up after 1 attempt)");
  BOOST_TEST(only_send(t).phase_ == sg::phase::compensation);
}

BOOST_AUTO_TEST_CASE(a_step_without_commands_succeeds_at_once) {
  auto def = quick_checkout();
  sg::step_definition noop;
  noop.name = "nothing_to_do";
  noop.action = [](const sg::saga_context&) { return std::vector<sg::step_command>{}; };
  def.steps.insert(def.steps.begin(), noop);
  harness h{def, {}};
  auto t = h.then_ok(quick_start(), 100);
  BOOST_TEST(names(t) == (std::vector<std::string>{"SagaStarted+SagaStepStarted",
                                                   "SagaStepSucceeded+SagaStepStarted"}));
  BOOST_TEST(only_send(t).step == 1);
  BOOST_TEST(h.s.steps[0].status_ == sg::step_status::succeeded);
}

BOOST_AUTO_TEST_CASE(a_definition_that_does_not_match_the_state_is_refused) {
  harness h{quick_checkout(), {}};
  h.then_ok(quick_start(), 100);
  auto other = quick_checkout();
  other.steps.pop_back();
  auto res = sg::decide(other, h.s, sg::target_succeeded{0, sg::phase::forward, 1, 0}, 110, 0.5);
  BOOST_REQUIRE(!res);
  BOOST_TEST((res.error().code == rejection_code::invalid_state));
  auto rec = sg::recover(other, h.s, 110);
  BOOST_REQUIRE(!rec);
  BOOST_TEST((rec.error().code == rejection_code::invalid_state));
}

BOOST_AUTO_TEST_CASE(start_validates_its_input) {
  harness h{quick_checkout(), {}};
  auto st = quick_start();
  st.saga_id.clear();
  auto res = h.when(st, 100);
  BOOST_REQUIRE(!res);
  BOOST_TEST((res.error().code == rejection_code::invalid_argument));
  st = quick_start();
  st.input.order_id = std::string("o\xff", 2);
  res = h.when(st, 100);
  BOOST_REQUIRE(!res);
  BOOST_TEST((res.error().code == rejection_code::invalid_argument));
  BOOST_TEST(h.s.status_ == sg::status::none);
}

BOOST_AUTO_TEST_CASE(reasons_from_replies_are_made_storable) {
  harness h{quick_checkout(), {}};
  h.then_ok(quick_start(), 100);
  auto t = h.then_ok(
      sg::target_failed{0, sg::phase::forward, 1, 0, std::string("bad\xff\0x", 6), false}, 120);
  BOOST_TEST(std::get<sg::step_failed>(t.events[0]).reason == "bad?x");
  t = h.then_ok(sg::target_failed{2, sg::phase::on_compensated, 1, 0, "", false}, 130);
  BOOST_TEST(std::get<sg::step_failed>(t.events[0]).reason == "failed");
  BOOST_TEST(h.s.status_ == sg::status::failed);
  BOOST_TEST(h.s.failure_reason == "on_compensated: failed");
}

BOOST_AUTO_TEST_SUITE_END()

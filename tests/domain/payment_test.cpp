// Payment aggregate specs: given events → when command → then events or rejection.
#include <boost/test/unit_test.hpp>
#include <optional>
#include <string>
#include <vector>

#include "domain/payment.hpp"
#include "tests/domain/given.hpp"

namespace payment = saga::domain::payment;
using rc = saga::domain::rejection_code;
using saga::test::expect_rejection;
using saga::test::expect_replay;
using saga::test::only_event;

namespace {

auto given(const std::vector<payment::event>& history) {
  return saga::test::given<payment::state>(history);
}

const payment::gateway_answer approved{true, "tx-1", ""};
const payment::gateway_answer declined{false, "", "card declined"};

payment::process a_process(const std::string& key = "saga-1/2/process",
                           std::optional<payment::gateway_answer> answer = approved) {
  return payment::process{"pay-1", "o-1", "c-1", 35000, 1000, key, std::move(answer)};
}

payment::refund a_refund(const std::string& key = "saga-1/2/refund",
                         std::optional<payment::gateway_answer> answer = payment::gateway_answer{
                             true, "rtx-1", ""}) {
  return payment::refund{"order cancelled", 2000, key, std::move(answer)};
}

payment::payment_processed processed(const std::string& key = "saga-1/2/process") {
  return {"pay-1", "o-1", "c-1", 35000, "tx-1", 1000, key};
}

payment::payment_failed failed(const std::string& key = "saga-1/2/process") {
  return {"pay-1", "o-1", "c-1", 35000, "card declined", 1000, key};
}

payment::payment_refunded refunded(const std::string& key = "saga-1/2/refund") {
  return {"pay-1", "o-1", 35000, "order cancelled", "rtx-1", 2000, key};
}

const payment::charge_ref the_charge{"saga-1/2/process", "pay-1", "o-1", "c-1", 35000};

/// A compensating refund that names its charge, with the void's answer (if any).
payment::refund a_void(std::optional<payment::void_answer> answer,
                       const std::string& key = "saga-1/2/refund") {
  auto r = a_refund(key, std::nullopt);
  r.charge = the_charge;
  r.voided = std::move(answer);
  return r;
}

const payment::void_answer void_refunded{true, "tx-late", 35000, "rtx-void", ""};
const payment::void_answer void_nothing{false, "", 0, "", "voided before charge"};

}  // namespace

BOOST_AUTO_TEST_SUITE(payment_aggregate)

// ---- process ----

BOOST_AUTO_TEST_CASE(an_approved_charge_is_processed) {
  const auto& e = only_event<payment::payment_processed>(given({}).when(a_process()));
  BOOST_TEST(e.payment_id == "pay-1");
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.customer_id == "c-1");
  BOOST_TEST(e.amount == 35000);
  BOOST_TEST(e.transaction_id == "tx-1");
  BOOST_TEST(e.at == 1000);
  BOOST_TEST(e.idempotency_key == "saga-1/2/process");

  const auto s = given({processed()}).state;
  BOOST_TEST(payment::to_string(s.status_) == "PROCESSED");
  BOOST_TEST(s.amount == 35000);
  BOOST_TEST(s.transaction_id == "tx-1");
  BOOST_TEST(s.version == 1);
  BOOST_TEST(s.handled.contains("saga-1/2/process"));
}

BOOST_AUTO_TEST_CASE(a_declined_charge_is_a_durable_failure) {
  const auto& e = only_event<payment::payment_failed>(given({}).when(a_process("k", declined)));
  BOOST_TEST(e.reason == "card declined");
  BOOST_TEST(e.amount == 35000);

  const auto s = given({failed()}).state;
  BOOST_TEST(payment::to_string(s.status_) == "FAILED");
  BOOST_TEST(s.failure_reason == "card declined");
}

BOOST_AUTO_TEST_CASE(amount_must_be_positive) {
  for (saga::domain::money amount : {0, -5}) {
    auto c = a_process();
    c.amount = amount;
    expect_rejection(given({}).when(c), rc::invalid_price, "amount");
  }
}

BOOST_AUTO_TEST_CASE(ids_are_required) {
  auto c = a_process();
  c.payment_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "payment_id");
  c = a_process();
  c.order_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "order_id");
  c = a_process();
  c.customer_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "customer_id");
}

BOOST_AUTO_TEST_CASE(a_missing_gateway_answer_is_invalid) {
  expect_rejection(given({}).when(a_process("k", std::nullopt)), rc::invalid_argument, "gateway");
  expect_rejection(given({failed()}).when(a_process("k2", std::nullopt)), rc::invalid_argument,
                   "gateway");
}

BOOST_AUTO_TEST_CASE(the_missing_answer_is_the_last_objection) {
  // The actor can ask decide before charging: a status rejection wins over the missing answer.
  expect_rejection(given({processed()}).when(a_process("other", std::nullopt)),
                   rc::already_processed, "pay-1");
  auto c = a_process("k", std::nullopt);
  c.amount = 0;
  expect_rejection(given({}).when(c), rc::invalid_price, "amount");
}

BOOST_AUTO_TEST_CASE(a_second_charge_with_another_key_is_already_processed) {
  expect_rejection(given({processed()}).when(a_process("saga-2/2/process")), rc::already_processed,
                   "o-1");
}

BOOST_AUTO_TEST_CASE(a_charge_after_a_refund_is_already_refunded) {
  expect_rejection(given({processed(), refunded()}).when(a_process("again")), rc::already_refunded,
                   "pay-1");
}

BOOST_AUTO_TEST_CASE(a_failed_payment_may_be_charged_again_with_a_new_key) {
  const auto& e =
      only_event<payment::payment_processed>(given({failed()}).when(a_process("retry-2")));
  BOOST_TEST(e.transaction_id == "tx-1");
  const auto s = given({failed(), processed("retry-2")}).state;
  BOOST_TEST(payment::to_string(s.status_) == "PROCESSED");
  BOOST_TEST(s.failure_reason.empty());
  BOOST_TEST(s.version == 2);
}

BOOST_AUTO_TEST_CASE(a_retry_must_be_for_the_same_order) {
  auto c = a_process("retry-2");
  c.order_id = "o-2";
  expect_rejection(given({failed()}).when(c), rc::invalid_argument, "o-2");
  c = a_process("retry-2");
  c.payment_id = "pay-2";
  expect_rejection(given({failed()}).when(c), rc::invalid_argument, "pay-2");
}

BOOST_AUTO_TEST_CASE(a_handled_key_replays_without_needing_the_gateway) {
  const auto& d =
      expect_replay(given({processed()}).when(a_process("saga-1/2/process", std::nullopt)), 1);
  BOOST_TEST(std::get<payment::payment_processed>(d.earlier.front()).transaction_id == "tx-1");
  // A declined charge replays as declined: the same key never reaches the gateway twice.
  const auto& f = expect_replay(given({failed()}).when(a_process("saga-1/2/process")), 1);
  BOOST_TEST(std::get<payment::payment_failed>(f.earlier.front()).reason == "card declined");
  // Even after a refund the charge key answers with the charge.
  expect_replay(given({processed(), refunded()}).when(a_process("saga-1/2/process")), 1);
}

// ---- refund ----

BOOST_AUTO_TEST_CASE(refund_without_a_charge_is_not_paid) {
  expect_rejection(given({}).when(a_refund()), rc::not_paid, "nothing was charged");
  expect_rejection(given({failed()}).when(a_refund()), rc::not_paid, "card declined");
}

BOOST_AUTO_TEST_CASE(refund_of_a_processed_payment_returns_the_charged_amount) {
  const auto& e = only_event<payment::payment_refunded>(given({processed()}).when(a_refund()));
  BOOST_TEST(e.payment_id == "pay-1");
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.amount == 35000);
  BOOST_TEST(e.reason == "order cancelled");
  BOOST_TEST(e.refund_transaction_id == "rtx-1");
  BOOST_TEST(e.idempotency_key == "saga-1/2/refund");

  const auto s = given({processed(), refunded()}).state;
  BOOST_TEST(payment::to_string(s.status_) == "REFUNDED");
  BOOST_TEST(s.version == 2);
}

BOOST_AUTO_TEST_CASE(a_second_refund_is_already_refunded) {
  expect_rejection(given({processed(), refunded()}).when(a_refund("another")), rc::already_refunded,
                   "pay-1");
}

BOOST_AUTO_TEST_CASE(a_handled_refund_key_replays) {
  const auto& d = expect_replay(given({processed(), refunded()}).when(a_refund()), 1);
  BOOST_TEST(std::get<payment::payment_refunded>(d.earlier.front()).amount == 35000);
}

BOOST_AUTO_TEST_CASE(refund_needs_the_gateway_answer) {
  expect_rejection(given({processed()}).when(a_refund("k", std::nullopt)), rc::invalid_argument,
                   "gateway");
}

BOOST_AUTO_TEST_CASE(a_declined_refund_changes_nothing_and_says_why) {
  const auto r = given({processed()})
                     .when(a_refund("k", payment::gateway_answer{false, "", "gateway timeout"}));
  expect_rejection(r, rc::invalid_state, "gateway timeout");
}

// ---- refunds that void a charge the aggregate never recorded ----

BOOST_AUTO_TEST_CASE(a_void_of_a_charge_the_gateway_made_records_it_and_its_refund) {
  // Given no recorded charge, when the void finds the charge approved and refunds it, then the
  // journal catches up with the ledger: the charge under its key, then the refund.
  const auto d = saga::test::accepted(given({}).when(a_void(void_refunded)));
  BOOST_REQUIRE(!d.replayed);
  BOOST_REQUIRE_EQUAL(d.events.size(), 2u);
  const auto& p = std::get<payment::payment_processed>(d.events[0]);
  BOOST_TEST(p.payment_id == "pay-1");
  BOOST_TEST(p.order_id == "o-1");
  BOOST_TEST(p.customer_id == "c-1");
  BOOST_TEST(p.amount == 35000);
  BOOST_TEST(p.transaction_id == "tx-late");
  BOOST_TEST(p.idempotency_key == "saga-1/2/process");
  BOOST_TEST(p.at == 2000);
  const auto& r = std::get<payment::payment_refunded>(d.events[1]);
  BOOST_TEST(r.amount == 35000);
  BOOST_TEST(r.refund_transaction_id == "rtx-void");
  BOOST_TEST(r.reason == "order cancelled");
  BOOST_TEST(r.idempotency_key == "saga-1/2/refund");

  const auto s = saga::test::apply(given({}).state, d);
  BOOST_TEST(payment::to_string(s.status_) == "REFUNDED");
  BOOST_TEST(s.transaction_id == "tx-late");
  BOOST_TEST(s.version == 2);
  // Both keys answer from memory: the late charge and a re-sent refund replay.
  expect_replay(saga::test::scenario<payment::state>{s}.when(a_process("saga-1/2/process")), 1);
  expect_replay(saga::test::scenario<payment::state>{s}.when(a_void(std::nullopt)), 1);
}

BOOST_AUTO_TEST_CASE(a_void_records_the_amount_the_ledger_charged) {
  auto answer = void_refunded;
  answer.amount = 12000;
  const auto d = saga::test::accepted(given({}).when(a_void(answer)));
  BOOST_REQUIRE_EQUAL(d.events.size(), 2u);
  BOOST_TEST(std::get<payment::payment_processed>(d.events[0]).amount == 12000);
  BOOST_TEST(std::get<payment::payment_refunded>(d.events[1]).amount == 12000);
}

BOOST_AUTO_TEST_CASE(a_void_that_found_nothing_charged_is_not_paid) {
  expect_rejection(given({}).when(a_void(void_nothing)), rc::not_paid, "voided before charge");
  auto declined_answer = void_nothing;
  declined_answer.reason = "amount exceeds limit";
  expect_rejection(given({}).when(a_void(declined_answer)), rc::not_paid, "amount exceeds limit");
}

BOOST_AUTO_TEST_CASE(a_failed_payment_voids_a_charge_with_another_key) {
  // Declined under saga-0's key, then charged under saga-1's whose answer was lost.
  const auto d =
      saga::test::accepted(given({failed("saga-0/2/process")}).when(a_void(void_refunded)));
  BOOST_REQUIRE_EQUAL(d.events.size(), 2u);
  BOOST_TEST(std::get<payment::payment_processed>(d.events[0]).idempotency_key ==
             "saga-1/2/process");
  expect_rejection(given({failed("saga-0/2/process")}).when(a_void(void_nothing)), rc::not_paid,
                   "voided before charge");
}

BOOST_AUTO_TEST_CASE(a_charge_known_declined_needs_no_void) {
  // The failed charge is the very charge the refund names: nothing to undo, no gateway needed.
  expect_rejection(given({failed()}).when(a_void(std::nullopt)), rc::not_paid, "card declined");
  BOOST_TEST(!payment::gateway_call_needed(given({failed()}).state, a_void(std::nullopt)));
}

BOOST_AUTO_TEST_CASE(a_void_needs_its_answer_and_a_valid_charge) {
  expect_rejection(given({}).when(a_void(std::nullopt)), rc::invalid_argument, "void");
  auto c = a_void(void_refunded);
  c.charge->idempotency_key.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "charge.idempotency_key");
  c = a_void(void_refunded);
  c.charge->order_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "charge.order_id");
  c = a_void(void_refunded);
  c.charge->amount = 0;
  expect_rejection(given({}).when(c), rc::invalid_price, "charge.amount");
  // A failed payment only voids its own charge.
  c = a_void(void_refunded);
  c.charge->payment_id = "pay-2";
  expect_rejection(given({failed("saga-0/2/process")}).when(c), rc::invalid_argument, "pay-2");
  // An approval without ids or amount is refused, not recorded half-empty.
  auto answer = void_refunded;
  answer.charge_transaction_id.clear();
  expect_rejection(given({}).when(a_void(answer)), rc::invalid_argument, "charge_transaction_id");
  answer = void_refunded;
  answer.amount = 0;
  expect_rejection(given({}).when(a_void(answer)), rc::invalid_price, "voided.amount");
}

BOOST_AUTO_TEST_CASE(a_processed_payment_refunds_as_usual_even_when_the_charge_is_named) {
  auto c = a_void(std::nullopt);
  c.gateway = payment::gateway_answer{true, "rtx-1", ""};
  BOOST_TEST((only_event<payment::payment_refunded>(given({processed()}).when(c)) == refunded()));
  expect_rejection(given({processed(), refunded()}).when(a_void(void_refunded, "again")),
                   rc::already_refunded, "pay-1");
}

BOOST_AUTO_TEST_CASE(the_gateway_call_follows_the_status) {
  using call = payment::gateway_call;
  BOOST_TEST((payment::gateway_call_needed(given({}).state, a_process("k", std::nullopt)) ==
              call::charge));
  BOOST_TEST((payment::gateway_call_needed(given({processed()}).state, a_void(std::nullopt)) ==
              call::refund));
  BOOST_TEST(
      (payment::gateway_call_needed(given({}).state, a_void(std::nullopt)) == call::void_charge));
  BOOST_TEST((payment::gateway_call_needed(given({failed("saga-0/2/process")}).state,
                                           a_void(std::nullopt)) == call::void_charge));
  // No call: nothing named to void, already answered, replayed, or refused anyway.
  BOOST_TEST(!payment::gateway_call_needed(given({}).state, a_refund("k", std::nullopt)));
  BOOST_TEST(!payment::gateway_call_needed(given({}).state, a_void(void_nothing)));
  BOOST_TEST(!payment::gateway_call_needed(given({}).state, a_process()));
  BOOST_TEST(!payment::gateway_call_needed(given({processed()}).state,
                                           a_process("saga-1/2/process", std::nullopt)));
  BOOST_TEST(!payment::gateway_call_needed(given({processed(), refunded()}).state,
                                           a_void(std::nullopt, "other")));
  auto bad = a_void(std::nullopt);
  bad.charge->customer_id.clear();
  BOOST_TEST(!payment::gateway_call_needed(given({}).state, bad));
}

BOOST_AUTO_TEST_CASE(a_late_charge_after_a_void_is_at_most_a_failure) {
  // The void left a tombstone, so the late charge's answer is a decline: PaymentFailed, and
  // the refund that voided it stays "nothing to undo".
  const auto& f = only_event<payment::payment_failed>(given({}).when(
      a_process("saga-1/2/process", payment::gateway_answer{false, "", "voided before charge"})));
  BOOST_TEST(f.reason == "voided before charge");
  expect_rejection(given({f}).when(a_void(std::nullopt)), rc::not_paid, "voided before charge");
}

BOOST_AUTO_TEST_CASE(status_names_round_trip) {
  BOOST_TEST(payment::to_string(payment::status::none) == "NONE");
  BOOST_TEST(payment::to_string(payment::status::processed) == "PROCESSED");
  BOOST_TEST(payment::to_string(payment::status::failed) == "FAILED");
  BOOST_TEST(payment::to_string(payment::status::refunded) == "REFUNDED");
  for (auto s : {payment::status::none, payment::status::processed, payment::status::failed,
                 payment::status::refunded})
    BOOST_TEST((payment::parse_status(payment::to_string(s)) == s));
  BOOST_TEST(!payment::parse_status("paid").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

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

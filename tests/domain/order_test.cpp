// Order aggregate specs: given events → when command → then events or rejection.
#include <boost/test/unit_test.hpp>
#include <limits>
#include <string>
#include <vector>

#include "domain/order.hpp"
#include "tests/domain/given.hpp"

namespace order = saga::domain::order;
using saga::domain::max_item_quantity;
using saga::domain::max_order_items;
using saga::domain::max_text_bytes;
using saga::domain::money;
using rc = saga::domain::rejection_code;
using saga::test::expect_rejection;
using saga::test::expect_replay;
using saga::test::only_event;

namespace {

auto given(const std::vector<order::event>& history) {
  return saga::test::given<order::state>(history);
}

order::create a_create(const std::string& key = "create-1") {
  order::create c;
  c.order_id = "o-1";
  c.customer_id = "c-1";
  c.items = {{"p-1", "Keyboard", 2, 15000}, {"p-2", "Mouse", 1, 5000}};
  c.shipping_address = "서울시 강남구 테헤란로 123";
  c.correlation_id = "corr-1";
  c.saga_id = "saga-1";
  c.at = 1000;
  c.idempotency_key = key;
  return c;
}

order::order_created created(const std::string& key = "create-1") {
  const auto c = a_create(key);
  return {c.order_id,       c.customer_id, c.items, 35000, c.shipping_address,
          c.correlation_id, c.saga_id,     c.at,    key};
}

order::order_confirmed confirmed(const std::string& key = "saga-1/3/confirm") {
  return {"o-1", 2000, key};
}

order::order_cancelled cancelled(const std::string& key = "saga-1/cancel") {
  return {"o-1", "payment declined", 3000, key};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(order_aggregate)

// ---- create ----

BOOST_AUTO_TEST_CASE(create_emits_order_created_with_computed_total) {
  const auto r = given({}).when(a_create());
  const auto& e = only_event<order::order_created>(r);
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.customer_id == "c-1");
  BOOST_TEST(e.total == 35000);  // 2 x 15000 + 1 x 5000
  BOOST_TEST(e.items.size() == 2u);
  BOOST_TEST((e.items[1] == order::line_item{"p-2", "Mouse", 1, 5000}));
  BOOST_TEST(e.shipping_address == "서울시 강남구 테헤란로 123");
  BOOST_TEST(e.correlation_id == "corr-1");
  BOOST_TEST(e.saga_id == "saga-1");
  BOOST_TEST(e.at == 1000);
  BOOST_TEST(e.idempotency_key == "create-1");
}

BOOST_AUTO_TEST_CASE(evolve_created_makes_a_pending_order_and_records_the_key) {
  const auto s = given({created()}).state;
  BOOST_TEST(order::to_string(s.status_) == "PENDING");
  BOOST_TEST(s.order_id == "o-1");
  BOOST_TEST(s.customer_id == "c-1");
  BOOST_TEST(s.total == 35000);
  BOOST_TEST(s.items.size() == 2u);
  BOOST_TEST(s.created_at == 1000);
  BOOST_TEST(s.updated_at == 1000);
  BOOST_TEST(s.version == 1);
  BOOST_REQUIRE(s.handled.contains("create-1"));
  BOOST_TEST(s.handled.find("create-1")->size() == 1u);
}

BOOST_AUTO_TEST_CASE(evolve_without_key_records_nothing_but_counts_the_version) {
  const auto s = given({created(""), confirmed("")}).state;
  BOOST_TEST(s.handled.empty());
  BOOST_TEST(s.version == 2);
}

BOOST_AUTO_TEST_CASE(create_on_existing_order_is_already_exists) {
  expect_rejection(given({created()}).when(a_create("create-2")), rc::already_exists, "o-1");
}

BOOST_AUTO_TEST_CASE(create_requires_order_and_customer_ids) {
  auto c = a_create();
  c.order_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "order_id");
  c = a_create();
  c.customer_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "customer_id");
}

BOOST_AUTO_TEST_CASE(create_requires_items) {
  auto c = a_create();
  c.items.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "items");
}

BOOST_AUTO_TEST_CASE(create_limits_the_number_of_items) {
  auto c = a_create();
  c.items.assign(max_order_items, order::line_item{"p-1", "Keyboard", 1, 100});
  const auto& e = only_event<order::order_created>(given({}).when(c));
  BOOST_TEST(e.total == static_cast<money>(max_order_items) * 100);
  c.items.push_back(order::line_item{"p-1", "Keyboard", 1, 100});
  expect_rejection(given({}).when(c), rc::too_many_items, "101");
}

BOOST_AUTO_TEST_CASE(create_refuses_quantities_out_of_range) {
  for (std::int64_t q : {std::int64_t{0}, std::int64_t{-1}, max_item_quantity + 1}) {
    auto c = a_create();
    c.items[1].quantity = q;
    expect_rejection(given({}).when(c), rc::invalid_quantity, "items[1].quantity");
  }
  auto c = a_create();
  c.items[1].quantity = max_item_quantity;
  BOOST_TEST(only_event<order::order_created>(given({}).when(c)).total ==
             30000 + max_item_quantity * 5000);
}

BOOST_AUTO_TEST_CASE(create_refuses_non_positive_prices) {
  for (money p : {money{0}, money{-100}}) {
    auto c = a_create();
    c.items[0].unit_price = p;
    expect_rejection(given({}).when(c), rc::invalid_price, "items[0].unit_price");
  }
}

BOOST_AUTO_TEST_CASE(create_requires_product_ids) {
  auto c = a_create();
  c.items[1].product_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "items[1].product_id");
}

BOOST_AUTO_TEST_CASE(create_limits_text_lengths) {
  const std::string longest(max_text_bytes, 'x');
  const std::string too_long(max_text_bytes + 1, 'x');

  auto c = a_create();
  c.items[0].product_id = longest;
  c.items[0].product_name = longest;
  c.shipping_address = longest;
  BOOST_TEST(given({}).when(c).has_value());

  c = a_create();
  c.items[0].product_id = too_long;
  expect_rejection(given({}).when(c), rc::invalid_argument, "items[0].product_id");
  c = a_create();
  c.items[1].product_name = too_long;
  expect_rejection(given({}).when(c), rc::invalid_argument, "items[1].product_name");
  c = a_create();
  c.shipping_address = too_long;
  expect_rejection(given({}).when(c), rc::invalid_argument, "shipping_address");
  c = a_create();
  c.order_id = too_long;
  expect_rejection(given({}).when(c), rc::invalid_argument, "order_id");
}

BOOST_AUTO_TEST_CASE(create_refuses_text_that_cannot_be_stored) {
  auto c = a_create();
  c.shipping_address = "Seoul \xff\xfe";  // not UTF-8
  expect_rejection(given({}).when(c), rc::invalid_argument, "shipping_address");
  c = a_create();
  c.items[0].product_name = std::string("Key\0board", 9);  // PostgreSQL refuses NUL
  expect_rejection(given({}).when(c), rc::invalid_argument, "items[0].product_name");
}

BOOST_AUTO_TEST_CASE(create_detects_money_overflow_in_a_line_and_in_the_sum) {
  const money max = std::numeric_limits<money>::max();
  auto c = a_create();
  c.items = {{"p-1", "Gold", 2, max / 2 + 1}};
  expect_rejection(given({}).when(c), rc::money_overflow, "items[0]");

  c.items = {{"p-1", "Gold", 1000, max / 1000}, {"p-2", "Silver", 1000, max / 1000}};
  expect_rejection(given({}).when(c), rc::money_overflow, "items[1]");

  c.items = {{"p-1", "Gold", 1, max - 1}, {"p-2", "Silver", 1, 1}};
  BOOST_TEST(only_event<order::order_created>(given({}).when(c)).total == max);
}

// ---- confirm ----

BOOST_AUTO_TEST_CASE(confirm_of_a_missing_order_is_not_found) {
  expect_rejection(given({}).when(order::confirm{1, "k"}), rc::not_found, "does not exist");
}

BOOST_AUTO_TEST_CASE(confirm_of_a_pending_order_confirms_it) {
  const auto r = given({created()}).when(order::confirm{2000, "saga-1/3/confirm"});
  const auto& e = only_event<order::order_confirmed>(r);
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.at == 2000);
  BOOST_TEST(e.idempotency_key == "saga-1/3/confirm");

  const auto s = given({created(), confirmed()}).state;
  BOOST_TEST(order::to_string(s.status_) == "CONFIRMED");
  BOOST_TEST(s.updated_at == 2000);
  BOOST_TEST(s.created_at == 1000);
  BOOST_TEST(s.version == 2);
}

BOOST_AUTO_TEST_CASE(confirm_of_a_cancelled_order_is_already_cancelled) {
  expect_rejection(given({created(), cancelled()}).when(order::confirm{4000, "k2"}),
                   rc::already_cancelled, "o-1");
}

BOOST_AUTO_TEST_CASE(confirm_of_a_confirmed_order_is_already_confirmed) {
  expect_rejection(given({created(), confirmed()}).when(order::confirm{4000, "k2"}),
                   rc::already_confirmed, "o-1");
}

// ---- cancel ----

BOOST_AUTO_TEST_CASE(cancel_of_a_missing_order_is_not_found) {
  expect_rejection(given({}).when(order::cancel{"why", 1, "k"}), rc::not_found, "does not exist");
}

BOOST_AUTO_TEST_CASE(cancel_of_a_pending_order_records_the_reason) {
  const auto r = given({created()}).when(order::cancel{"payment declined", 3000, "saga-1/cancel"});
  const auto& e = only_event<order::order_cancelled>(r);
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.reason == "payment declined");
  BOOST_TEST(e.at == 3000);

  const auto s = given({created(), cancelled()}).state;
  BOOST_TEST(order::to_string(s.status_) == "CANCELLED");
  BOOST_TEST(s.failure_reason == "payment declined");
  BOOST_TEST(s.updated_at == 3000);
}

BOOST_AUTO_TEST_CASE(cancel_of_a_confirmed_order_is_allowed) {
  const auto r = given({created(), confirmed()}).when(order::cancel{"customer asked", 5000, "c"});
  BOOST_TEST(only_event<order::order_cancelled>(r).reason == "customer asked");
}

BOOST_AUTO_TEST_CASE(cancel_of_a_cancelled_order_is_already_cancelled) {
  expect_rejection(given({created(), cancelled()}).when(order::cancel{"again", 4000, "other"}),
                   rc::already_cancelled, "o-1");
}

BOOST_AUTO_TEST_CASE(cancel_reason_is_length_checked) {
  expect_rejection(
      given({created()}).when(order::cancel{std::string(max_text_bytes + 1, 'r'), 1, "k"}),
      rc::invalid_argument, "reason");
}

// ---- idempotency ----

BOOST_AUTO_TEST_CASE(a_handled_create_key_replays_the_earlier_outcome) {
  const auto r = given({created()}).when(a_create("create-1"));
  const auto& d = expect_replay(r, 1);
  const auto* e = std::get_if<order::order_created>(&d.earlier.front());
  BOOST_REQUIRE(e != nullptr);
  BOOST_TEST(e->total == 35000);
}

BOOST_AUTO_TEST_CASE(the_key_is_checked_before_every_other_rule) {
  // A retried cancel after the order is already cancelled gets the first answer, not a rejection.
  const auto history = std::vector<order::event>{created(), confirmed(), cancelled()};
  const auto& d = expect_replay(given(history).when(order::cancel{"x", 9, "saga-1/cancel"}), 1);
  BOOST_TEST(std::get<order::order_cancelled>(d.earlier.front()).reason == "payment declined");
  // So does a retried confirm of an order that was cancelled since.
  expect_replay(given(history).when(order::confirm{9, "saga-1/3/confirm"}), 1);
  // A fresh key meets the business rules.
  expect_rejection(given(history).when(order::cancel{"x", 9, "fresh"}), rc::already_cancelled,
                   "o-1");
}

BOOST_AUTO_TEST_CASE(an_empty_key_never_replays) {
  expect_rejection(given({created("")}).when(a_create("")), rc::already_exists, "o-1");
}

BOOST_AUTO_TEST_CASE(status_names_round_trip) {
  BOOST_TEST(order::to_string(order::status::none) == "NONE");
  BOOST_TEST(order::to_string(order::status::pending) == "PENDING");
  BOOST_TEST(order::to_string(order::status::confirmed) == "CONFIRMED");
  BOOST_TEST(order::to_string(order::status::cancelled) == "CANCELLED");
  for (auto s : {order::status::none, order::status::pending, order::status::confirmed,
                 order::status::cancelled})
    BOOST_TEST((order::parse_status(order::to_string(s)) == s));
  BOOST_TEST(!order::parse_status("pending").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

// Inventory aggregate specs: given events → when command → then events or rejection.
#include <boost/test/unit_test.hpp>
#include <limits>
#include <string>
#include <vector>

#include "domain/inventory.hpp"
#include "tests/domain/given.hpp"

namespace inventory = saga::domain::inventory;
using saga::domain::max_item_quantity;
using saga::domain::max_text_bytes;
using rc = saga::domain::rejection_code;
using saga::test::expect_rejection;
using saga::test::expect_replay;
using saga::test::only_event;

namespace {

auto given(const std::vector<inventory::event>& history) {
  return saga::test::given<inventory::state>(history);
}

inventory::register_product a_register(std::int64_t stock = 10) {
  return {"p-1", "Keyboard", 15000, stock, 100, "register-p-1"};
}

inventory::product_registered registered(std::int64_t stock = 10) {
  return {"p-1", "Keyboard", 15000, stock, 100, "register-p-1"};
}

inventory::inventory_reserved reserved(const std::string& order_id, std::int64_t q,
                                       const std::string& key) {
  return {"p-1", order_id, q, 200, key};
}

inventory::reserve a_reserve(const std::string& order_id, std::int64_t q, const std::string& key) {
  return {order_id, q, 200, key};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(inventory_aggregate)

// ---- register ----

BOOST_AUTO_TEST_CASE(register_product_emits_product_registered) {
  const auto& e = only_event<inventory::product_registered>(given({}).when(a_register()));
  BOOST_TEST(e.product_id == "p-1");
  BOOST_TEST(e.name == "Keyboard");
  BOOST_TEST(e.price == 15000);
  BOOST_TEST(e.initial_stock == 10);
  BOOST_TEST(e.idempotency_key == "register-p-1");

  const auto s = given({registered()}).state;
  BOOST_TEST(s.registered);
  BOOST_TEST(s.available == 10);
  BOOST_TEST(s.reserved == 0);
  BOOST_TEST(s.price == 15000);
  BOOST_TEST(s.version == 1);
}

BOOST_AUTO_TEST_CASE(register_on_a_registered_product_is_already_exists) {
  auto c = a_register();
  c.idempotency_key = "other";
  expect_rejection(given({registered()}).when(c), rc::already_exists, "p-1");
}

BOOST_AUTO_TEST_CASE(register_validates_its_fields) {
  auto c = a_register();
  c.price = 0;
  expect_rejection(given({}).when(c), rc::invalid_price, "price");
  c = a_register();
  c.price = -1;
  expect_rejection(given({}).when(c), rc::invalid_price, "price");
  c = a_register(-1);
  expect_rejection(given({}).when(c), rc::invalid_quantity, "initial_stock");
  c = a_register(1'000'000'001);
  expect_rejection(given({}).when(c), rc::invalid_quantity, "initial_stock");
  c = a_register();
  c.product_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "product_id");
  c = a_register();
  c.name.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "name");
  c = a_register();
  c.name = std::string(max_text_bytes + 1, 'n');
  expect_rejection(given({}).when(c), rc::invalid_argument, "name");
  // Zero stock is a valid start.
  BOOST_TEST(
      only_event<inventory::product_registered>(given({}).when(a_register(0))).initial_stock == 0);
}

// ---- unregistered ----

BOOST_AUTO_TEST_CASE(commands_on_an_unregistered_product_are_unknown_product) {
  expect_rejection(given({}).when(inventory::restock{5, 1, "k"}), rc::unknown_product,
                   "not registered");
  expect_rejection(given({}).when(a_reserve("o-1", 1, "k")), rc::unknown_product, "not registered");
  expect_rejection(given({}).when(inventory::release{"o-1", "r", 1, "k"}), rc::unknown_product,
                   "not registered");
}

// ---- restock ----

BOOST_AUTO_TEST_CASE(restock_adds_stock) {
  const auto& e =
      only_event<inventory::stock_added>(given({registered()}).when(inventory::restock{5, 1, "r"}));
  BOOST_TEST(e.product_id == "p-1");
  BOOST_TEST(e.quantity == 5);
  const auto s = given({registered(), e}).state;
  BOOST_TEST(s.available == 15);
}

BOOST_AUTO_TEST_CASE(restock_refuses_absurd_quantities) {
  for (std::int64_t q : {std::int64_t{0}, std::int64_t{-3}, std::int64_t{1'000'000'001}})
    expect_rejection(given({registered()}).when(inventory::restock{q, 1, "r"}),
                     rc::invalid_quantity, "quantity");
  BOOST_TEST(given({registered()}).when(inventory::restock{1'000'000'000, 1, "r"}).has_value());
}

BOOST_AUTO_TEST_CASE(restock_refuses_to_overflow_the_stock) {
  const auto max = std::numeric_limits<std::int64_t>::max();
  inventory::state s = given({registered()}).state;
  s.available = max - 10;
  expect_rejection(decide(s, inventory::restock{11, 1, "r"}), rc::money_overflow, "overflows");
  BOOST_TEST(decide(s, inventory::restock{10, 1, "r"}).has_value());
  // available + reserved must fit too, or a later release would overflow.
  s.available = max - 20;
  s.reserved = 15;
  expect_rejection(decide(s, inventory::restock{10, 1, "r"}), rc::money_overflow, "overflows");
}

// ---- reserve ----

BOOST_AUTO_TEST_CASE(reserve_holds_stock_for_the_order) {
  const auto& e = only_event<inventory::inventory_reserved>(
      given({registered()}).when(a_reserve("o-1", 3, "saga-1/1/reserve")));
  BOOST_TEST(e.product_id == "p-1");
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.quantity == 3);
  BOOST_TEST(e.idempotency_key == "saga-1/1/reserve");

  const auto s = given({registered(), e}).state;
  BOOST_TEST(s.available == 7);
  BOOST_TEST(s.reserved == 3);
  BOOST_REQUIRE_EQUAL(s.reservations.count("o-1"), 1u);
  BOOST_TEST(s.reservations.at("o-1") == 3);
}

BOOST_AUTO_TEST_CASE(reserve_validates_quantity_and_order) {
  for (std::int64_t q : {std::int64_t{0}, std::int64_t{-1}, max_item_quantity + 1})
    expect_rejection(given({registered()}).when(a_reserve("o-1", q, "k")), rc::invalid_quantity,
                     "quantity");
  expect_rejection(given({registered()}).when(a_reserve("", 1, "k")), rc::invalid_argument,
                   "order_id");
}

BOOST_AUTO_TEST_CASE(a_reservation_of_another_quantity_for_the_same_order_is_already_processed) {
  const auto history = std::vector<inventory::event>{registered(), reserved("o-1", 2, "a")};
  expect_rejection(given(history).when(a_reserve("o-1", 3, "b")), rc::already_processed, "o-1");
  expect_rejection(given(history).when(a_reserve("o-1", 1, "b")), rc::already_processed, "holds 2");
}

BOOST_AUTO_TEST_CASE(an_unknown_key_for_a_held_reservation_replays_it_without_holding_twice) {
  // An order holds at most one reservation; the same request under a key the memory does not
  // know (forgotten, see idempotency_test) is answered with the reservation it holds.
  const auto history = std::vector<inventory::event>{registered(), reserved("o-1", 2, "a")};
  const auto& d = expect_replay(given(history).when(a_reserve("o-1", 2, "b")), 1);
  BOOST_TEST((d.earlier.front() == inventory::event{reserved("o-1", 2, "b")}));
  const auto s = saga::test::apply(given(history).state, d);
  BOOST_TEST(s.available == 8);
  BOOST_TEST(s.reserved == 2);
  BOOST_TEST(s.version == 2);
}

BOOST_AUTO_TEST_CASE(reserving_more_than_available_records_a_failure) {
  const auto history = std::vector<inventory::event>{registered(), reserved("o-1", 8, "a")};
  const auto& e = only_event<inventory::inventory_reservation_failed>(
      given(history).when(a_reserve("o-2", 3, "b")));
  BOOST_TEST(e.reason == "insufficient_stock");
  BOOST_TEST(e.available == 2);
  BOOST_TEST(e.quantity == 3);
  BOOST_TEST(e.order_id == "o-2");

  auto s = given(history).state;
  s = evolve(std::move(s), e);
  BOOST_TEST(s.available == 2);
  BOOST_TEST(s.reserved == 8);
  BOOST_TEST(s.reservations.count("o-2") == 0u);
  BOOST_TEST(s.version == 3);
  // The failure is durable: the same key answers the same way even after a restock.
  s = evolve(std::move(s), inventory::stock_added{"p-1", 100, 300, "restock"});
  const auto& d = expect_replay(decide(s, a_reserve("o-2", 3, "b")), 1);
  BOOST_TEST(std::get<inventory::inventory_reservation_failed>(d.earlier.front()).available == 2);
  // A new attempt with a new key may now succeed.
  BOOST_TEST(
      only_event<inventory::inventory_reserved>(decide(s, a_reserve("o-2", 3, "c"))).quantity == 3);
}

BOOST_AUTO_TEST_CASE(reserving_exactly_what_is_available_empties_the_stock) {
  const auto s = saga::test::apply(
      given({registered()}).state,
      saga::test::accepted(given({registered()}).when(a_reserve("o-1", 10, "k"))));
  BOOST_TEST(s.available == 0);
  BOOST_TEST(s.reserved == 10);
}

BOOST_AUTO_TEST_CASE(fifty_reservations_on_ten_in_stock_never_go_negative) {
  auto s = given({registered(10)}).state;
  int failures = 0;
  for (int i = 0; i < 50; ++i) {
    const auto order_id = "o-" + std::to_string(i);
    const auto r = decide(s, a_reserve(order_id, 1, "saga-" + std::to_string(i) + "/1/reserve"));
    const auto& d = saga::test::accepted(r);
    BOOST_REQUIRE_EQUAL(d.events.size(), 1u);
    if (std::holds_alternative<inventory::inventory_reservation_failed>(d.events.front()))
      ++failures;
    s = saga::test::apply(std::move(s), d);
    BOOST_REQUIRE_GE(s.available, 0);
    BOOST_REQUIRE_EQUAL(s.available + s.reserved, 10);
  }
  BOOST_TEST(s.available == 0);
  BOOST_TEST(s.reserved == 10);
  BOOST_TEST(s.reservations.size() == 10u);
  BOOST_TEST(failures == 40);
  BOOST_TEST(s.version == 51);
}

BOOST_AUTO_TEST_CASE(uneven_reservations_leave_the_remainder) {
  auto s = given({registered(10)}).state;
  for (int i = 0; i < 50; ++i) {
    const auto r = decide(s, a_reserve("o-" + std::to_string(i), 3, "k" + std::to_string(i)));
    s = saga::test::apply(std::move(s), saga::test::accepted(r));
    BOOST_REQUIRE_GE(s.available, 0);
  }
  BOOST_TEST(s.reserved == 9);
  BOOST_TEST(s.available == 1);
  BOOST_TEST(s.reservations.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_handled_reserve_key_does_not_hold_twice) {
  const auto history =
      std::vector<inventory::event>{registered(), reserved("o-1", 4, "saga-1/1/reserve")};
  const auto& d = expect_replay(given(history).when(a_reserve("o-1", 4, "saga-1/1/reserve")), 1);
  BOOST_TEST(std::get<inventory::inventory_reserved>(d.earlier.front()).quantity == 4);
  const auto s = saga::test::apply(given(history).state, d);
  BOOST_TEST(s.available == 6);
}

// ---- release ----

BOOST_AUTO_TEST_CASE(release_gives_back_what_the_order_holds) {
  const auto history =
      std::vector<inventory::event>{registered(), reserved("o-1", 4, "a"), reserved("o-2", 1, "b")};
  const auto& e = only_event<inventory::inventory_released>(
      given(history).when(inventory::release{"o-1", "payment declined", 300, "saga-1/1/release"}));
  BOOST_TEST(e.order_id == "o-1");
  BOOST_TEST(e.quantity == 4);
  BOOST_TEST(e.reason == "payment declined");

  auto s = evolve(given(history).state, e);
  BOOST_TEST(s.available == 9);
  BOOST_TEST(s.reserved == 1);
  BOOST_TEST(s.reservations.count("o-1") == 0u);
  BOOST_TEST(s.reservations.count("o-2") == 1u);

  // A second release with another key finds nothing to give back.
  const auto& again = saga::test::accepted(decide(s, inventory::release{"o-1", "x", 400, "new"}));
  BOOST_TEST(again.events.empty());
  BOOST_TEST(!again.replayed);
  // The same key replays the release.
  expect_replay(decide(s, inventory::release{"o-1", "x", 400, "saga-1/1/release"}), 1);
}

BOOST_AUTO_TEST_CASE(release_of_nothing_succeeds_with_no_events_and_can_repeat) {
  auto s = given({registered()}).state;
  for (int i = 0; i < 3; ++i) {
    const auto& d =
        saga::test::accepted(decide(s, inventory::release{"o-9", "compensate", 1, "rel"}));
    BOOST_TEST(d.events.empty());
    BOOST_TEST(!d.replayed);
    s = saga::test::apply(std::move(s), d);
  }
  BOOST_TEST(s.version == 1);
  BOOST_TEST(s.available == 10);
}

BOOST_AUTO_TEST_CASE(release_requires_an_order_id) {
  expect_rejection(given({registered()}).when(inventory::release{"", "r", 1, "k"}),
                   rc::invalid_argument, "order_id");
}

BOOST_AUTO_TEST_SUITE_END()

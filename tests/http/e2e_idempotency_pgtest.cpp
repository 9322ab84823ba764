// Idempotency-Key on POST /orders against a real saga-node: a repeated request answers the first
// response and creates nothing (also when 20 arrive at once), a different body under the same
// key is 422, and keys belong to the user who sent them.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/http/support.hpp"

namespace ht = saga::http_test;
using ht::bearer;
using ht::json;
using ht::str;
using namespace std::chrono_literals;

namespace {

/// Waits until `order_id` is CONFIRMED and the list shows it, then answers how many orders
/// the list shows (by then every order created before it is projected too).
std::size_t settled_order_count(ht::client& c, const ht::user& u, const std::string& order_id,
                                ht::response& raw) {
  const auto done = ht::wait_order_status(c, u.token, order_id, "CONFIRMED");
  BOOST_CHECK_MESSAGE(str(done.json_body(), "status") == "CONFIRMED", done.describe());
  json items;
  const bool listed = ht::eventually(15s, [&] {
    items = ht::list_orders(c, u.token, &raw);
    for (const auto& o : items) {
      if (str(o, "orderId") == order_id && str(o, "status") == "CONFIRMED") return true;
    }
    return false;
  });
  BOOST_CHECK_MESSAGE(listed,
                      "order " << order_id << " never listed CONFIRMED: " << raw.describe());
  return items.size();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_idempotency)

BOOST_AUTO_TEST_CASE(same_key_and_body_answers_the_first_response_and_creates_one_order) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("idem");
  const auto key = "key-" + ht::random_token(12);
  const auto body = ht::small_order_body(2);
  const auto first = ht::place_order(c, u.token, body, {{"Idempotency-Key", key}});
  // Re-spelled JSON (other key order, whitespace) is the same body.
  std::string respelled = "{ \"shippingAddress\" : " + json(body["shippingAddress"]).dump() +
                          ",\n \"items\" : " + body["items"].dump(2) + " }";
  const auto second = c.post("/orders", respelled, {bearer(u.token), {"Idempotency-Key", key}});
  ht::require_status(second, 202);
  BOOST_CHECK_MESSAGE(ht::require_json(second) == ht::require_json(first.raw),
                      "the replay differs from the first response:\n  first: "
                          << first.raw.describe() << "\n  again: " << second.describe());
  const auto third = c.post("/orders", body, {bearer(u.token), {"Idempotency-Key", key}});
  ht::require_status(third, 202);
  BOOST_CHECK_MESSAGE(ht::require_json(third) == ht::require_json(first.raw),
                      "the third answer differs from the first:\n  first: "
                          << first.raw.describe() << "\n  third: " << third.describe());
  ht::response raw;
  BOOST_CHECK_MESSAGE(settled_order_count(c, u, first.order_id, raw) == 1,
                      "expected one order: " << raw.describe());

  // A later replay (after the saga finished) still answers the same.
  const auto late = c.post("/orders", body, {bearer(u.token), {"Idempotency-Key", key}});
  ht::check_status(late, 202);
  BOOST_CHECK_MESSAGE(str(late.json_body(), "orderId") == first.order_id, late.describe());
}

BOOST_AUTO_TEST_CASE(twenty_concurrent_requests_with_one_key_make_one_order) {
  auto& node = ht::shared_node();
  const auto u = node.new_customer("idem-race");
  const auto key = "race-" + ht::random_token(12);
  const auto body = ht::small_order_body(1).dump();
  constexpr int n = 20;
  std::vector<ht::response> answers(n);
  std::vector<ht::client> clients;
  for (int i = 0; i < n; ++i) clients.push_back(node.make_client());
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n) std::this_thread::yield();
      answers[i] = clients[i].post("/orders", body, {bearer(u.token), {"Idempotency-Key", key}});
    });
  }
  for (auto& t : threads) t.join();

  std::string order_id;
  for (const auto& a : answers) {
    if (!ht::check_status(a, 202)) continue;
    const auto id = str(a.json_body(), "orderId");
    if (order_id.empty()) order_id = id;
    BOOST_CHECK_MESSAGE(id == order_id, "concurrent replays answered different orders: "
                                            << order_id << " vs " << a.describe());
  }
  BOOST_REQUIRE(!order_id.empty());
  auto c = node.make_client();
  ht::response raw;
  BOOST_CHECK_MESSAGE(settled_order_count(c, u, order_id, raw) == 1,
                      "expected one order after 20 concurrent requests: " << raw.describe());
}

BOOST_AUTO_TEST_CASE(same_key_with_a_different_body_is_422) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("idem-diff");
  const auto key = "diff-" + ht::random_token(12);
  const auto body = ht::small_order_body(1);
  const auto first = ht::place_order(c, u.token, body, {{"Idempotency-Key", key}});
  auto other = body;
  other["items"][0]["quantity"] = 3;
  ht::check_problem(c.post("/orders", other, {bearer(u.token), {"Idempotency-Key", key}}), 422);
  auto other_address = body;
  other_address["shippingAddress"] = "somewhere else";
  ht::check_problem(c.post("/orders", other_address, {bearer(u.token), {"Idempotency-Key", key}}),
                    422);
  ht::response raw;
  BOOST_CHECK_MESSAGE(settled_order_count(c, u, first.order_id, raw) == 1,
                      "expected one order: " << raw.describe());
  // The original is untouched.
  const auto o = c.get("/orders/" + first.order_id, {bearer(u.token)});
  ht::require_status(o, 200);
  BOOST_CHECK_MESSAGE(o.json_body()["items"][0].value("quantity", 0) == 1, o.describe());
}

BOOST_AUTO_TEST_CASE(keys_are_per_user) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto alice = node.new_customer("alice");
  const auto bob = node.new_customer("bob");
  const auto key = "shared-" + ht::random_token(12);
  const auto body = ht::small_order_body(1);
  const auto a = ht::place_order(c, alice.token, body, {{"Idempotency-Key", key}});
  const auto b = ht::place_order(c, bob.token, body, {{"Idempotency-Key", key}});
  BOOST_CHECK_MESSAGE(a.order_id != b.order_id,
                      "two users with one key got the same order " << a.order_id);
  ht::response raw;
  BOOST_CHECK_MESSAGE(settled_order_count(c, alice, a.order_id, raw) == 1, raw.describe());
  BOOST_CHECK_MESSAGE(settled_order_count(c, bob, b.order_id, raw) == 1, raw.describe());
  const auto bob_view = c.get("/orders/" + b.order_id, {bearer(bob.token)});
  BOOST_CHECK_EQUAL(str(bob_view.json_body(), "customerId"), bob.user_id);
}

BOOST_AUTO_TEST_CASE(requests_without_a_key_are_distinct_orders) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("nokey");
  const auto body = ht::small_order_body(1);
  const auto a = ht::place_order(c, u.token, body);
  const auto b = ht::place_order(c, u.token, body);
  BOOST_CHECK_NE(a.order_id, b.order_id);
  ht::wait_order_status(c, u.token, a.order_id, "CONFIRMED");
  ht::response raw;
  BOOST_CHECK_MESSAGE(settled_order_count(c, u, b.order_id, raw) == 2, raw.describe());
}

BOOST_AUTO_TEST_SUITE_END()

// Orders and sagas over HTTP against a real saga-node: the seed's example order round-trips
// (Korean address byte for byte) and its saga completes and is traceable; cancel refunds and
// releases; declines and price mismatches; manual confirm, compensate and retry as admin; the
// product catalog routes.
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/http/support.hpp"

namespace ht = saga::http_test;
using ht::bearer;
using ht::json;
using ht::str;
using namespace std::chrono_literals;

namespace {

/// Polls `path` until its body mentions every one of `needles`; answers the last response.
ht::response wait_mentions(ht::client& c, const std::string& path, const std::string& token,
                           const std::vector<std::string>& needles,
                           std::chrono::milliseconds timeout = 20s) {
  ht::response last;
  ht::eventually(timeout, [&] {
    last = c.get(path, {bearer(token)});
    if (last.status != 200) return false;
    for (const auto& n : needles) {
      if (last.body.find(n) == std::string::npos) return false;
    }
    return true;
  });
  return last;
}

void check_mentions(const ht::response& r, const std::vector<std::string>& needles) {
  for (const auto& n : needles) {
    BOOST_CHECK_MESSAGE(r.status == 200 && r.body.find(n) != std::string::npos,
                        "expected '" << n << "' in " << r.describe());
  }
}

/// Creates a product as admin (201) and answers its id.
std::string create_product(ht::client& c, ht::http_node& node, std::int64_t price,
                           std::int64_t stock) {
  const auto id = "p-" + ht::random_token(10);
  const auto r = c.post(
      "/products",
      json{{"productId", id}, {"name", "Test product " + id}, {"price", price}, {"stock", stock}},
      {bearer(node.admin_token())});
  ht::require_status(r, 201);
  return id;
}

json product(ht::client& c, const std::string& token, const std::string& id) {
  const auto r = c.get("/products/" + id, {bearer(token)});
  ht::require_status(r, 200);
  return ht::require_json(r);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_orders)

BOOST_AUTO_TEST_CASE(seed_example_order_round_trips_and_its_saga_completes) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("seed");
  const auto cid = "e2e-seed-" + ht::random_token(12);
  const auto p = ht::place_order(c, u.token, ht::seed_order_body(), {{"X-Correlation-Id", cid}});
  BOOST_CHECK_MESSAGE(p.correlation_id == cid,
                      "the request's X-Correlation-Id is not the order's: " << p.raw.describe());
  BOOST_CHECK_MESSAGE(p.raw.header("X-Correlation-Id").value_or("") == cid,
                      "X-Correlation-Id not echoed: " << p.raw.describe());

  // GET /orders/{id} reads the aggregate: every §6 field, the address byte for byte.
  const auto got = c.get("/orders/" + p.order_id, {bearer(u.token)});
  ht::require_status(got, 200);
  const auto o = ht::require_json(got);
  for (const char* key : {"orderId", "customerId", "items", "total", "status", "shippingAddress",
                          "correlationId", "sagaId", "createdAt", "updatedAt", "version"}) {
    BOOST_CHECK_MESSAGE(o.contains(key),
                        "GET /orders/{id} lacks '" << key << "': " << got.describe());
  }
  BOOST_CHECK_MESSAGE(str(o, "shippingAddress") == ht::seed_address,
                      "the Korean address did not round-trip: " << got.describe());
  BOOST_CHECK_MESSAGE(got.body.find(ht::seed_address) != std::string::npos,
                      "the address is not raw UTF-8 in the body: " << got.describe());
  BOOST_CHECK_EQUAL(str(o, "orderId"), p.order_id);
  BOOST_CHECK_EQUAL(str(o, "customerId"), u.user_id);
  BOOST_CHECK_EQUAL(str(o, "sagaId"), p.saga_id);
  BOOST_CHECK_EQUAL(str(o, "correlationId"), cid);
  BOOST_CHECK_MESSAGE(o.value("total", std::int64_t{0}) == 1500000, got.describe());
  BOOST_CHECK_MESSAGE(o["items"] == ht::seed_order_body()["items"],
                      "items differ from the request: " << got.describe());
  const auto status = str(o, "status");
  BOOST_CHECK_MESSAGE(status == "PENDING" || status == "CONFIRMED", got.describe());

  // The saga completes; its status route shows it.
  const auto saga = ht::wait_saga_status(c, u.token, cid, "COMPLETED");
  BOOST_REQUIRE_MESSAGE(str(saga.json_body(), "status") == "COMPLETED",
                        "saga did not complete within 30 s: " << saga.describe());
  const auto s = saga.json_body();
  BOOST_CHECK_EQUAL(str(s, "sagaId"), p.saga_id);
  BOOST_CHECK_EQUAL(str(s, "correlationId"), cid);
  BOOST_CHECK_MESSAGE(str(s, "sagaType") == "OrderProcessing", saga.describe());
  BOOST_CHECK_MESSAGE(s.contains("currentStep"), "no currentStep: " << saga.describe());
  BOOST_CHECK_MESSAGE(s.contains("steps") && s["steps"].is_array() && s["steps"].size() == 3,
                      "expected the 3 OrderProcessing steps: " << saga.describe());
  for (const char* step : {"reserve_inventory", "process_payment", "confirm_order"}) {
    BOOST_CHECK_MESSAGE(saga.body.find(step) != std::string::npos,
                        "step " << step << " not shown: " << saga.describe());
  }

  const auto confirmed = ht::wait_order_status(c, u.token, p.order_id, "CONFIRMED");
  BOOST_CHECK_MESSAGE(str(confirmed.json_body(), "status") == "CONFIRMED", confirmed.describe());
  BOOST_CHECK_MESSAGE(str(confirmed.json_body(), "shippingAddress") == ht::seed_address,
                      confirmed.describe());

  // Traces by correlation id and by order.
  const std::vector<std::string> saga_events{"OrderCreated",      "SagaStarted",
                                             "InventoryReserved", "PaymentProcessed",
                                             "OrderConfirmed",    "SagaCompleted"};
  check_mentions(
      wait_mentions(c, "/trace/correlation/" + ht::url_encode(cid), u.token, saga_events),
      saga_events);
  check_mentions(wait_mentions(c, "/trace/order/" + p.order_id, u.token,
                               {"OrderCreated", "OrderConfirmed", p.order_id}),
                 {"OrderCreated", "OrderConfirmed", p.order_id});

  // The list (read model) shows it with the same address.
  ht::response raw;
  json listed;
  ht::eventually(10s, [&] {
    for (const auto& item : ht::list_orders(c, u.token, &raw)) {
      if (str(item, "orderId") == p.order_id && str(item, "status") == "CONFIRMED") {
        listed = item;
        return true;
      }
    }
    return false;
  });
  BOOST_REQUIRE_MESSAGE(!listed.is_null(),
                        "GET /orders never listed the CONFIRMED order: " << raw.describe());
  BOOST_CHECK_MESSAGE(str(listed, "shippingAddress") == ht::seed_address, raw.describe());
  BOOST_CHECK_MESSAGE(listed.value("total", std::int64_t{0}) == 1500000, raw.describe());
}

BOOST_AUTO_TEST_CASE(cancel_compensates_refund_and_release_then_refuses_a_second_cancel) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("cancel");
  const auto product_id = create_product(c, node, 1000, 10);
  const auto p = ht::place_order(
      c, u.token,
      json{{"items", json::array({json{{"productId", product_id},
                                       {"productName", "Test product " + product_id},
                                       {"quantity", 3},
                                       {"price", 1000}}})},
           {"shippingAddress", "Cancel street 1"}});
  const auto done = ht::wait_saga_status(c, u.token, p.correlation_id, "COMPLETED");
  BOOST_REQUIRE_MESSAGE(str(done.json_body(), "status") == "COMPLETED", done.describe());
  const auto sold = product(c, u.token, product_id);
  BOOST_CHECK_MESSAGE(sold.value("stock", std::int64_t{-1}) == 7,
                      "available stock after 3 of 10 sold should be 7: " << sold.dump());

  const auto cancel = c.del("/orders/" + p.order_id, {bearer(u.token)});
  BOOST_REQUIRE_MESSAGE(cancel.status == 200 || cancel.status == 202,
                        "expected 200/202 from " << cancel.describe());

  const auto cancelled = ht::wait_order_status(c, u.token, p.order_id, "CANCELLED");
  BOOST_CHECK_MESSAGE(str(cancelled.json_body(), "status") == "CANCELLED", cancelled.describe());
  const auto saga = ht::wait_saga_status(c, u.token, p.correlation_id, "COMPENSATED");
  BOOST_CHECK_MESSAGE(str(saga.json_body(), "status") == "COMPENSATED", saga.describe());
  const std::vector<std::string> undo{"PaymentRefunded", "InventoryReleased", "OrderCancelled"};
  check_mentions(
      wait_mentions(c, "/trace/correlation/" + ht::url_encode(p.correlation_id), u.token, undo),
      undo);
  std::int64_t stock = -1;
  ht::eventually(10s, [&] {
    stock = product(c, u.token, product_id).value("stock", std::int64_t{-1});
    return stock == 10;
  });
  BOOST_CHECK_MESSAGE(stock == 10, "stock not released by the cancel: " << stock << " of 10");

  // A second cancel is refused (409) or acknowledged as a replay; either way nothing changes.
  const auto again = c.del("/orders/" + p.order_id, {bearer(u.token)});
  BOOST_CHECK_MESSAGE(again.status == 409 || again.status == 200 || again.status == 202,
                      "expected 409 or an idempotent 2xx from " << again.describe());
  const auto still = c.get("/orders/" + p.order_id, {bearer(u.token)});
  BOOST_CHECK_MESSAGE(str(still.json_body(), "status") == "CANCELLED", still.describe());
  ht::check_problem(c.del("/orders/no-such-order-" + ht::random_token(6), {bearer(u.token)}), 404);
}

BOOST_AUTO_TEST_CASE(a_declined_payment_compensates_and_cancels_the_order) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("decline");
  // 7 × 1,500,000 = 10,500,000, above the default decline limit of 10,000,000.
  auto body = ht::seed_order_body();
  body["items"][0]["quantity"] = 7;
  const auto p = ht::place_order(c, u.token, body);
  const auto saga = ht::wait_saga_status(c, u.token, p.correlation_id, "COMPENSATED");
  BOOST_CHECK_MESSAGE(str(saga.json_body(), "status") == "COMPENSATED", saga.describe());
  const auto o = ht::wait_order_status(c, u.token, p.order_id, "CANCELLED");
  BOOST_CHECK_MESSAGE(str(o.json_body(), "status") == "CANCELLED", o.describe());
  BOOST_CHECK_MESSAGE(!str(o.json_body(), "failureReason").empty(),
                      "a cancelled order names its failureReason: " << o.describe());
  check_mentions(wait_mentions(c, "/trace/correlation/" + ht::url_encode(p.correlation_id), u.token,
                               {"PaymentFailed", "InventoryReleased"}),
                 {"PaymentFailed", "InventoryReleased"});
}

BOOST_AUTO_TEST_CASE(client_prices_must_match_the_catalog_and_products_must_exist) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("price");
  auto cheap = ht::seed_order_body();
  cheap["items"][0]["price"] = 1;
  ht::check_problem(c.post("/orders", cheap, {bearer(u.token)}), 422);
  auto unknown = ht::seed_order_body();
  unknown["items"][0]["productId"] = "no-such-product-" + ht::random_token(6);
  ht::check_problem(c.post("/orders", unknown, {bearer(u.token)}), 422);
  // Neither left an order behind; a valid one afterwards is the only one listed.
  const auto p = ht::place_order(c, u.token, ht::small_order_body());
  ht::wait_order_status(c, u.token, p.order_id, "CONFIRMED");
  ht::response raw;
  std::size_t count = 0;
  ht::eventually(10s, [&] {
    count = ht::list_orders(c, u.token, &raw).size();
    return count >= 1;
  });
  BOOST_CHECK_MESSAGE(count == 1, "expected exactly the one valid order: " << raw.describe());

  // Known products' prices are cached after the first order; the check still applies to them.
  auto cheap_mouse = ht::small_order_body();
  cheap_mouse["items"][0]["price"] = 98999;
  ht::check_problem(c.post("/orders", cheap_mouse, {bearer(u.token)}), 422, "items[0].price");
  // An id that was unknown is not remembered as unknown: once registered, it can be ordered.
  const ht::header_list admin{bearer(node.admin_token())};
  const auto later = "p-later-" + ht::random_token(8);
  auto later_order = ht::small_order_body();
  later_order["items"][0]["productId"] = later;
  later_order["items"][0]["price"] = 1234;
  ht::check_problem(c.post("/orders", later_order, {bearer(u.token)}), 422, "items[0].productId");
  ht::require_status(
      c.post("/products",
             json{{"productId", later}, {"name", "Later"}, {"price", 1234}, {"stock", 5}}, admin),
      201);
  const auto placed_later = ht::place_order(c, u.token, later_order);
  ht::wait_order_status(c, u.token, placed_later.order_id, "CONFIRMED");
}

// GET /saga/status reads the sagas view, which lags the journal (here by up to 5 s); a saga
// that is not in it yet is found through the journal and answered from its actor.
BOOST_AUTO_TEST_CASE(saga_status_right_after_post_is_served_while_the_view_lags) {
  ht::node_options o;
  o.name = "lagging-views";
  o.extra_args = {"--projection-batch-interval-ms", "5000"};
  ht::http_node node(o);
  auto c = node.make_client();
  const auto u = node.new_customer("lag");
  const auto other = node.new_customer("lag-other");
  for (int i = 0; i < 3; ++i) {
    const auto p = ht::place_order(c, u.token, ht::small_order_body());
    const auto r = c.get("/saga/status/" + p.correlation_id, {bearer(u.token)});
    ht::require_status(r, 200);
    const auto j = ht::require_json(r);
    BOOST_TEST(ht::str(j, "sagaId") == p.saga_id);
    BOOST_TEST(ht::str(j, "correlationId") == p.correlation_id);
    BOOST_TEST(ht::str(j, "orderId") == p.order_id);
    const auto status = ht::str(j, "status");
    BOOST_TEST((status == "RUNNING" || status == "COMPLETED"), status);
    BOOST_TEST(j.at("steps").size() == 3u);
    ht::check_problem(c.get("/saga/status/" + p.correlation_id, {bearer(other.token)}), 404);
    ht::require_status(c.get("/saga/status/" + p.correlation_id, {bearer(node.admin_token())}),
                       200);
  }
}

BOOST_AUTO_TEST_CASE(unknown_orders_and_sagas_are_404) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("unknown");
  const auto missing = "missing-" + ht::random_token(8);
  ht::check_problem(c.get("/orders/" + missing, {bearer(u.token)}), 404);
  ht::check_problem(c.get("/saga/status/" + missing, {bearer(u.token)}), 404);
  ht::check_problem(c.get("/trace/correlation/" + missing, {bearer(u.token)}), 404);
  ht::check_problem(c.get("/trace/order/" + missing, {bearer(u.token)}), 404);
  const ht::header_list admin{bearer(node.admin_token())};
  ht::check_problem(c.put("/orders/" + missing + "/confirm", "", admin), 404);
  ht::check_problem(c.post("/saga/retry/" + missing, std::string(), admin), 404);
  ht::check_problem(c.post("/saga/compensate/" + missing, std::string(), admin), 404);
  ht::check_problem(c.get("/products/" + missing, admin), 404);
}

BOOST_AUTO_TEST_CASE(products_create_read_list_restock_as_admin) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("catalog");
  const ht::header_list admin{bearer(node.admin_token())};
  const auto id = "p-" + ht::random_token(10);
  const json body{{"productId", id}, {"name", "키보드 Keyboard"}, {"price", 45000}, {"stock", 20}};
  const auto created = c.post("/products", body, admin);
  ht::require_status(created, 201);
  ht::check_problem(c.post("/products", body, admin), 409);

  const auto got = c.get("/products/" + id, {bearer(u.token)});
  ht::require_status(got, 200);
  const auto j = ht::require_json(got);
  BOOST_CHECK_EQUAL(str(j, "productId"), id);
  BOOST_CHECK_MESSAGE(str(j, "name") == "키보드 Keyboard", got.describe());
  BOOST_CHECK_MESSAGE(j.value("price", std::int64_t{0}) == 45000, got.describe());
  BOOST_CHECK_MESSAGE(j.value("stock", std::int64_t{0}) == 20, got.describe());
  BOOST_CHECK_MESSAGE(j.contains("reserved") && j.value("reserved", std::int64_t{-1}) == 0,
                      got.describe());

  const auto restock = c.post("/products/" + id + "/restock", json{{"quantity", 5}}, admin);
  BOOST_CHECK_MESSAGE(restock.status >= 200 && restock.status < 300,
                      "expected 2xx from " << restock.describe());
  BOOST_CHECK_MESSAGE(product(c, u.token, id).value("stock", std::int64_t{0}) == 25,
                      "restock of 5 did not raise the stock to 25");
  ht::check_problem(c.post("/products/" + id + "/restock", json{{"quantity", 0}}, admin), 422,
                    "quantity");
  ht::check_problem(
      c.post("/products/missing-" + ht::random_token(6) + "/restock", json{{"quantity", 1}}, admin),
      404);
  ht::check_problem(c.post("/products",
                           json{{"productId", "p-" + ht::random_token(6)},
                                {"name", "Bad"},
                                {"price", -5},
                                {"stock", 1}},
                           admin),
                    422, "price");

  // The list (read model) shows the demo catalog and, eventually, the new product.
  ht::response list;
  const bool shown = ht::eventually(10s, [&] {
    list = c.get("/products?limit=1000", {bearer(u.token)});
    if (list.status != 200) return false;
    bool has_new = false;
    bool has_seed = false;
    for (const auto& item : ht::list_items(list.json_body())) {
      has_new = has_new || (str(item, "productId") == id && item.value("stock", 0) == 25);
      has_seed = has_seed ||
                 (str(item, "productId") == "product-1" && str(item, "name") == "MacBook Pro" &&
                  item.value("price", std::int64_t{0}) == 1500000);
    }
    return has_new && has_seed;
  });
  BOOST_CHECK_MESSAGE(shown, "GET /products never listed product-1 and "
                                 << id << " (stock 25): " << list.describe());
}

// A node whose simulated gateway takes 3 s per charge, so that a saga is reliably still
// RUNNING while the test confirms or compensates it by hand.
BOOST_AUTO_TEST_CASE(admin_confirms_compensates_and_retries_sagas) {
  ht::node_options o;
  o.name = "slow-gateway";
  o.extra_args = {"--payment-latency-ms", "3000"};
  ht::http_node node(o);
  auto c = node.make_client();
  const auto u = node.new_customer("admin-ops");
  const ht::header_list admin{bearer(node.admin_token())};

  // Manual confirmation of a PENDING order.
  const auto a = ht::place_order(c, u.token, ht::small_order_body());
  const auto confirm = c.put("/orders/" + a.order_id + "/confirm", "", admin);
  BOOST_CHECK_MESSAGE(confirm.status == 200 || confirm.status == 202,
                      "expected 200/202 from " << confirm.describe());
  const auto a_now = c.get("/orders/" + a.order_id, {bearer(u.token)});
  BOOST_CHECK_MESSAGE(
      str(a_now.json_body(), "status") == "CONFIRMED",
      "confirm did not confirm at once (GET reads the aggregate): " << a_now.describe());
  const auto again = c.put("/orders/" + a.order_id + "/confirm", "", admin);
  BOOST_CHECK_MESSAGE(again.status == 409 || again.status == 200,
                      "expected 409 or an idempotent 200 from " << again.describe());

  // A running saga is listed as active, then compensated by hand.
  const auto b = ht::place_order(c, u.token, ht::small_order_body());
  ht::response active;
  const bool listed = ht::eventually(2500ms, [&] {
    active = c.get("/saga/active", admin);
    return active.status == 200 && active.body.find(b.saga_id) != std::string::npos;
  });
  BOOST_CHECK_MESSAGE(listed, "running saga " << b.saga_id << " not in " << active.describe());
  const auto flows = c.get("/trace/active-flows", admin);
  ht::check_status(flows, 200);
  const auto compensate =
      c.post("/saga/compensate/" + b.saga_id, json{{"reason", "operator test"}}, admin);
  BOOST_CHECK_MESSAGE(compensate.status == 200 || compensate.status == 202,
                      "expected 200/202 from " << compensate.describe());
  const auto b_saga = ht::wait_saga_status(c, u.token, b.correlation_id, "COMPENSATED");
  BOOST_CHECK_MESSAGE(str(b_saga.json_body(), "status") == "COMPENSATED", b_saga.describe());
  const auto b_order = ht::wait_order_status(c, u.token, b.order_id, "CANCELLED");
  BOOST_CHECK_MESSAGE(str(b_order.json_body(), "status") == "CANCELLED", b_order.describe());

  // Saga A (confirmed by hand) still completes; a completed saga cannot be retried or
  // compensated.
  const auto a_saga = ht::wait_saga_status(c, u.token, a.correlation_id, "COMPLETED");
  BOOST_CHECK_MESSAGE(str(a_saga.json_body(), "status") == "COMPLETED", a_saga.describe());
  ht::check_problem(c.post("/saga/retry/" + a.saga_id, std::string(), admin), 409);
  ht::check_problem(c.post("/saga/compensate/" + a.saga_id, std::string(), admin), 409);
  // Once nothing runs, the saga is no longer active.
  ht::eventually(10s, [&] {
    active = c.get("/saga/active", admin);
    return active.status == 200 && active.body.find(b.saga_id) == std::string::npos;
  });
  BOOST_CHECK_MESSAGE(active.body.find(b.saga_id) == std::string::npos,
                      "compensated saga still active: " << active.describe());

  const auto stopped = node.stop();
  BOOST_CHECK_MESSAGE(stopped && stopped->exited && stopped->code == 0,
                      "node did not stop cleanly on SIGTERM: "
                          << (stopped ? stopped->describe() : std::string("running")) << "\n"
                          << node.log_tail());
}

BOOST_AUTO_TEST_SUITE_END()

// Request validation over HTTP against a real saga-node: each rule of issue 4 answers a
// problem+json naming the field (400 malformed, 422 otherwise), the boundaries just inside are
// accepted, oversized bodies are 413 and non-JSON content types 415; refused bodies create no
// order.
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

json item(int quantity = 1) {
  return json{{"productId", "product-2"},
              {"productName", "Magic Mouse"},
              {"quantity", quantity},
              {"price", 99000}};
}

json order_with(const json& items, const std::string& address = "Seoul") {
  return json{{"items", items}, {"shippingAddress", address}};
}

struct fixture {
  fixture() : node(ht::shared_node()), c(node.make_client()), u(node.new_customer("valid")) {}

  ht::response post(const std::string& body, ht::header_list extra = {}) {
    extra.push_back(bearer(u.token));
    return c.post("/orders", body, extra);
  }
  ht::response post(const json& body) { return post(body.dump()); }

  ht::http_node& node;
  ht::client c;
  ht::user u;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http_validation, fixture)

BOOST_AUTO_TEST_CASE(malformed_json_and_non_objects_are_400) {
  ht::check_problem(post(std::string("{\"items\": [")), 400);
  ht::check_problem(post(std::string("{\"items\": [], }")), 400);
  ht::check_problem(post(std::string("not json at all")), 400);
  ht::check_problem(post(std::string("")), 400);
  ht::check_problem(post(std::string("[1, 2, 3]")), 400);
  ht::check_problem(post(std::string("\"a string\"")), 400);
}

BOOST_AUTO_TEST_CASE(wrong_types_name_the_field) {
  auto quantity_text = order_with(json::array({item()}));
  quantity_text["items"][0]["quantity"] = "1";
  ht::check_problem(post(quantity_text), 422, "items[0].quantity");

  auto fractional_price = order_with(json::array({item()}));
  fractional_price["items"][0]["price"] = 99000.5;
  ht::check_problem(post(fractional_price), 422, "items[0].price");

  auto numeric_id = order_with(json::array({item()}));
  numeric_id["items"][0]["productId"] = 2;
  ht::check_problem(post(numeric_id), 422, "items[0].productId");

  ht::check_problem(post(json{{"items", "product-2"}, {"shippingAddress", "Seoul"}}), 422, "items");
  ht::check_problem(post(json{{"items", json::array({item()})}, {"shippingAddress", 123}}), 422,
                    "shippingAddress");
  ht::check_problem(post(json{{"items", json::array({"product-2"})}, {"shippingAddress", "x"}}),
                    422, "items[0]");
  auto second_bad = order_with(json::array({item(), item()}));
  second_bad["items"][1]["quantity"] = nullptr;
  ht::check_problem(post(second_bad), 422, "items[1].quantity");
}

BOOST_AUTO_TEST_CASE(missing_fields_name_the_field) {
  ht::check_problem(post(json{{"shippingAddress", "Seoul"}}), 422, "items");
  ht::check_problem(post(json{{"items", json::array({item()})}}), 422, "shippingAddress");
  for (const char* field : {"productId", "productName", "quantity", "price"}) {
    auto body = order_with(json::array({item()}));
    body["items"][0].erase(field);
    ht::check_problem(post(body), 422, std::string("items[0].") + field);
  }
}

BOOST_AUTO_TEST_CASE(item_count_and_quantity_bounds) {
  ht::check_problem(post(order_with(json::array())), 422, "items");
  ht::check_problem(post(order_with(json::array({item(0)}))), 422, "items[0].quantity");
  ht::check_problem(post(order_with(json::array({item(-1)}))), 422, "items[0].quantity");
  ht::check_problem(post(order_with(json::array({item(1001)}))), 422, "items[0].quantity");
  // Lines must name distinct products (one line per product), so the 100-line order uses 100
  // products made for it.
  const ht::header_list admin{bearer(node.admin_token())};
  const auto tag = ht::random_token(6);
  json many = json::array();
  for (int i = 0; i < 101; ++i) {
    const auto id = "bulk-" + tag + "-" + std::to_string(i);
    many.push_back(json{{"productId", id}, {"productName", id}, {"quantity", 1}, {"price", 10}});
  }
  ht::check_problem(post(order_with(many)), 422, "items");

  // Just inside the bounds: accepted.
  ht::check_status(post(order_with(json::array({item(1000)}))), 202);
  many.erase(many.end() - 1);
  for (const auto& line : many) {
    ht::require_status(c.post("/products",
                              json{{"productId", line["productId"]},
                                   {"name", line["productName"]},
                                   {"price", 10},
                                   {"stock", 5}},
                              admin),
                       201);
  }
  ht::check_status(post(order_with(many)), 202);
}

BOOST_AUTO_TEST_CASE(strings_over_1_kib_are_refused_and_1_kib_is_accepted) {
  ht::check_problem(post(order_with(json::array({item()}), std::string(1025, 'a'))), 422,
                    "shippingAddress");
  auto long_name = order_with(json::array({item()}));
  long_name["items"][0]["productName"] = std::string(1025, 'n');
  ht::check_problem(post(long_name), 422, "items[0].productName");
  // 1,025 bytes of UTF-8 (341 three-byte Hangul syllables + 2 ASCII) is over, counted in bytes.
  std::string hangul;
  for (int i = 0; i < 341; ++i) hangul += "가";
  ht::check_problem(post(order_with(json::array({item()}), hangul + "ab")), 422, "shippingAddress");
  ht::check_status(post(order_with(json::array({item()}), hangul + "a")), 202);
  ht::check_status(post(order_with(json::array({item()}), std::string(1024, 'a'))), 202);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_refused) {
  const std::string body = R"({"items":[{"productId":"product-2","productName":"Magic Mouse",)"
                           R"("quantity":1,"price":99000}],"shippingAddress":"bad )" +
                           std::string("\xC3\x28") + "\"}";
  const auto r = post(body);
  BOOST_CHECK_MESSAGE(r.status == 400 || r.status == 422,
                      "expected 400/422 for invalid UTF-8 from " << r.describe());
}

BOOST_AUTO_TEST_CASE(server_owned_fields_are_refused_by_name_and_other_unknown_fields_ignored) {
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"status", "CONFIRMED"},
                                                 {"total", 1},
                                                 {"customerId", "someone-else"},
                                                 {"version", 7},
                                                 {"orderId", "chosen-id"},
                                                 {"sagaId", "chosen-saga"}}) {
    auto body = order_with(json::array({item()}));
    body[field] = value;
    ht::check_problem(post(body), 422, field);
  }
  auto extra = order_with(json::array({item()}));
  extra["note"] = "leave at the door";
  ht::check_status(post(extra), 202);
}

BOOST_AUTO_TEST_CASE(refused_bodies_create_no_order) {
  ht::check_problem(post(order_with(json::array({item(0)}))), 422, "items[0].quantity");
  ht::check_problem(post(std::string("{")), 400);
  auto owned = order_with(json::array({item()}));
  owned["status"] = "CONFIRMED";
  ht::check_problem(post(owned), 422, "status");
  // A marker order afterwards is the only one the list ever shows.
  const auto p = ht::place_order(c, u.token, ht::small_order_body());
  ht::wait_order_status(c, u.token, p.order_id, "CONFIRMED");
  ht::response raw;
  std::size_t count = 0;
  ht::eventually(10s, [&] {
    count = ht::list_orders(c, u.token, &raw).size();
    return count >= 1;
  });
  BOOST_CHECK_MESSAGE(count == 1, "refused bodies left orders behind: " << raw.describe());
}

BOOST_AUTO_TEST_CASE(bodies_over_max_body_bytes_are_413) {
  // The default http.max_body_bytes is 1 MiB; 64 KiB more of otherwise valid JSON.
  auto big = order_with(json::array({item()}));
  big["note"] = std::string((1u << 20) + (64u << 10), 'x');
  ht::check_problem(post(big), 413);
  // The connection is still usable (or re-opened) afterwards.
  ht::check_status(post(order_with(json::array({item()}))), 202);
}

BOOST_AUTO_TEST_CASE(non_json_content_types_are_415) {
  const auto body = order_with(json::array({item()})).dump();
  ht::check_problem(post(body, {{"Content-Type", "text/plain"}}), 415);
  ht::check_problem(post(body, {{"Content-Type", "application/x-www-form-urlencoded"}}), 415);
  ht::check_problem(post(body, {{"Content-Type", "application/xml"}}), 415);
  ht::check_problem(c.post("/auth/login", std::string(R"({"email":"a@b.c","password":"x"})"),
                           {{"Content-Type", "text/plain"}}),
                    415);
  ht::check_status(post(body, {{"Content-Type", "application/json; charset=utf-8"}}), 202);
}

BOOST_AUTO_TEST_SUITE_END()

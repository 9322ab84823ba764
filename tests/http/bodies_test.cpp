// Request body specs: every validation rule answers its status and names the field; valid bodies
// (Korean address included) come through byte for byte; the order fingerprint is canonical.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "http/bodies.hpp"

namespace h = saga::http;
using json = nlohmann::json;

namespace {

const std::string korean_address = "서울특별시 강남구 테헤란로 123, 4층 (역삼동) 🚚";

json valid_order() {
  return {{"items",
           {{{"productId", "product-1"},
             {"productName", "MacBook Pro"},
             {"quantity", 1},
             {"price", 1500000}},
            {{"productId", "product-2"},
             {"productName", "매직 마우스"},
             {"quantity", 2},
             {"price", 99000}}}},
          {"shippingAddress", korean_address}};
}

template <class T>
void expect_problem(const h::parsed<T>& r, int status, const std::string& field,
                    std::string_view fragment = {}) {
  BOOST_REQUIRE_MESSAGE(!r.has_value(), "expected a " << status << " naming " << field);
  BOOST_TEST(r.error().status == status);
  BOOST_TEST_MESSAGE(r.error().detail);
  BOOST_TEST(r.error().detail.find(field) != std::string::npos, r.error().detail);
  if (!fragment.empty())
    BOOST_TEST(r.error().detail.find(fragment) != std::string::npos, r.error().detail);
  if (status == 422) {
    bool named = false;
    for (const auto& [f, message] : r.error().errors) named = named || f == field;
    BOOST_TEST(named, "errors[] lacks " << field);
  }
}

h::parsed<h::order_body> order_with(const std::string& pointer, const json& value) {
  json j = valid_order();
  j[json::json_pointer(pointer)] = value;
  return h::parse_order_body(j.dump());
}

h::parsed<h::order_body> order_without(const std::string& parent, const std::string& key) {
  json j = valid_order();
  j[json::json_pointer(parent)].erase(key);
  return h::parse_order_body(j.dump());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bodies)

// ---- orders: the good path ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(valid_order_parses_and_korean_address_round_trips_exactly) {
  const auto r = h::parse_order_body(valid_order().dump());
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->shipping_address == korean_address);
  BOOST_REQUIRE(r->items.size() == 2u);
  BOOST_TEST(r->items[0].product_id == "product-1");
  BOOST_TEST(r->items[0].product_name == "MacBook Pro");
  BOOST_TEST(r->items[0].quantity == 1);
  BOOST_TEST(r->items[0].unit_price == 1500000);
  BOOST_TEST(r->items[1].product_name == "매직 마우스");
  BOOST_TEST(r->items[1].quantity == 2);
}

BOOST_AUTO_TEST_CASE(unicode_escapes_decode_to_the_same_utf8) {
  // The address spelled with \u escapes (surrogate pair for the emoji) parses to the same bytes.
  const std::string text =
      R"({"items":[{"productId":"p-1","productName":"x","quantity":1,"price":5}],)"
      R"("shippingAddress":"\uc11c\uc6b8 \ud83d\ude9a"})";
  const auto r = h::parse_order_body(text);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->shipping_address == "서울 🚚");
}

BOOST_AUTO_TEST_CASE(unknown_client_fields_are_ignored) {
  json j = valid_order();
  j["note"] = "leave at the door";
  j["items"][0]["color"] = "silver";
  BOOST_TEST(h::parse_order_body(j.dump()).has_value());
}

BOOST_AUTO_TEST_CASE(boundary_values_are_accepted) {
  json j = valid_order();
  j["items"][0]["quantity"] = 1000;
  j["items"][1]["quantity"] = 1;
  j["shippingAddress"] = std::string(h::max_string_bytes, 'a');
  j["items"][0]["price"] = INT64_MAX;
  BOOST_TEST(h::parse_order_body(j.dump()).has_value());
  json many = valid_order();
  many["items"] = json::array();
  for (int i = 0; i < 100; ++i)
    many["items"].push_back({{"productId", "p-" + std::to_string(i)},
                             {"productName", "n"},
                             {"quantity", 1},
                             {"price", 1}});
  BOOST_TEST(h::parse_order_body(many.dump()).has_value());
}

// ---- 400: not JSON / not an object ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_json_is_400) {
  const auto r = h::parse_order_body(R"({"items": [)");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().status == 400);
  BOOST_TEST(r.error().detail.find("malformed JSON") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_body_is_400) {
  const auto r = h::parse_order_body("  \n");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().status == 400);
}

BOOST_AUTO_TEST_CASE(non_object_json_is_400) {
  for (const char* text : {"[]", "42", "\"order\"", "null", "true"}) {
    const auto r = h::parse_order_body(text);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().status == 400, text);
    BOOST_TEST(r.error().detail.find("JSON object") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_400_without_recursing) {
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const auto r = h::parse_order_body(deep);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().status == 400);
  BOOST_TEST(r.error().detail.find("nested") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(trailing_garbage_is_400) {
  const auto r = h::parse_order_body(valid_order().dump() + " x");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().status == 400);
}

// ---- 422: order rules -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(missing_items_is_422) {
  json j = valid_order();
  j.erase("items");
  expect_problem(h::parse_order_body(j.dump()), 422, "items", "is required");
}

BOOST_AUTO_TEST_CASE(items_not_an_array_is_422) {
  expect_problem(order_with("/items", "all of them"), 422, "items", "must be an array");
}

BOOST_AUTO_TEST_CASE(empty_items_is_422) {
  expect_problem(order_with("/items", json::array()), 422, "items", "must not be empty");
}

BOOST_AUTO_TEST_CASE(more_than_100_items_is_422) {
  json items = json::array();
  for (int i = 0; i < 101; ++i)
    items.push_back({{"productId", "p-" + std::to_string(i)},
                     {"productName", "n"},
                     {"quantity", 1},
                     {"price", 1}});
  expect_problem(order_with("/items", items), 422, "items", "at most 100");
}

BOOST_AUTO_TEST_CASE(item_not_an_object_is_422) {
  expect_problem(order_with("/items/1", 7), 422, "items[1]", "must be an object");
}

BOOST_AUTO_TEST_CASE(missing_product_id_is_422) {
  expect_problem(order_without("/items/1", "productId"), 422, "items[1].productId", "is required");
}

BOOST_AUTO_TEST_CASE(product_id_of_wrong_type_is_422) {
  expect_problem(order_with("/items/0/productId", 12), 422, "items[0].productId", "string");
}

BOOST_AUTO_TEST_CASE(product_id_with_path_characters_is_422) {
  expect_problem(order_with("/items/0/productId", "a/b"), 422, "items[0].productId");
  expect_problem(order_with("/items/0/productId", ""), 422, "items[0].productId");
}

BOOST_AUTO_TEST_CASE(missing_product_name_is_422) {
  expect_problem(order_without("/items/0", "productName"), 422, "items[0].productName",
                 "is required");
}

BOOST_AUTO_TEST_CASE(empty_product_name_is_422) {
  expect_problem(order_with("/items/0/productName", "  "), 422, "items[0].productName",
                 "must not be empty");
}

BOOST_AUTO_TEST_CASE(missing_quantity_is_422) {
  expect_problem(order_without("/items/1", "quantity"), 422, "items[1].quantity", "is required");
}

BOOST_AUTO_TEST_CASE(zero_quantity_is_422) {
  expect_problem(order_with("/items/1/quantity", 0), 422, "items[1].quantity",
                 "must be between 1 and 1000");
}

BOOST_AUTO_TEST_CASE(negative_quantity_is_422) {
  expect_problem(order_with("/items/0/quantity", -3), 422, "items[0].quantity",
                 "must be between 1 and 1000");
}

BOOST_AUTO_TEST_CASE(quantity_over_1000_is_422) {
  expect_problem(order_with("/items/1/quantity", 1001), 422, "items[1].quantity",
                 "must be between 1 and 1000");
}

BOOST_AUTO_TEST_CASE(fractional_quantity_is_422) {
  expect_problem(order_with("/items/0/quantity", 1.5), 422, "items[0].quantity", "integer");
  // 2.0 is a float in JSON: also refused (no silent truncation or rounding).
  expect_problem(h::parse_order_body(
                     R"({"items":[{"productId":"p","productName":"n","quantity":2.0,"price":1}],)"
                     R"("shippingAddress":"x"})"),
                 422, "items[0].quantity", "integer");
}

BOOST_AUTO_TEST_CASE(string_quantity_is_422) {
  expect_problem(order_with("/items/0/quantity", "2"), 422, "items[0].quantity",
                 "must be an integer");
}

BOOST_AUTO_TEST_CASE(boolean_quantity_is_422) {
  expect_problem(order_with("/items/0/quantity", true), 422, "items[0].quantity",
                 "must be an integer");
}

BOOST_AUTO_TEST_CASE(null_quantity_is_422) {
  expect_problem(order_with("/items/0/quantity", nullptr), 422, "items[0].quantity",
                 "must be an integer");
}

BOOST_AUTO_TEST_CASE(missing_price_is_422) {
  expect_problem(order_without("/items/0", "price"), 422, "items[0].price", "is required");
}

BOOST_AUTO_TEST_CASE(negative_price_is_422) {
  expect_problem(order_with("/items/0/price", -1), 422, "items[0].price", "at least 1");
}

BOOST_AUTO_TEST_CASE(zero_price_is_422) {
  expect_problem(order_with("/items/0/price", 0), 422, "items[0].price", "at least 1");
}

BOOST_AUTO_TEST_CASE(fractional_price_is_422) {
  expect_problem(order_with("/items/1/price", 99.5), 422, "items[1].price", "integer");
}

BOOST_AUTO_TEST_CASE(string_price_is_422) {
  expect_problem(order_with("/items/1/price", "99000"), 422, "items[1].price",
                 "must be an integer");
}

BOOST_AUTO_TEST_CASE(price_beyond_int64_is_422) {
  const std::string base =
      R"({"shippingAddress":"x","items":[{"productId":"p","productName":"n","quantity":1,"price":)";
  // Fits in uint64 but not int64.
  expect_problem(h::parse_order_body(base + "9223372036854775808}]}"), 422, "items[0].price",
                 "64-bit");
  // Beyond uint64: the JSON parser turns it into a float; still named as out of range.
  expect_problem(h::parse_order_body(base + "123456789012345678901234567890}]}"), 422,
                 "items[0].price", "64-bit");
}

BOOST_AUTO_TEST_CASE(duplicate_product_id_is_422) {
  json j = valid_order();
  j["items"][1]["productId"] = "product-1";
  expect_problem(h::parse_order_body(j.dump()), 422, "items[1].productId", "duplicate");
}

BOOST_AUTO_TEST_CASE(missing_shipping_address_is_422) {
  json j = valid_order();
  j.erase("shippingAddress");
  expect_problem(h::parse_order_body(j.dump()), 422, "shippingAddress", "is required");
}

BOOST_AUTO_TEST_CASE(shipping_address_of_wrong_type_is_422) {
  expect_problem(order_with("/shippingAddress", json::object()), 422, "shippingAddress",
                 "must be a string");
}

BOOST_AUTO_TEST_CASE(empty_shipping_address_is_422) {
  expect_problem(order_with("/shippingAddress", ""), 422, "shippingAddress", "must not be empty");
}

BOOST_AUTO_TEST_CASE(string_over_1kib_is_422) {
  expect_problem(order_with("/shippingAddress", std::string(1025, 'a')), 422, "shippingAddress",
                 "at most 1024 bytes");
  expect_problem(order_with("/items/0/productName", std::string(2000, 'n')), 422,
                 "items[0].productName", "at most 1024 bytes");
}

BOOST_AUTO_TEST_CASE(string_over_1kib_in_an_ignored_field_is_422) {
  json j = valid_order();
  j["notes"] = {{"gift", std::string(1025, 'g')}};
  expect_problem(h::parse_order_body(j.dump()), 422, "notes.gift", "at most 1024 bytes");
}

BOOST_AUTO_TEST_CASE(multibyte_string_limit_counts_bytes) {
  // 342 three-byte Hangul syllables = 1026 bytes although only 342 characters.
  std::string address;
  for (int i = 0; i < 342; ++i) address += "한";
  expect_problem(order_with("/shippingAddress", address), 422, "shippingAddress", "1024 bytes");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_422_naming_the_field) {
  const std::string text =
      "{\"items\":[{\"productId\":\"p\",\"productName\":\"bad \xC3\x28 name\",\"quantity\":1,"
      "\"price\":1}],\"shippingAddress\":\"ok\"}";
  expect_problem(h::parse_order_body(text), 422, "items[0].productName", "UTF-8");
  // Overlong encoding of '/', a lone continuation byte and a surrogate encoded in UTF-8.
  for (const std::string bad : {"\xC0\xAF", "\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    const std::string t =
        "{\"items\":[{\"productId\":\"p\",\"productName\":\"n\",\"quantity\":1,"
        "\"price\":1}],\"shippingAddress\":\"a" +
        bad + "b\"}";
    expect_problem(h::parse_order_body(t), 422, "shippingAddress", "UTF-8");
  }
}

BOOST_AUTO_TEST_CASE(each_server_owned_field_is_422) {
  for (const char* field : {"status", "total", "customerId", "version", "orderId", "sagaId",
                            "createdAt", "updatedAt"}) {
    json j = valid_order();
    j[field] =
        field == std::string("total") || field == std::string("version") ? json(1) : json("x");
    expect_problem(h::parse_order_body(j.dump()), 422, field, "set by the server");
  }
}

BOOST_AUTO_TEST_CASE(every_error_is_reported_at_once) {
  json j = valid_order();
  j["items"][0]["quantity"] = 0;
  j["items"][1]["price"] = -5;
  j.erase("shippingAddress");
  const auto r = h::parse_order_body(j.dump());
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().status == 422);
  BOOST_REQUIRE(r.error().errors.size() == 3u);
  BOOST_TEST(r.error().errors[0].first == "items[0].quantity");
  BOOST_TEST(r.error().errors[1].first == "items[1].price");
  BOOST_TEST(r.error().errors[2].first == "shippingAddress");
  BOOST_TEST(r.error().detail.find("and 2 more") != std::string::npos);
}

// ---- fingerprint ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fingerprint_is_stable_across_spellings_of_the_same_body) {
  const auto a = h::parse_order_body(valid_order().dump());
  // Same content: other member order, whitespace, \u escapes and item order.
  const std::string b_text = R"({ "shippingAddress": ")" + korean_address + R"(",
    "items": [ {"price": 99000, "quantity": 2, "productName": "\ub9e4\uc9c1 \ub9c8\uc6b0\uc2a4",
                "productId": "product-2"},
               {"productId": "product-1", "quantity": 1, "price": 1500000,
                "productName": "MacBook Pro"} ] })";
  const auto b = h::parse_order_body(b_text);
  BOOST_REQUIRE(a.has_value());
  BOOST_REQUIRE(b.has_value());
  const std::string fa = h::order_fingerprint(*a);
  BOOST_TEST(fa.size() == 64u);
  BOOST_TEST(fa.find_first_not_of("0123456789abcdef") == std::string::npos);
  BOOST_TEST(fa == h::order_fingerprint(*b));
  BOOST_TEST(fa == h::order_fingerprint(*a));
}

BOOST_AUTO_TEST_CASE(fingerprint_differs_when_any_field_differs) {
  const auto base = *h::parse_order_body(valid_order().dump());
  const std::string fp = h::order_fingerprint(base);
  auto changed = base;
  changed.items[1].quantity = 3;
  BOOST_TEST(h::order_fingerprint(changed) != fp);
  changed = base;
  changed.items[0].unit_price += 1;
  BOOST_TEST(h::order_fingerprint(changed) != fp);
  changed = base;
  changed.items[0].product_name = "MacBook Air";
  BOOST_TEST(h::order_fingerprint(changed) != fp);
  changed = base;
  changed.items[0].product_id = "product-9";
  BOOST_TEST(h::order_fingerprint(changed) != fp);
  changed = base;
  changed.shipping_address += " ";
  BOOST_TEST(h::order_fingerprint(changed) != fp);
  changed = base;
  changed.items.pop_back();
  BOOST_TEST(h::order_fingerprint(changed) != fp);
  // Field boundaries are unambiguous: moving a character between fields changes the hash.
  h::order_body x{{{"ab", "c", 1, 1}}, "addr"};
  h::order_body y{{{"a", "bc", 1, 1}}, "addr"};
  BOOST_TEST(h::order_fingerprint(x) != h::order_fingerprint(y));
}

// ---- products, restock ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(valid_product_parses) {
  const auto r = h::parse_product_body(
      R"({"productId":"product-1","name":"MacBook Pro","price":1500000,"stock":10})");
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->product_id == "product-1");
  BOOST_TEST(r->name == "MacBook Pro");
  BOOST_TEST(r->price == 1500000);
  BOOST_TEST(r->stock == 10);
}

BOOST_AUTO_TEST_CASE(product_rules_name_the_field) {
  const json base = {{"productId", "p-1"}, {"name", "n"}, {"price", 10}, {"stock", 0}};
  const auto with = [&](const char* key, const json& v) {
    json j = base;
    j[key] = v;
    return h::parse_product_body(j.dump());
  };
  const auto without = [&](const char* key) {
    json j = base;
    j.erase(key);
    return h::parse_product_body(j.dump());
  };
  expect_problem(without("productId"), 422, "productId", "is required");
  expect_problem(with("productId", "has space"), 422, "productId");
  expect_problem(with("productId", std::string(129, 'x')), 422, "productId");
  expect_problem(without("name"), 422, "name", "is required");
  expect_problem(with("name", ""), 422, "name", "must not be empty");
  expect_problem(with("price", 0), 422, "price", "at least 1");
  expect_problem(with("price", "10"), 422, "price", "integer");
  expect_problem(without("stock"), 422, "stock", "is required");
  expect_problem(with("stock", -1), 422, "stock", "between 0 and");
  expect_problem(with("stock", 1000000001), 422, "stock", "between 0 and");
  expect_problem(with("stock", 1.25), 422, "stock", "integer");
  expect_problem(with("reserved", 3), 422, "reserved", "set by the server");
  expect_problem(h::parse_product_body("[1]"), 400, "JSON object");
}

BOOST_AUTO_TEST_CASE(restock_rules_name_the_field) {
  BOOST_TEST(h::parse_restock_body(R"({"quantity":25})")->quantity == 25);
  expect_problem(h::parse_restock_body("{}"), 422, "quantity", "is required");
  expect_problem(h::parse_restock_body(R"({"quantity":0})"), 422, "quantity", "between 1 and");
  expect_problem(h::parse_restock_body(R"({"quantity":-4})"), 422, "quantity", "between 1 and");
  expect_problem(h::parse_restock_body(R"({"quantity":"4"})"), 422, "quantity", "integer");
  expect_problem(h::parse_restock_body(R"({"quantity":4.5})"), 422, "quantity", "integer");
  expect_problem(h::parse_restock_body(R"({"quantity":1000000001})"), 422, "quantity");
  expect_problem(h::parse_restock_body(R"({"quantity":)"), 400, "malformed JSON");
}

// ---- auth -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(valid_register_parses) {
  const auto r = h::parse_register_body(
      R"({"email":"kim@example.com","password":"correct horse","name":"김철수"})");
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->email == "kim@example.com");
  BOOST_TEST(r->password == "correct horse");
  BOOST_TEST(r->name == "김철수");
}

BOOST_AUTO_TEST_CASE(register_rules_name_the_field) {
  const json base = {{"email", "a@b.co"}, {"password", "12345678"}, {"name", "A"}};
  const auto with = [&](const char* key, const json& v) {
    json j = base;
    j[key] = v;
    return h::parse_register_body(j.dump());
  };
  const auto without = [&](const char* key) {
    json j = base;
    j.erase(key);
    return h::parse_register_body(j.dump());
  };
  expect_problem(without("email"), 422, "email", "is required");
  for (const char* bad :
       {"plain", "@b.co", "a@", "a@b", "a b@c.de", "a@b..c", "a@.b.c", "a@b.c.", "a@b@c.de"})
    expect_problem(with("email", bad), 422, "email", "email address");
  expect_problem(with("email", std::string(250, 'a') + "@b.co"), 422, "email");
  expect_problem(without("password"), 422, "password", "is required");
  expect_problem(with("password", "1234567"), 422, "password", "at least 8");
  expect_problem(with("password", std::string(1025, 'p')), 422, "password", "at most 1024");
  expect_problem(with("password", 12345678), 422, "password", "must be a string");
  expect_problem(without("name"), 422, "name", "is required");
  expect_problem(with("name", " "), 422, "name", "must not be empty");
  expect_problem(with("role", "admin"), 422, "role", "set by the server");
  BOOST_TEST(with("password", std::string(1024, 'p')).has_value());
}

BOOST_AUTO_TEST_CASE(login_rules_name_the_field) {
  const auto ok = h::parse_login_body(R"({"email":"a@b.co","password":"x"})");
  BOOST_REQUIRE(ok.has_value());
  BOOST_TEST(ok->email == "a@b.co");
  BOOST_TEST(ok->password == "x");
  expect_problem(h::parse_login_body(R"({"password":"x"})"), 422, "email", "is required");
  expect_problem(h::parse_login_body(R"({"email":"a@b.co"})"), 422, "password", "is required");
  expect_problem(h::parse_login_body(R"({"email":"a@b.co","password":""})"), 422, "password",
                 "must not be empty");
  expect_problem(h::parse_login_body(R"({"email":1,"password":"x"})"), 422, "email",
                 "must be a string");
  expect_problem(h::parse_login_body("email=a@b.co"), 400, "malformed JSON");
}

// ---- reason ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reason_body_is_optional) {
  BOOST_TEST(h::parse_reason_body("")->reason == "");
  BOOST_TEST(h::parse_reason_body(" \r\n")->reason == "");
  BOOST_TEST(h::parse_reason_body("{}")->reason == "");
  BOOST_TEST(h::parse_reason_body(R"({"reason":null})")->reason == "");
  BOOST_TEST(h::parse_reason_body(R"({"reason":"고객 요청"})")->reason == "고객 요청");
}

BOOST_AUTO_TEST_CASE(reason_rules_name_the_field) {
  expect_problem(h::parse_reason_body(R"({"reason":5})"), 422, "reason", "must be a string");
  expect_problem(h::parse_reason_body(json{{"reason", std::string(1025, 'r')}}.dump()), 422,
                 "reason", "at most 1024");
  expect_problem(h::parse_reason_body("[\"x\"]"), 400, "JSON object");
  expect_problem(h::parse_reason_body("{"), 400, "malformed JSON");
}

BOOST_AUTO_TEST_SUITE_END()

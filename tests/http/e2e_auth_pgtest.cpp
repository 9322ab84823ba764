// Authentication and authorization over HTTP against a real saga-node: register/login, tokens
// that must be refused (missing, expired, wrong signature, alg none, wrong issuer/audience),
// customers confined to their own orders, sagas and traces, admin routes closed to customers.
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

/// The header and claims of a token the server issued.
struct decoded_token {
  json header;
  json claims;
};

decoded_token decode(const std::string& token) {
  const auto dot = token.find('.');
  BOOST_REQUIRE(dot != std::string::npos);
  const auto header = ht::base64url_decode(token.substr(0, dot));
  BOOST_REQUIRE(header.has_value());
  return {json::parse(*header, nullptr, false), ht::jwt_claims(token)};
}

/// GET /orders with `token` (a customer route with no side effect).
ht::response get_orders(ht::client& c, const std::string& token) {
  return c.get("/orders", {bearer(token)});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_auth)

BOOST_AUTO_TEST_CASE(register_then_login_answers_the_documented_shapes) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto email = "Shape-" + ht::random_token(8) + "@Example.test";
  const auto reg = c.post("/auth/register",
                          json{{"email", email}, {"password", "correct horse"}, {"name", "Kim"}});
  ht::require_status(reg, 201);
  const auto body = ht::require_json(reg);
  BOOST_CHECK_MESSAGE(!str(body, "userId").empty(), "no userId: " << reg.describe());
  BOOST_CHECK_MESSAGE(ht::iequals(str(body, "email"), email), "email differs: " << reg.describe());
  BOOST_CHECK_MESSAGE(str(body, "name") == "Kim", "name differs: " << reg.describe());
  BOOST_CHECK_MESSAGE(
      body.find("password") == body.end() && body.find("passwordHash") == body.end(),
      "the register answer leaks the password: " << reg.describe());

  // Emails are case-insensitive: the same address in other case is taken, and logs in.
  std::string upper = email;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  ht::check_problem(
      c.post("/auth/register", json{{"email", upper}, {"password", "another pass"}, {"name", "X"}}),
      409);

  const auto login = c.post("/auth/login", json{{"email", upper}, {"password", "correct horse"}});
  ht::require_status(login, 200);
  const auto tok = ht::require_json(login);
  BOOST_CHECK_MESSAGE(!str(tok, "accessToken").empty(), login.describe());
  BOOST_CHECK_MESSAGE(str(tok, "tokenType") == "Bearer", login.describe());
  BOOST_CHECK_MESSAGE(tok.value("expiresIn", 0) > 0,
                      "expiresIn not positive: " << login.describe());
  const auto claims = ht::jwt_claims(str(tok, "accessToken"));
  BOOST_CHECK_MESSAGE(str(claims, "sub") == str(body, "userId"),
                      "token sub is not the userId: " << claims.dump());
  BOOST_CHECK_MESSAGE(claims.value("exp", std::int64_t{0}) > ht::unix_now(),
                      "token exp not in the future: " << claims.dump());

  // The token works on a customer route.
  ht::check_status(get_orders(c, str(tok, "accessToken")), 200);
}

BOOST_AUTO_TEST_CASE(bad_credentials_are_401_problems) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("badcred");
  ht::check_problem(c.post("/auth/login", json{{"email", u.email}, {"password", "wrong-password"}}),
                    401);
  ht::check_problem(
      c.post("/auth/login", json{{"email", "nobody-" + ht::random_token(6) + "@example.test"},
                                 {"password", "whatever-password"}}),
      401);
}

BOOST_AUTO_TEST_CASE(register_validation_names_the_field) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  ht::check_problem(
      c.post("/auth/register",
             json{{"email", "not-an-email"}, {"password", "long enough"}, {"name", "A"}}),
      422, "email");
  ht::check_problem(
      c.post("/auth/register", json{{"email", "short-" + ht::random_token(6) + "@example.test"},
                                    {"password", "short"},
                                    {"name", "A"}}),
      422, "password");
  ht::check_problem(c.post("/auth/register", json{{"password", "long enough"}, {"name", "A"}}), 422,
                    "email");
  ht::check_problem(c.post("/auth/register", std::string("{\"email\": ")), 400);
}

BOOST_AUTO_TEST_CASE(missing_or_malformed_authorization_is_401) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  ht::check_problem(c.get("/orders"), 401);
  ht::check_problem(c.post("/orders", ht::small_order_body()), 401);
  ht::check_problem(c.get("/orders", {{"Authorization", "Bearer"}}), 401);
  ht::check_problem(c.get("/orders", {{"Authorization", "Basic dXNlcjpwYXNz"}}), 401);
  ht::check_problem(c.get("/orders", {{"Authorization", "Bearer not.a.jwt"}}), 401);
  ht::check_problem(c.get("/saga/active"), 401);  // an admin route without a token: 401, not 403
}

BOOST_AUTO_TEST_CASE(forged_tokens_are_401_and_a_faithful_copy_is_accepted) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("forge");
  const auto issued = decode(u.token);
  BOOST_REQUIRE_MESSAGE(str(issued.header, "alg") == "HS256",
                        "server tokens must be HS256: " << issued.header.dump());

  // Control: re-signing the server's own header and claims with the configured secret gives a
  // token the server accepts — so every refusal below is due to the one thing changed.
  const auto copy = ht::make_jwt(issued.header, issued.claims, node.jwt_secret());
  ht::check_status(get_orders(c, copy), 200);

  auto expired = issued.claims;
  expired["iat"] = ht::unix_now() - 7200;
  expired["exp"] = ht::unix_now() - 3600;
  ht::check_problem(get_orders(c, ht::make_jwt(issued.header, expired, node.jwt_secret())), 401);

  ht::check_problem(get_orders(c, ht::make_jwt(issued.header, issued.claims,
                                               "some-other-secret-0123456789abcdef")),
                    401);

  // alg none with an empty signature, and with the original signature kept.
  const json none_header{{"alg", "none"}, {"typ", "JWT"}};
  const auto unsigned_token = ht::make_jwt(none_header, issued.claims, "");
  ht::check_problem(get_orders(c, unsigned_token), 401);
  const auto signature = u.token.substr(u.token.rfind('.') + 1);
  ht::check_problem(get_orders(c, unsigned_token + signature), 401);

  // A tampered claim under the original signature.
  auto admin_claims = issued.claims;
  admin_claims["role"] = "admin";
  const auto tampered = ht::base64url_encode(issued.header.dump()) + "." +
                        ht::base64url_encode(admin_claims.dump()) + "." + signature;
  ht::check_problem(c.get("/saga/active", {bearer(tampered)}), 401);

  auto wrong_issuer = issued.claims;
  wrong_issuer["iss"] = "someone-else";
  ht::check_problem(get_orders(c, ht::make_jwt(issued.header, wrong_issuer, node.jwt_secret())),
                    401);
  auto wrong_audience = issued.claims;
  wrong_audience["aud"] = "another-api";
  ht::check_problem(get_orders(c, ht::make_jwt(issued.header, wrong_audience, node.jwt_secret())),
                    401);
}

BOOST_AUTO_TEST_CASE(customers_on_admin_routes_get_403) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("not-admin");
  const auto p = ht::place_order(c, u.token, ht::small_order_body());
  const ht::header_list auth{bearer(u.token)};
  ht::check_problem(c.post("/products",
                           json{{"productId", "p-" + ht::random_token(6)},
                                {"name", "Forbidden"},
                                {"price", 100},
                                {"stock", 1}},
                           auth),
                    403);
  ht::check_problem(c.post("/products/product-1/restock", json{{"quantity", 1}}, auth), 403);
  ht::check_problem(c.put("/orders/" + p.order_id + "/confirm", "", auth), 403);
  ht::check_problem(c.get("/saga/active", auth), 403);
  ht::check_problem(c.post("/saga/retry/" + p.saga_id, std::string(), auth), 403);
  ht::check_problem(c.post("/saga/compensate/" + p.saga_id, std::string(), auth), 403);
  ht::check_problem(c.get("/trace/active-flows", auth), 403);
  ht::check_problem(c.get("/trace/events", auth), 403);

  // And the admin passes the same gates.
  const ht::header_list admin{bearer(node.admin_token())};
  ht::check_status(c.get("/saga/active", admin), 200);
  ht::check_status(c.get("/trace/active-flows", admin), 200);
  ht::check_status(c.get("/trace/events?limit=5", admin), 200);
}

BOOST_AUTO_TEST_CASE(a_customer_cannot_see_or_touch_another_customers_order) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto owner = node.new_customer("owner");
  const auto other = node.new_customer("other");
  const auto p = ht::place_order(c, owner.token, ht::small_order_body());
  const ht::header_list as_other{bearer(other.token)};
  // First the owner sees everything (read models included), so the 404s below are refusals,
  // not lag.
  const auto owner_saga = ht::wait_saga_status(c, owner.token, p.correlation_id, "COMPLETED");
  BOOST_REQUIRE_MESSAGE(str(owner_saga.json_body(), "status") == "COMPLETED",
                        owner_saga.describe());
  ht::require_status(c.get("/orders/" + p.order_id, {bearer(owner.token)}), 200);
  ht::require_status(
      c.get("/trace/correlation/" + ht::url_encode(p.correlation_id), {bearer(owner.token)}), 200);
  ht::require_status(c.get("/trace/order/" + p.order_id, {bearer(owner.token)}), 200);

  ht::check_problem(c.get("/orders/" + p.order_id, as_other), 404);
  ht::check_problem(c.get("/saga/status/" + ht::url_encode(p.correlation_id), as_other), 404);
  ht::check_problem(c.get("/trace/correlation/" + ht::url_encode(p.correlation_id), as_other), 404);
  ht::check_problem(c.get("/trace/order/" + p.order_id, as_other), 404);
  ht::check_problem(c.del("/orders/" + p.order_id, as_other), 404);

  // The other customer's list does not show it, the owner's does (eventually), and the failed
  // cancel did nothing.
  const auto owner_view = ht::wait_order_status(c, owner.token, p.order_id, "CONFIRMED");
  BOOST_CHECK_MESSAGE(str(owner_view.json_body(), "status") == "CONFIRMED",
                      "owner's order did not reach CONFIRMED: " << owner_view.describe());
  ht::response raw;
  for (const auto& o : ht::list_orders(c, other.token, &raw)) {
    BOOST_CHECK_MESSAGE(str(o, "orderId") != p.order_id,
                        "another customer's order is listed: " << raw.describe());
  }
  bool listed = ht::eventually(10s, [&] {
    for (const auto& o : ht::list_orders(c, owner.token, &raw)) {
      if (str(o, "orderId") == p.order_id) return true;
    }
    return false;
  });
  BOOST_CHECK_MESSAGE(listed, "the owner's list never showed the order: " << raw.describe());

  // The admin sees every order.
  ht::check_status(c.get("/orders/" + p.order_id, {bearer(node.admin_token())}), 200);
}

BOOST_AUTO_TEST_CASE(a_shared_correlation_id_shows_each_customer_only_their_own_flow) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto a = node.new_customer("cid-a");
  const auto b = node.new_customer("cid-b");
  const auto cid = "shared-cid-" + ht::random_token(12);
  const auto pa = ht::place_order(c, a.token, ht::small_order_body(), {{"X-Correlation-Id", cid}});
  const auto pb = ht::place_order(c, b.token, ht::small_order_body(), {{"X-Correlation-Id", cid}});
  ht::wait_order_status(c, a.token, pa.order_id, "CONFIRMED");
  ht::wait_order_status(c, b.token, pb.order_id, "CONFIRMED");
  const auto path = "/trace/correlation/" + ht::url_encode(cid);
  ht::response seen_by_a;
  ht::eventually(10s, [&] {
    seen_by_a = c.get(path, {bearer(a.token)});
    return seen_by_a.body.find("OrderConfirmed") != std::string::npos;
  });
  ht::require_status(seen_by_a, 200);
  BOOST_CHECK_MESSAGE(seen_by_a.body.find(pa.order_id) != std::string::npos,
                      "A's trace lacks A's order: " << seen_by_a.describe());
  BOOST_CHECK_MESSAGE(seen_by_a.body.find(pb.order_id) == std::string::npos,
                      "A's trace shows B's order: " << seen_by_a.describe());
  const auto seen_by_b = c.get(path, {bearer(b.token)});
  ht::require_status(seen_by_b, 200);
  BOOST_CHECK_MESSAGE(seen_by_b.body.find(pb.order_id) != std::string::npos &&
                          seen_by_b.body.find(pa.order_id) == std::string::npos,
                      "B's trace is not exactly B's flow: " << seen_by_b.describe());
  const auto seen_by_admin = c.get(path, {bearer(node.admin_token())});
  BOOST_CHECK_MESSAGE(seen_by_admin.body.find(pa.order_id) != std::string::npos &&
                          seen_by_admin.body.find(pb.order_id) != std::string::npos,
                      "the admin's trace lacks one of the flows: " << seen_by_admin.describe());
}

BOOST_AUTO_TEST_SUITE_END()

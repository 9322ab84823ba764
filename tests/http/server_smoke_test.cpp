// The HTTP server on an ephemeral port over an in-memory journal (no PostgreSQL: the read side
// and the user service point at a closed port, so their routes answer 503): routing, correlation
// ids, problems, auth and roles, 413/415, products and orders through the runtime, the
// Idempotency-Key scheme, and the request deadline with a late answer dropped.
#include <sys/socket.h>
#include <sys/time.h>

#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "actors/read_side.hpp"
#include "http/auth/jwt.hpp"
#include "http/auth/user_service.hpp"
#include "http/metrics.hpp"
#include "http/server.hpp"
#include "tests/actors/support.hpp"

namespace {

namespace sh = saga::http;
namespace sa = saga::actors;
using json = nlohmann::json;
using namespace std::chrono_literals;

// Nothing listens there: connections are refused at once.
const std::string dead_database = "postgresql://saga@127.0.0.1:1/none?connect_timeout=1";
const std::string secret = "smoke-test-secret";

struct reply {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::string body;

  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  [[nodiscard]] json json_body() const { return json::parse(body, nullptr, false); }
  [[nodiscard]] std::string describe() const {
    return std::to_string(status) + " " + body.substr(0, 400);
  }
};

using header_list = std::vector<std::pair<std::string, std::string>>;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// One HTTP/1.1 exchange on a fresh connection (Connection: close), chunked bodies decoded.
reply call(std::uint16_t port, const std::string& method, const std::string& path,
           const std::string& body = {}, const header_list& headers = {}) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::address_v4::loopback(), port});
  timeval limit{10, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  asio::write(socket, asio::buffer(request));
  std::string raw;
  asio::error_code ec;
  char buf[8192];
  for (;;) {
    const auto n = socket.read_some(asio::buffer(buf), ec);
    raw.append(buf, n);
    if (ec) break;
  }
  reply r;
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return r;
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() > 12) r.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    r.headers[lower(line.substr(0, colon))] = value;
  }
  std::string rest = raw.substr(head_end + 4);
  if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
    std::size_t pos = 0;
    while (pos < rest.size()) {
      const auto eol = rest.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const auto size = std::stoul(rest.substr(pos, eol - pos), nullptr, 16);
      if (size == 0) break;
      r.body += rest.substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
  } else {
    r.body = std::move(rest);
  }
  return r;
}

std::pair<std::string, std::string> bearer(const std::string& token) {
  return {"Authorization", "Bearer " + token};
}
const std::pair<std::string, std::string> json_type{"Content-Type", "application/json"};

/// Checks an RFC 7807 answer: status, content type, correlation id in header and body.
void check_problem(const reply& r, int status) {
  BOOST_CHECK_MESSAGE(r.status == status, "expected " << status << ", got " << r.describe());
  BOOST_CHECK_MESSAGE(r.header("content-type").find("application/problem+json") == 0,
                      "not a problem: " << r.header("content-type"));
  const auto j = r.json_body();
  BOOST_CHECK_MESSAGE(j.is_object() && j.value("status", 0) == status, r.describe());
  BOOST_CHECK_MESSAGE(!r.header("x-correlation-id").empty() &&
                          j.value("correlationId", std::string()) == r.header("x-correlation-id"),
                      "correlation id missing or different: " << r.describe());
}

/// A server over a fresh in-memory journal; read side and user service have no database.
struct server_fixture {
  explicit server_fixture(sh::server_options options = {}) {
    auto o = sa::test::fast_options();
    rt = std::make_unique<sa::runtime>(o, journal.factory());
    sa::read_side_options ro;
    ro.database_url = dead_database;
    ro.query_timeout = 1s;
    ro.retry_backoff = 500ms;
    ro.stop_timeout = 2s;
    reads = std::make_unique<sa::read_side>(rt->system(), ro);
    users = std::make_unique<sh::auth::user_service>(dead_database, "", 1);
    options.host = "127.0.0.1";
    options.port = 0;
    options.node_id = "smoke";
    options.jwt.secret = secret;
    server = std::make_unique<sh::server>(options, *rt, *reads, *users, metrics);
    server->start();
    port = server->port();
  }
  ~server_fixture() {
    server.reset();
    reads.reset();
    users.reset();
    rt.reset();
  }

  [[nodiscard]] std::string token(const std::string& user, saga::domain::user::role role,
                                  std::int64_t now_offset_s = 0,
                                  const std::string& key = secret) const {
    sh::auth::jwt_settings s;
    s.secret = key;
    sh::auth::jwt_codec codec(s);
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() +
                     now_offset_s;
    return codec.issue(sh::auth::principal{user, user + "@example.com", role, now + 3600}, now);
  }
  [[nodiscard]] std::string customer(const std::string& user) const {
    return token(user, saga::domain::user::role::customer);
  }
  [[nodiscard]] std::string admin() const {
    return token("admin-1", saga::domain::user::role::admin);
  }

  reply register_product(const std::string& id, std::int64_t price, std::int64_t stock) {
    return call(
        port, "POST", "/products",
        json{{"productId", id}, {"name", "Widget " + id}, {"price", price}, {"stock", stock}}
            .dump(),
        {bearer(admin()), json_type});
  }

  sa::test::shared_journal journal;
  std::unique_ptr<sa::runtime> rt;
  std::unique_ptr<sa::read_side> reads;
  std::unique_ptr<sh::auth::user_service> users;
  sh::metrics_registry metrics;
  std::unique_ptr<sh::server> server;
  std::uint16_t port = 0;
};

json order_body(const std::string& product, std::int64_t price, std::int64_t quantity = 1) {
  return {{"items", json::array({{{"productId", product},
                                  {"productName", "Widget"},
                                  {"quantity", quantity},
                                  {"price", price}}})},
          {"shippingAddress", "서울특별시 강남구 테헤란로 123"}};
}

const std::regex uuid_shape("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");

}  // namespace

BOOST_AUTO_TEST_SUITE(http_server_smoke)

BOOST_AUTO_TEST_CASE(routes_correlation_ids_and_problems) {
  server_fixture f;
  BOOST_REQUIRE_NE(f.port, 0);
  auto health = call(f.port, "GET", "/health", {}, {{"X-Correlation-Id", "smoke-cid-1"}});
  BOOST_CHECK_EQUAL(health.status, 200);
  BOOST_CHECK_EQUAL(health.json_body().value("status", std::string()), "ok");
  BOOST_CHECK_EQUAL(health.header("x-correlation-id"), "smoke-cid-1");

  // Unsafe or absurd ids are replaced by a fresh UUID.
  for (const std::string& bad :
       {std::string(200, 'a'), std::string("has space"), std::string("ü")}) {
    auto r = call(f.port, "GET", "/health", {}, {{"X-Correlation-Id", bad}});
    BOOST_CHECK_MESSAGE(std::regex_match(r.header("x-correlation-id"), uuid_shape),
                        "'" << bad << "' gave " << r.header("x-correlation-id"));
  }

  auto missing = call(f.port, "GET", "/no/such/route", {}, {{"X-Correlation-Id", "smoke-404"}});
  check_problem(missing, 404);
  BOOST_CHECK_EQUAL(missing.header("x-correlation-id"), "smoke-404");
  auto wrong_method = call(f.port, "PATCH", "/health");
  check_problem(wrong_method, 405);
  BOOST_CHECK_EQUAL(wrong_method.header("allow"), "GET");
  check_problem(call(f.port, "POST", "/orders/x/unknown", "{}", {json_type}), 404);

  auto doc = call(f.port, "GET", "/api-json");
  BOOST_CHECK_EQUAL(doc.status, 200);
  BOOST_CHECK(doc.json_body().contains("openapi"));
  auto page = call(f.port, "GET", "/api");
  BOOST_CHECK_EQUAL(page.status, 200);
  BOOST_CHECK(page.header("content-type").find("text/html") == 0);

  // Read-model routes answer 503 problems while the database is unreachable.
  check_problem(call(f.port, "GET", "/products", {}, {bearer(f.customer("u1"))}), 503);
  auto detailed = call(f.port, "GET", "/health/detailed");
  BOOST_CHECK_EQUAL(detailed.status, 503);
  const auto d = detailed.json_body();
  BOOST_CHECK_MESSAGE(d.is_object() && d["database"].value("reachable", true) == false &&
                          d.contains("migrations") && d.contains("uptimeSeconds") &&
                          d["actors"].contains("order"),
                      detailed.describe());

  auto metrics = call(f.port, "GET", "/metrics");
  BOOST_CHECK_EQUAL(metrics.status, 200);
  BOOST_CHECK(metrics.header("content-type").find("text/plain") == 0);
  BOOST_CHECK_MESSAGE(metrics.body.find("route=\"/no/such/route\"") == std::string::npos,
                      "a raw path became a metrics label");
  BOOST_CHECK_MESSAGE(metrics.body.find("route=\"/health\"") != std::string::npos,
                      "GET /health not counted");
  BOOST_CHECK_MESSAGE(metrics.body.find("saga_actors_active{type=\"order\"}") != std::string::npos,
                      "no actor gauges");
  BOOST_CHECK_MESSAGE(
      f.metrics.value("saga_http_requests_total",
                      {{"route", "unmatched"}, {"method", "GET"}, {"status", "404"}}) >= 1,
      "the 404 was not counted under route=unmatched");
}

BOOST_AUTO_TEST_CASE(tokens_roles_and_the_account_service) {
  server_fixture f;
  auto none = call(f.port, "GET", "/orders");
  check_problem(none, 401);
  BOOST_CHECK(none.header("www-authenticate").find("Bearer") == 0);
  check_problem(call(f.port, "GET", "/orders", {}, {{"Authorization", "Basic abc"}}), 401);
  check_problem(call(f.port, "GET", "/orders", {}, {bearer("not.a.token")}), 401);
  check_problem(
      call(f.port, "GET", "/orders", {},
           {bearer(f.token("u1", saga::domain::user::role::customer, 0, "other-secret"))}),
      401);
  check_problem(call(f.port, "GET", "/orders", {},
                     {bearer(f.token("u1", saga::domain::user::role::customer, -7200))}),
                401);
  // A customer on an admin route.
  check_problem(call(f.port, "GET", "/saga/active", {}, {bearer(f.customer("u1"))}), 403);
  check_problem(call(f.port, "POST", "/products", "{}", {bearer(f.customer("u1")), json_type}),
                403);
  // The account service has no database here: a 503 problem, not a hang or a 500.
  check_problem(
      call(f.port, "POST", "/auth/register",
           R"({"email":"a@example.com","password":"long enough","name":"A"})", {json_type}),
      503);
  // Validation happens before the service is asked.
  auto bad = call(f.port, "POST", "/auth/register", R"({"email":"nope","password":"x","name":"A"})",
                  {json_type});
  check_problem(bad, 422);
}

BOOST_AUTO_TEST_CASE(body_size_and_content_type) {
  sh::server_options o;
  o.max_body_bytes = 1024;
  server_fixture f(o);
  const auto token = f.customer("u1");
  auto big = order_body("p1", 100).dump();
  big.insert(big.size() - 1, ",\"padding\":\"" + std::string(2000, 'x') + "\"");
  check_problem(call(f.port, "POST", "/orders", big, {bearer(token), json_type}), 413);
  check_problem(call(f.port, "POST", "/orders", order_body("p1", 100).dump(),
                     {bearer(token), {"Content-Type", "text/plain"}}),
                415);
  check_problem(call(f.port, "POST", "/orders", order_body("p1", 100).dump(), {bearer(token)}),
                415);
  check_problem(call(f.port, "POST", "/auth/login", R"({"email":"a@b.c","password":"12345678"})",
                     {{"Content-Type", "application/x-www-form-urlencoded"}}),
                415);
  check_problem(call(f.port, "POST", "/orders", "{not json", {bearer(token), json_type}), 400);
  // Parameters of the JSON media type are fine.
  auto ok_type = call(f.port, "POST", "/orders", "{not json",
                      {bearer(token), {"Content-Type", "application/json; charset=utf-8"}});
  check_problem(ok_type, 400);
}

BOOST_AUTO_TEST_CASE(products_orders_ownership_and_idempotency) {
  server_fixture f;
  const auto admin = f.admin();
  auto created = f.register_product("p1", 1500, 10);
  BOOST_REQUIRE_MESSAGE(created.status == 201, created.describe());
  BOOST_CHECK_EQUAL(created.json_body().value("stock", -1), 10);
  check_problem(f.register_product("p1", 1500, 10), 409);
  auto restocked =
      call(f.port, "POST", "/products/p1/restock", R"({"quantity":5})", {bearer(admin), json_type});
  BOOST_CHECK_MESSAGE(restocked.status == 200 && restocked.json_body().value("stock", -1) == 15,
                      restocked.describe());
  check_problem(call(f.port, "POST", "/products/none/restock", R"({"quantity":5})",
                     {bearer(admin), json_type}),
                404);

  const auto alice = f.customer("alice");
  const auto bob = f.customer("bob");
  auto product = call(f.port, "GET", "/products/p1", {}, {bearer(alice)});
  BOOST_CHECK_MESSAGE(product.status == 200 && product.json_body().value("price", 0) == 1500 &&
                          product.json_body().contains("reserved"),
                      product.describe());
  check_problem(call(f.port, "GET", "/products/none", {}, {bearer(alice)}), 404);

  auto cheap =
      call(f.port, "POST", "/orders", order_body("p1", 1).dump(), {bearer(alice), json_type});
  check_problem(cheap, 422);
  BOOST_CHECK_MESSAGE(cheap.body.find("items[0].price") != std::string::npos, cheap.describe());
  check_problem(
      call(f.port, "POST", "/orders", order_body("ghost", 1).dump(), {bearer(alice), json_type}),
      422);

  auto placed = call(f.port, "POST", "/orders", order_body("p1", 1500).dump(),
                     {bearer(alice), json_type, {"X-Correlation-Id", "smoke-order-1"}});
  BOOST_REQUIRE_MESSAGE(placed.status == 202, placed.describe());
  const auto p = placed.json_body();
  BOOST_CHECK_EQUAL(p.value("correlationId", std::string()), "smoke-order-1");
  BOOST_CHECK_EQUAL(p.value("status", std::string()), "PENDING");
  BOOST_CHECK(!p.value("sagaId", std::string()).empty());
  const auto order_id = p.value("orderId", std::string());

  auto mine = call(f.port, "GET", "/orders/" + order_id, {}, {bearer(alice)});
  BOOST_REQUIRE_MESSAGE(mine.status == 200, mine.describe());
  const auto o = mine.json_body();
  BOOST_CHECK_EQUAL(o.value("customerId", std::string()), "alice");
  BOOST_CHECK_EQUAL(o.value("correlationId", std::string()), "smoke-order-1");
  BOOST_CHECK_EQUAL(o.value("total", 0), 1500);
  BOOST_CHECK_EQUAL(o.value("shippingAddress", std::string()), "서울특별시 강남구 테헤란로 123");
  check_problem(call(f.port, "GET", "/orders/" + order_id, {}, {bearer(bob)}), 404);
  check_problem(call(f.port, "DELETE", "/orders/" + order_id, {}, {bearer(bob)}), 404);
  BOOST_CHECK_EQUAL(call(f.port, "GET", "/orders/" + order_id, {}, {bearer(admin)}).status, 200);

  // Idempotency-Key: same body → the same 202 body; another body → 422; keys are per user.
  const header_list keyed{bearer(alice), json_type, {"Idempotency-Key", "key-1"}};
  auto first = call(f.port, "POST", "/orders", order_body("p1", 1500, 2).dump(), keyed);
  auto again = call(f.port, "POST", "/orders", order_body("p1", 1500, 2).dump(), keyed);
  BOOST_REQUIRE_MESSAGE(first.status == 202, first.describe());
  BOOST_CHECK_MESSAGE(again.status == 202 && again.json_body() == first.json_body(),
                      first.describe() << " vs " << again.describe());
  check_problem(call(f.port, "POST", "/orders", order_body("p1", 1500, 3).dump(), keyed), 422);
  auto bobs = call(f.port, "POST", "/orders", order_body("p1", 1500, 2).dump(),
                   {bearer(bob), json_type, {"Idempotency-Key", "key-1"}});
  BOOST_REQUIRE_MESSAGE(bobs.status == 202, bobs.describe());
  BOOST_CHECK_NE(bobs.json_body().value("orderId", std::string()),
                 first.json_body().value("orderId", std::string()));
  check_problem(call(f.port, "POST", "/orders", order_body("p1", 1500).dump(),
                     {bearer(alice), json_type, {"Idempotency-Key", std::string(300, 'k')}}),
                400);

  // Admin confirmation of a pending order answers at once; a second is a conflict.
  auto other =
      call(f.port, "POST", "/orders", order_body("p1", 1500).dump(), {bearer(bob), json_type});
  BOOST_REQUIRE_EQUAL(other.status, 202);
  const auto other_id = other.json_body().value("orderId", std::string());
  check_problem(call(f.port, "PUT", "/orders/missing/confirm", {}, {bearer(admin)}), 404);
  check_problem(call(f.port, "PUT", "/orders/" + other_id + "/confirm", {}, {bearer(bob)}), 403);
}

BOOST_AUTO_TEST_CASE(a_late_answer_gets_503_and_is_dropped_when_it_comes) {
  sh::server_options o;
  o.request_timeout = 300ms;
  server_fixture f(o);
  f.journal.faults->stall_ms = 1500;
  f.journal.faults->stall_next = 1;
  const auto started = std::chrono::steady_clock::now();
  auto late = f.register_product("slow", 700, 3);
  const auto took = std::chrono::steady_clock::now() - started;
  check_problem(late, 503);
  BOOST_CHECK(!late.header("retry-after").empty());
  BOOST_CHECK_MESSAGE(took < 1200ms, "the deadline did not answer before the journal");
  // The work went on: once the journal answers, the product exists; the server still serves.
  BOOST_CHECK(sa::test::eventually(
      [&] {
        return call(f.port, "GET", "/products/slow", {}, {bearer(f.customer("u"))}).status == 200;
      },
      5000ms));
  BOOST_CHECK_EQUAL(call(f.port, "GET", "/health").status, 200);
}

BOOST_AUTO_TEST_CASE(start_fails_clearly_when_the_port_is_taken) {
  server_fixture f;
  sh::server_options o;
  o.host = "127.0.0.1";
  o.port = f.port;
  o.jwt.secret = secret;
  sh::server second(o, *f.rt, *f.reads, *f.users, f.metrics);
  try {
    second.start();
    BOOST_ERROR("a second server bound the same port");
  } catch (const std::runtime_error& e) {
    BOOST_CHECK_MESSAGE(
        std::string(e.what()).find("127.0.0.1:" + std::to_string(f.port)) != std::string::npos,
        e.what());
  }
}

BOOST_AUTO_TEST_SUITE_END()

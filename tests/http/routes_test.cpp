// Route table specs: exactly the routes of DESIGN.md §6, unique, and the express path syntax.
#include <boost/test/unit_test.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "http/routes.hpp"

namespace h = saga::http;

BOOST_AUTO_TEST_SUITE(routes)

BOOST_AUTO_TEST_CASE(table_holds_every_route_of_the_design_once) {
  const std::set<std::string> expected{
      "POST /auth/register",
      "POST /auth/login",
      "POST /products",
      "GET /products",
      "GET /products/{id}",
      "POST /products/{id}/restock",
      "POST /orders",
      "GET /orders",
      "GET /orders/{id}",
      "DELETE /orders/{id}",
      "PUT /orders/{id}/confirm",
      "GET /saga/status/{correlationId}",
      "GET /saga/active",
      "POST /saga/retry/{sagaId}",
      "POST /saga/compensate/{sagaId}",
      "GET /trace/correlation/{correlationId}",
      "GET /trace/order/{orderId}",
      "GET /trace/active-flows",
      "GET /trace/events",
      "GET /health",
      "GET /health/detailed",
      "GET /metrics",
      "GET /api-json",
      "GET /api",
  };
  std::set<std::string> actual;
  for (const auto& r : h::routes()) {
    const bool fresh = actual.insert(std::string(r.method) + " " + std::string(r.path)).second;
    BOOST_TEST(fresh, "duplicate route " << r.method << " " << r.path);
    BOOST_TEST(!r.summary.empty());
    BOOST_TEST(!r.tag.empty());
  }
  BOOST_TEST(actual == expected);
}

BOOST_AUTO_TEST_CASE(access_levels_follow_the_design) {
  const auto who = [](const char* method, const char* path) {
    const auto* r = h::find_route(method, path);
    BOOST_REQUIRE_MESSAGE(r != nullptr, method << " " << path);
    return r->who;
  };
  BOOST_TEST((who("POST", "/auth/login") == h::access::public_));
  BOOST_TEST((who("POST", "/auth/register") == h::access::public_));
  BOOST_TEST((who("GET", "/health") == h::access::public_));
  BOOST_TEST((who("POST", "/orders") == h::access::customer));
  BOOST_TEST((who("GET", "/orders/{id}") == h::access::customer));
  BOOST_TEST((who("DELETE", "/orders/{id}") == h::access::customer));
  BOOST_TEST((who("GET", "/saga/status/{correlationId}") == h::access::customer));
  for (const auto& [method, path] :
       std::vector<std::pair<const char*, const char*>>{{"POST", "/products"},
                                                        {"POST", "/products/{id}/restock"},
                                                        {"PUT", "/orders/{id}/confirm"},
                                                        {"GET", "/saga/active"},
                                                        {"POST", "/saga/retry/{sagaId}"},
                                                        {"POST", "/saga/compensate/{sagaId}"},
                                                        {"GET", "/trace/active-flows"},
                                                        {"GET", "/trace/events"}})
    BOOST_TEST((who(method, path) == h::access::admin), method << " " << path);
  BOOST_TEST(h::find_route("PATCH", "/orders/{id}") == nullptr);
  BOOST_TEST(h::to_string(h::access::admin) == "admin");
}

BOOST_AUTO_TEST_CASE(express_path_turns_braces_into_colons) {
  BOOST_TEST(h::express_path("/orders/{id}") == "/orders/:id");
  BOOST_TEST(h::express_path("/orders/{id}/confirm") == "/orders/:id/confirm");
  BOOST_TEST(h::express_path("/saga/status/{correlationId}") == "/saga/status/:correlationId");
  BOOST_TEST(h::express_path("/health/detailed") == "/health/detailed");
  BOOST_TEST(h::express_path("/a/{x}/b/{y}") == "/a/:x/b/:y");
  BOOST_TEST(h::express_path("/broken/{x") == "/broken/{x");
}

BOOST_AUTO_TEST_CASE(path_parameters_in_order) {
  BOOST_TEST(h::path_parameters("/health").empty());
  BOOST_TEST((h::path_parameters("/saga/retry/{sagaId}") == std::vector<std::string>{"sagaId"}));
  BOOST_TEST((h::path_parameters("/a/{x}/b/{y}") == std::vector<std::string>{"x", "y"}));
}

BOOST_AUTO_TEST_SUITE_END()

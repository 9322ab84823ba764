// OpenAPI document specs: valid JSON of version 3.0.3 that documents exactly routes() (methods,
// path parameters, security), whose references all resolve; the HTML page lists every route
// without external resources.
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "http/openapi.hpp"
#include "http/routes.hpp"

namespace h = saga::http;
using json = nlohmann::json;

namespace {

const json& doc() {
  static const json d = json::parse(h::openapi_json());
  return d;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const json& op(const h::route_info& r) {
  return doc()["paths"][std::string(r.path)][lower(r.method)];
}

const json& resolve(const json& j) {
  if (!j.is_object() || !j.contains("$ref")) return j;
  return doc().at(json::json_pointer(j["$ref"].get<std::string>().substr(1)));
}

void collect_refs(const json& j, std::set<std::string>& refs) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "$ref" && it->is_string())
        refs.insert(it->get<std::string>());
      else
        collect_refs(*it, refs);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) collect_refs(e, refs);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(openapi)

BOOST_AUTO_TEST_CASE(document_is_valid_json_of_openapi_3_0_3) {
  const json parsed = json::parse(h::openapi_json(), nullptr, false);
  BOOST_REQUIRE(!parsed.is_discarded());
  BOOST_TEST(parsed.at("openapi") == "3.0.3");
  BOOST_TEST(parsed.at("info").contains("title"));
  BOOST_TEST(parsed.at("info").contains("version"));
  BOOST_TEST(parsed.at("components").at("securitySchemes").at("bearerAuth").at("scheme") ==
             "bearer");
  for (const char* schema : {"OrderRequest", "Order", "OrderAccepted", "Product", "Saga", "Problem",
                             "Token", "User", "Event"})
    BOOST_TEST(parsed["components"]["schemas"].contains(schema), schema);
}

BOOST_AUTO_TEST_CASE(every_route_is_documented_with_its_method) {
  for (const auto& r : h::routes()) {
    BOOST_TEST_CONTEXT(r.method << " " << r.path) {
      BOOST_REQUIRE(doc()["paths"].contains(std::string(r.path)));
      BOOST_REQUIRE(doc()["paths"][std::string(r.path)].contains(lower(r.method)));
      BOOST_TEST(op(r).at("summary") == std::string(r.summary));
      BOOST_TEST(!op(r).at("responses").empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(every_documented_operation_is_a_route) {
  const std::set<std::string> methods{"get",   "put",  "post",    "delete",
                                      "patch", "head", "options", "trace"};
  std::size_t operations = 0;
  for (const auto& [path, item] : doc().at("paths").items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!methods.count(method)) continue;
      ++operations;
      bool found = false;
      for (const auto& r : h::routes())
        found = found || (r.path == path && lower(r.method) == method);
      BOOST_TEST(found, method << " " << path << " is documented but not in routes()");
    }
  }
  BOOST_TEST(operations == h::routes().size());
}

BOOST_AUTO_TEST_CASE(every_path_parameter_is_declared) {
  for (const auto& r : h::routes()) {
    std::set<std::string> declared;
    for (const auto& p : op(r).at("parameters")) {
      const json& param = resolve(p);
      if (param.at("in") == "path") {
        BOOST_TEST(param.at("required") == true);
        declared.insert(param.at("name").get<std::string>());
      }
    }
    const auto names = h::path_parameters(r.path);
    BOOST_TEST((declared == std::set<std::string>(names.begin(), names.end())),
               r.method << " " << r.path);
  }
}

BOOST_AUTO_TEST_CASE(security_follows_access) {
  for (const auto& r : h::routes()) {
    const json& security = op(r).at("security");
    if (r.who == h::access::public_) {
      BOOST_TEST(security.empty(), r.path);
      // Only login answers 401 without a token (bad credentials).
      BOOST_TEST(op(r).at("responses").contains("401") == (r.path == "/auth/login"), r.path);
    } else {
      BOOST_REQUIRE(security.size() == 1u);
      BOOST_TEST(security[0].contains("bearerAuth"), r.path);
      BOOST_TEST(op(r).at("responses").contains("401"), r.path);
    }
    BOOST_TEST(op(r).at("responses").contains("403") == (r.who == h::access::admin), r.path);
  }
}

BOOST_AUTO_TEST_CASE(bodies_and_their_error_responses) {
  for (const auto& r : h::routes()) {
    const json& o = op(r);
    if (!o.contains("requestBody")) continue;
    for (const char* status : {"400", "413", "415", "422"})
      BOOST_TEST(o.at("responses").contains(status), r.method << " " << r.path << " " << status);
  }
  const auto* post_orders = h::find_route("POST", "/orders");
  BOOST_REQUIRE(post_orders != nullptr);
  const json& o = op(*post_orders);
  BOOST_TEST(o.at("responses").contains("202"));
  BOOST_TEST(o.at("responses").contains("429"));
  BOOST_TEST(o.at("requestBody").at("content").at("application/json").at("schema").at("$ref") ==
             "#/components/schemas/OrderRequest");
  bool idempotency = false;
  for (const auto& p : o.at("parameters"))
    idempotency = idempotency || resolve(p).at("name") == "Idempotency-Key";
  BOOST_TEST(idempotency);
  const auto* login = h::find_route("POST", "/auth/login");
  BOOST_REQUIRE(login != nullptr);
  BOOST_TEST(op(*login).at("responses").at("429").at("$ref") == "#/components/responses/429");
  BOOST_TEST(resolve(op(*login).at("responses").at("429")).at("headers").contains("Retry-After"));
}

BOOST_AUTO_TEST_CASE(every_reference_resolves) {
  std::set<std::string> refs;
  collect_refs(doc(), refs);
  BOOST_TEST(refs.size() > 10u);
  for (const auto& ref : refs) {
    BOOST_TEST_CONTEXT(ref) {
      BOOST_REQUIRE(ref.rfind("#/", 0) == 0u);
      BOOST_TEST(doc().contains(json::json_pointer(ref.substr(1))));
    }
  }
}

BOOST_AUTO_TEST_CASE(operation_ids_are_unique) {
  std::set<std::string> ids;
  for (const auto& r : h::routes()) {
    const std::string id = op(r).at("operationId");
    BOOST_TEST(ids.insert(id).second, id);
  }
}

BOOST_AUTO_TEST_CASE(docs_page_lists_every_route_without_external_resources) {
  const std::string html = h::docs_page_html();
  BOOST_TEST(html.rfind("<!DOCTYPE html>", 0) == 0u);
  for (const auto& r : h::routes()) {
    const std::string anchor = "id=\"" + std::string(r.method) + std::string(r.path) + "\"";
    BOOST_TEST(html.find(anchor) != std::string::npos, anchor);
  }
  BOOST_TEST(html.find("<script") == std::string::npos);
  BOOST_TEST(html.find("src=") == std::string::npos);
  BOOST_TEST(html.find("http://") == std::string::npos);
  BOOST_TEST(html.find("https://") == std::string::npos);
  // Request fields of the order body and response fields of the order are spelled out.
  for (const char* field : {"<code>items</code>", "<code>shippingAddress</code>",
                            "<code>[].productId</code>", "<code>correlationId</code>",
                            "<code>items[].quantity</code>", "<code>[].steps[].status</code>"})
    BOOST_TEST(html.find(field) != std::string::npos, field);
  BOOST_TEST(html.find("</html>") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

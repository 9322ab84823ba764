#include "http/openapi.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

#include "domain/types.hpp"
#include "http/bodies.hpp"
#include "http/routes.hpp"

namespace saga::http {

namespace {

using json = nlohmann::ordered_json;

json ref(std::string_view schema) {
  return {{"$ref", "#/components/schemas/" + std::string(schema)}};
}

json array_of(json items) { return {{"type", "array"}, {"items", std::move(items)}}; }

json str(std::string_view description = {}) {
  json j = {{"type", "string"}};
  if (!description.empty()) j["description"] = description;
  return j;
}

json integer(std::string_view description = {}) {
  json j = {{"type", "integer"}, {"format", "int64"}};
  if (!description.empty()) j["description"] = description;
  return j;
}

json object(json properties, std::vector<std::string> required = {}) {
  json j = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) j["required"] = required;
  return j;
}

json schemas() {
  const auto max_string = static_cast<std::int64_t>(max_string_bytes);
  json s;
  s["Problem"] = object(
      {{"type", str("A URI naming the problem kind, e.g. urn:saga:rejection:insufficient_stock")},
       {"title", str()},
       {"status", {{"type", "integer"}}},
       {"detail", str("What went wrong, for people")},
       {"correlationId", str("Also in the X-Correlation-Id response header")},
       {"errors", array_of(object({{"field", str("e.g. items[1].quantity")}, {"message", str()}},
                                  {"field", "message"}))}},
      {"type", "title", "status", "detail", "correlationId"});
  s["RegisterRequest"] = object(
      {{"email", {{"type", "string"}, {"format", "email"}, {"maxLength", max_email_bytes}}},
       {"password",
        {{"type", "string"}, {"minLength", min_password_bytes}, {"maxLength", max_password_bytes}}},
       {"name", {{"type", "string"}, {"minLength", 1}, {"maxLength", max_string}}}},
      {"email", "password", "name"});
  s["User"] = object({{"userId", str()}, {"email", str()}, {"name", str()}, {"role", str()}},
                     {"userId", "email", "name"});
  s["LoginRequest"] = object({{"email", str()}, {"password", str()}}, {"email", "password"});
  s["Token"] = object({{"accessToken", str("JWT (HS256); send as Authorization: Bearer <token>")},
                       {"tokenType", {{"type", "string"}, {"enum", {"Bearer"}}}},
                       {"expiresIn", {{"type", "integer"}, {"description", "seconds"}}}},
                      {"accessToken", "tokenType", "expiresIn"});
  const json id_schema = {{"type", "string"},
                          {"pattern", "^[A-Za-z0-9._:-]{1," + std::to_string(max_id_bytes) + "}$"}};
  s["ProductRequest"] =
      object({{"productId", id_schema},
              {"name", {{"type", "string"}, {"minLength", 1}, {"maxLength", max_string}}},
              {"price",
               {{"type", "integer"},
                {"format", "int64"},
                {"minimum", 1},
                {"description", "minor units (e.g. won or cents)"}}},
              {"stock",
               {{"type", "integer"},
                {"format", "int64"},
                {"minimum", 0},
                {"maximum", max_stock_quantity}}}},
             {"productId", "name", "price", "stock"});
  s["Product"] = object({{"productId", str()},
                         {"name", str()},
                         {"price", integer("minor units")},
                         {"stock", integer("available now (can be reserved)")},
                         {"reserved", integer("held by orders in progress")}},
                        {"productId", "name", "price", "stock", "reserved"});
  s["RestockRequest"] = object({{"quantity",
                                 {{"type", "integer"},
                                  {"format", "int64"},
                                  {"minimum", 1},
                                  {"maximum", max_stock_quantity}}}},
                               {"quantity"});
  s["OrderItem"] =
      object({{"productId", id_schema},
              {"productName", {{"type", "string"}, {"minLength", 1}, {"maxLength", max_string}}},
              {"quantity",
               {{"type", "integer"}, {"minimum", 1}, {"maximum", saga::domain::max_item_quantity}}},
              {"price",
               {{"type", "integer"},
                {"format", "int64"},
                {"minimum", 1},
                {"description", "unit price in minor units; must equal the catalog price"}}}},
             {"productId", "productName", "quantity", "price"});
  s["OrderRequest"] = object({{"items",
                               {{"type", "array"},
                                {"items", ref("OrderItem")},
                                {"minItems", 1},
                                {"maxItems", saga::domain::max_order_items},
                                {"description", "one item per product"}}},
                              {"shippingAddress",
                               {{"type", "string"},
                                {"minLength", 1},
                                {"maxLength", max_string},
                                {"description", "any UTF-8 text, stored exactly"}}}},
                             {"items", "shippingAddress"});
  s["OrderRequest"]["description"] =
      "Server-owned members (status, total, customerId, version, orderId, sagaId, createdAt, "
      "updatedAt) are refused with 422; other unknown members are ignored.";
  s["OrderAccepted"] = object({{"orderId", str()},
                               {"correlationId", str()},
                               {"sagaId", str()},
                               {"status", {{"type", "string"}, {"enum", {"PENDING"}}}}},
                              {"orderId", "correlationId", "sagaId", "status"});
  s["Order"] =
      object({{"orderId", str()},
              {"customerId", str()},
              {"items", array_of(ref("OrderItem"))},
              {"total", integer("computed by the server, minor units")},
              {"status", {{"type", "string"}, {"enum", {"PENDING", "CONFIRMED", "CANCELLED"}}}},
              {"shippingAddress", str()},
              {"correlationId", str()},
              {"sagaId", {{"type", "string"}, {"nullable", true}}},
              {"failureReason", {{"type", "string"}, {"nullable", true}}},
              {"createdAt", {{"type", "string"}, {"format", "date-time"}}},
              {"updatedAt", {{"type", "string"}, {"format", "date-time"}}},
              {"version", integer()}},
             {"orderId", "customerId", "items", "total", "status", "shippingAddress",
              "correlationId", "sagaId", "version"});
  s["ReasonRequest"] = object({{"reason", {{"type", "string"}, {"maxLength", max_string}}}});
  s["ReasonRequest"]["description"] = "Optional body; an empty body means no reason.";
  s["OperationResult"] = object({{"orderId", str()},
                                 {"sagaId", str()},
                                 {"status", str("the resulting status")},
                                 {"message", str()}});
  s["SagaStep"] = object({{"name", str()}, {"status", str("PENDING, RUNNING, SUCCEEDED, …")}},
                         {"name", "status"});
  s["Saga"] =
      object({{"sagaId", str()},
              {"sagaType", str()},
              {"correlationId", str()},
              {"orderId", str()},
              {"status",
               {{"type", "string"},
                {"enum", {"RUNNING", "COMPLETED", "COMPENSATING", "COMPENSATED", "FAILED"}}}},
              {"currentStep", {{"type", "string"}, {"nullable", true}}},
              {"steps", array_of(ref("SagaStep"))},
              {"failureReason", {{"type", "string"}, {"nullable", true}}},
              {"compensationReason", {{"type", "string"}, {"nullable", true}}},
              {"startedAt", {{"type", "string"}, {"format", "date-time"}}},
              {"updatedAt", {{"type", "string"}, {"format", "date-time"}}},
              {"version", integer()}},
             {"sagaId", "sagaType", "correlationId", "status", "currentStep", "steps"});
  s["EventMetadata"] = object({{"correlationId", str()},
                               {"causationId", str()},
                               {"commandId", str()},
                               {"nodeId", str()},
                               {"userId", str()}});
  s["Event"] = object({{"position", integer("global journal position (SSE id)")},
                       {"streamId", str()},
                       {"streamType", str()},
                       {"version", integer("1-based within the stream")},
                       {"eventId", str()},
                       {"eventType", str()},
                       {"schemaVersion", {{"type", "integer"}}},
                       {"data", {{"type", "object"}}},
                       {"metadata", ref("EventMetadata")},
                       {"recordedAt", {{"type", "string"}, {"format", "date-time"}}}},
                      {"position", "streamId", "eventType", "data"});
  s["Health"] = object({{"status", {{"type", "string"}, {"enum", {"ok"}}}}}, {"status"});
  s["HealthDetailed"] = object(
      {{"status", {{"type", "string"}, {"enum", {"ok", "degraded", "unavailable"}}}},
       {"nodeId", str()},
       {"database",
        object(
            {{"reachable", {{"type", "boolean"}}}, {"journalHead", integer()}, {"error", str()}})},
       {"journal", {{"type", "object"}}},
       {"migrations", {{"type", "object"}}},
       {"projections", {{"type", "array"}, {"items", {{"type", "object"}}}}},
       {"actors", {{"type", "object"}}},
       {"uptimeSeconds", {{"type", "number"}}}},
      {"status"});
  return s;
}

// ---- per-route request and responses --------------------------------------------------------

struct operation_spec {
  std::string_view request;       ///< request schema name, empty: no body
  bool request_optional = false;  ///< the body may be omitted
  int success = 200;
  json success_content;                   ///< media type → schema
  std::string_view success_text;          ///< description of the success response
  std::vector<int> errors;                ///< statuses besides those implied by access and body
  std::vector<json> query;                ///< query parameters
  json extra_responses = json::object();  ///< status → response object, beside the problems
};

json content(std::string_view media, json schema) {
  return {{std::string(media), {{"schema", std::move(schema)}}}};
}
json json_content(json schema) { return content("application/json", std::move(schema)); }

json query_param(std::string_view name, std::string_view description, json schema) {
  return {{"name", name},
          {"in", "query"},
          {"required", false},
          {"description", description},
          {"schema", std::move(schema)}};
}

std::vector<json> paging(int default_limit) {
  return {
      query_param(
          "limit", "page size (1-1000; pages above 500 are clamped to 500)",
          {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", default_limit}}),
      query_param("offset", "rows to skip",
                  {{"type", "integer"}, {"minimum", 0}, {"maximum", 1000000000}, {"default", 0}})};
}

operation_spec spec_for(const route_info& r) {
  const std::string key = std::string(r.method) + " " + std::string(r.path);
  operation_spec s;
  if (key == "POST /auth/register") {
    s.request = "RegisterRequest";
    s.success = 201;
    s.success_content = json_content(ref("User"));
    s.success_text = "The account was created";
    s.errors = {409, 429};
  } else if (key == "POST /auth/login") {
    s.request = "LoginRequest";
    s.success_content = json_content(ref("Token"));
    s.success_text = "A bearer token";
    s.errors = {401, 429};
  } else if (key == "POST /products") {
    s.request = "ProductRequest";
    s.success = 201;
    s.success_content = json_content(ref("Product"));
    s.success_text = "The product was registered";
    s.errors = {409};
  } else if (key == "GET /products") {
    s.success_content = json_content(array_of(ref("Product")));
    s.success_text = "Products, by id";
    s.query = paging(100);
  } else if (key == "GET /products/{id}") {
    s.success_content = json_content(ref("Product"));
    s.success_text = "The product";
    s.errors = {404};
  } else if (key == "POST /products/{id}/restock") {
    s.request = "RestockRequest";
    s.success_content = json_content(ref("Product"));
    s.success_text = "The stock was added";
    s.errors = {404};
  } else if (key == "POST /orders") {
    s.request = "OrderRequest";
    s.success = 202;
    s.success_content = json_content(ref("OrderAccepted"));
    s.success_text =
        "The order was placed and its saga started (or the same request was "
        "replayed with its Idempotency-Key)";
    s.errors = {409, 429};
  } else if (key == "GET /orders") {
    s.success_content = json_content(array_of(ref("Order")));
    s.success_text = "The caller's orders";
    s.query = paging(50);
    s.query.push_back(query_param("customerId", "admins only: another customer's orders", str()));
  } else if (key == "GET /orders/{id}") {
    s.success_content = json_content(ref("Order"));
    s.success_text = "The order";
    s.errors = {404};
  } else if (key == "DELETE /orders/{id}") {
    s.request = "ReasonRequest";
    s.request_optional = true;
    s.success = 202;
    s.success_content = json_content(ref("OperationResult"));
    s.success_text = "Cancellation accepted; the saga compensates (refund, release stock)";
    s.errors = {404, 409};
  } else if (key == "PUT /orders/{id}/confirm") {
    s.success_content = json_content(ref("OperationResult"));
    s.success_text = "The order is CONFIRMED";
    s.errors = {404, 409};
  } else if (key == "GET /saga/status/{correlationId}") {
    s.success_content = json_content(ref("Saga"));
    s.success_text = "The saga of this correlation id";
    s.errors = {404};
  } else if (key == "GET /saga/active") {
    s.success_content = json_content(array_of(ref("Saga")));
    s.success_text = "Sagas RUNNING or COMPENSATING";
    s.query = paging(100);
  } else if (key == "POST /saga/retry/{sagaId}") {
    s.success_content = json_content(ref("OperationResult"));
    s.success_text = "The saga resumed";
    s.errors = {404, 409};
  } else if (key == "POST /saga/compensate/{sagaId}") {
    s.request = "ReasonRequest";
    s.request_optional = true;
    s.success_content = json_content(ref("OperationResult"));
    s.success_text = "Compensation started";
    s.errors = {404, 409};
  } else if (key == "GET /trace/correlation/{correlationId}") {
    s.success_content = json_content(array_of(ref("Event")));
    s.success_text = "Every event carrying this correlation id, in journal order";
    s.errors = {404};
    s.query = {
        query_param("limit", "at most this many events",
                    {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 500}})};
  } else if (key == "GET /trace/order/{orderId}") {
    s.success_content = json_content(array_of(ref("Event")));
    s.success_text = "Every event of this order's flow, in journal order";
    s.errors = {404};
  } else if (key == "GET /trace/active-flows") {
    s.success_content = json_content(array_of(ref("Saga")));
    s.success_text = "Flows in progress";
    s.query = paging(100);
  } else if (key == "GET /trace/events") {
    s.success_content = json_content(array_of(ref("Event")));
    s.success_content["text/event-stream"] = {
        {"schema", str("Server-sent events: `id: <position>`, `event: <eventType>`, "
                       "`data: <Event JSON>`; resumes after `after` or Last-Event-ID")}};
    s.success_text = "Events after the position (JSON page or live stream, by Accept)";
    s.query = {
        query_param("after", "journal position to start after",
                    {{"type", "integer"}, {"format", "int64"}, {"minimum", 0}, {"default", 0}}),
        query_param("limit", "page size of the JSON form",
                    {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 100}})};
  } else if (key == "GET /health") {
    s.success_content = json_content(ref("Health"));
    s.success_text = "The node is alive";
  } else if (key == "GET /health/detailed") {
    s.success_content = json_content(ref("HealthDetailed"));
    s.success_text = "Database, migrations, projection lag, actors, uptime";
    s.extra_responses["503"] = {
        {"description", "The database is unreachable (same body, status unavailable)"},
        {"content", json_content(ref("HealthDetailed"))}};
  } else if (key == "GET /metrics") {
    s.success_content = content("text/plain; version=0.0.4", str("Prometheus text format"));
    s.success_text = "Prometheus metrics";
  } else if (key == "GET /api-json") {
    s.success_content = json_content({{"type", "object"}});
    s.success_text = "This OpenAPI 3.0.3 document";
  } else if (key == "GET /api") {
    s.success_content = content("text/html", str());
    s.success_text = "Readable documentation";
  } else {
    throw std::logic_error("openapi: no operation spec for route " + key);
  }
  return s;
}

json response_ref(int status) {
  return {{"$ref", "#/components/responses/" + std::to_string(status)}};
}

json operation(const route_info& r) {
  const operation_spec s = spec_for(r);
  json op;
  op["tags"] = {r.tag};
  op["summary"] = r.summary;
  std::string id;
  for (char c : std::string(r.method) + std::string(r.path)) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      id.push_back(c);
    else if (!id.empty() && id.back() != '_')
      id.push_back('_');
  }
  while (!id.empty() && id.back() == '_') id.pop_back();
  op["operationId"] = id;
  op["x-access"] = to_string(r.who);
  op["description"] = r.who == access::public_ ? "No authentication."
                      : r.who == access::admin
                          ? "Requires a bearer token with the admin role."
                          : "Requires a bearer token; customers see only their own resources "
                            "(404 for anyone else's), admins see all.";

  json params = json::array();
  for (const auto& name : path_parameters(r.path))
    params.push_back({{"name", name}, {"in", "path"}, {"required", true}, {"schema", str()}});
  for (const auto& q : s.query) params.push_back(q);
  params.push_back({{"$ref", "#/components/parameters/XCorrelationId"}});
  if (r.method == "POST" && r.path == "/orders")
    params.push_back({{"$ref", "#/components/parameters/IdempotencyKey"}});
  if (r.method == "GET" && r.path == "/trace/events")
    params.push_back({{"$ref", "#/components/parameters/LastEventId"}});
  op["parameters"] = params;

  if (!s.request.empty()) {
    op["requestBody"] = {{"required", !s.request_optional},
                         {"content", json_content(ref(s.request))}};
  }
  if (r.who == access::public_)
    op["security"] = json::array();
  else
    op["security"] = {{{"bearerAuth", json::array()}}};

  json responses;
  responses[std::to_string(s.success)] = {
      {"description", s.success_text},
      {"headers", {{"X-Correlation-Id", {{"$ref", "#/components/headers/XCorrelationId"}}}}},
      {"content", s.success_content}};
  std::vector<int> errors = s.errors;
  if (!s.request.empty()) errors.insert(errors.end(), {400, 413, 415, 422});
  if (!s.query.empty()) errors.push_back(400);  // a malformed query parameter
  if (r.who != access::public_) errors.push_back(401);
  if (r.who == access::admin) errors.push_back(403);
  if ((r.who != access::public_ || !s.request.empty()) && !s.extra_responses.contains("503"))
    errors.push_back(503);
  std::sort(errors.begin(), errors.end());
  errors.erase(std::unique(errors.begin(), errors.end()), errors.end());
  for (int status : errors) responses[std::to_string(status)] = response_ref(status);
  for (const auto& [status, response] : s.extra_responses.items()) responses[status] = response;
  op["responses"] = responses;
  return op;
}

json problem_response(std::string_view description, bool retry_after = false) {
  json headers = {{"X-Correlation-Id", {{"$ref", "#/components/headers/XCorrelationId"}}}};
  if (retry_after)
    headers["Retry-After"] = {{"description", "seconds to wait"},
                              {"schema", {{"type", "integer"}}}};
  return {{"description", description},
          {"headers", headers},
          {"content", content("application/problem+json", ref("Problem"))}};
}

json build_document() {
  json doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {
      {"title", "Saga engine API"},
      {"version", "1.0.0"},
      {"description",
       "Order processing on an actor-model saga engine. Errors are application/problem+json; "
       "every response carries X-Correlation-Id. Prices and totals are integers in minor units."}};
  json tags = json::array();
  for (std::string_view tag : {"auth", "products", "orders", "saga", "trace", "health", "docs"})
    tags.push_back({{"name", tag}});
  doc["tags"] = tags;
  json paths = json::object();
  for (const auto& r : routes()) {
    std::string method(r.method);
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    paths[std::string(r.path)][method] = operation(r);
  }
  doc["paths"] = paths;
  json components;
  components["schemas"] = schemas();
  components["securitySchemes"] = {
      {"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}};
  components["parameters"] = {
      {"XCorrelationId",
       {{"name", "X-Correlation-Id"},
        {"in", "header"},
        {"required", false},
        {"description", "Carried into the saga's events; generated when absent"},
        {"schema", {{"type", "string"}, {"maxLength", 128}}}}},
      {"IdempotencyKey",
       {{"name", "Idempotency-Key"},
        {"in", "header"},
        {"required", false},
        {"description",
         "Per user: the same key and body answer the first response again; the "
         "same key with another body → 422"},
        {"schema", {{"type", "string"}, {"maxLength", 255}}}}},
      {"LastEventId",
       {{"name", "Last-Event-ID"},
        {"in", "header"},
        {"required", false},
        {"description", "SSE resume position (instead of `after`)"},
        {"schema", {{"type", "integer"}, {"format", "int64"}}}}}};
  components["headers"] = {
      {"XCorrelationId",
       {{"description", "The request's correlation id (from the request or generated)"},
        {"schema", {{"type", "string"}}}}}};
  components["responses"] = {
      {"400", problem_response("Malformed JSON, a body that is not a JSON object, or a malformed "
                               "query parameter")},
      {"401", problem_response("Missing, malformed, expired or badly signed bearer token; or bad "
                               "credentials")},
      {"403", problem_response("The caller lacks the admin role")},
      {"404", problem_response("No such resource (or it belongs to someone else)")},
      {"409", problem_response("The resource's state refuses the operation (exists already, "
                               "already cancelled, insufficient stock, …)")},
      {"413", problem_response("The body is larger than http.max_body_bytes")},
      {"415", problem_response("Content-Type is not application/json")},
      {"422", problem_response("Validation failed: `errors` names each field")},
      {"429", problem_response("Rate limit exceeded", true)},
      {"503", problem_response("Not answered in time or temporarily unavailable; retry (with the "
                               "same Idempotency-Key)")}};
  doc["components"] = components;
  return doc;
}

const json& document() {
  static const json doc = build_document();
  return doc;
}

// ---- HTML ---------------------------------------------------------------------------------

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

const json& resolve(const json& j) {
  if (j.is_object() && j.contains("$ref")) {
    const std::string path = j["$ref"].get<std::string>();  // "#/components/<kind>/<name>"
    const json* node = &document();
    std::size_t pos = 2;
    while (pos <= path.size()) {
      const auto next = path.find('/', pos);
      const std::string part =
          path.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
      node = &(*node)[part];
      if (next == std::string::npos) break;
      pos = next + 1;
    }
    return *node;
  }
  return j;
}

std::string ref_name(const json& j) {
  if (j.is_object() && j.contains("$ref")) {
    const std::string path = j["$ref"].get<std::string>();
    return path.substr(path.rfind('/') + 1);
  }
  return {};
}

std::string type_text(const json& schema) {
  if (const std::string name = ref_name(schema); !name.empty()) return name;
  const json& s = resolve(schema);
  const std::string type = s.value("type", std::string("any"));
  if (type == "array" && s.contains("items")) return type_text(s["items"]) + "[]";
  std::string out = type;
  if (s.contains("enum")) {
    out += " (";
    bool first = true;
    for (const auto& e : s["enum"]) {
      if (!first) out += " | ";
      out += e.get<std::string>();
      first = false;
    }
    out += ")";
  }
  return out;
}

std::string constraints_text(const json& s) {
  std::string out;
  for (const char* key : {"minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
                          "pattern", "format"}) {
    if (!s.contains(key)) continue;
    if (!out.empty()) out += ", ";
    out +=
        std::string(key) + " " + (s[key].is_string() ? s[key].get<std::string>() : s[key].dump());
  }
  if (s.contains("description")) {
    if (!out.empty()) out += "; ";
    out += s["description"].get<std::string>();
  }
  return out;
}

/// Rows for the fields of an object schema; nested objects (and arrays of them) are expanded
/// with dotted names ("items[].quantity").
std::string field_rows(const json& object_schema, const std::string& prefix, int depth) {
  std::string out;
  const json required = object_schema.value("required", json::array());
  for (const auto& [name, prop] : object_schema["properties"].items()) {
    bool is_required = false;
    for (const auto& r : required) is_required = is_required || r == name;
    const json& resolved = resolve(prop);
    out += "<tr><td><code>" + escape_html(prefix + name) + "</code></td><td>" +
           escape_html(type_text(prop)) + "</td><td>" + (is_required ? "yes" : "") + "</td><td>" +
           escape_html(constraints_text(resolved)) + "</td></tr>";
    if (depth >= 2) continue;
    if (resolved.contains("properties")) {
      out += field_rows(resolved, prefix + name + ".", depth + 1);
    } else if (resolved.value("type", std::string()) == "array" && resolved.contains("items")) {
      const json& item = resolve(resolved["items"]);
      if (item.contains("properties")) out += field_rows(item, prefix + name + "[].", depth + 1);
    }
  }
  return out;
}

/// A table of the fields of a schema (object, or array of objects).
std::string fields_table(const json& schema_in) {
  const json* schema = &resolve(schema_in);
  std::string prefix;
  if (schema->value("type", std::string()) == "array" && schema->contains("items")) {
    prefix = "[].";
    schema = &resolve((*schema)["items"]);
  }
  if (!schema->contains("properties"))
    return "<p class=\"note\">" + escape_html(type_text(schema_in)) + "</p>";
  return "<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>" +
         field_rows(*schema, prefix, 0) + "</table>";
}

std::string build_html() {
  const json& doc = document();
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>Saga engine API</title><style>"
      "body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
      "color:#222}h2{border-bottom:1px solid #ccc;margin-top:2em}"
      ".op{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}"
      ".m{display:inline-block;min-width:4.5em;font-weight:bold;font-family:monospace}"
      ".GET{color:#1565c0}.POST{color:#2e7d32}.PUT{color:#ef6c00}.DELETE{color:#c62828}"
      "table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ddd;padding:.2em .5em;"
      "text-align:left;vertical-align:top}th{background:#f5f5f5}.note{color:#555}"
      "code{font-family:monospace}</style></head><body>\n";
  out += "<h1>" + escape_html(doc["info"]["title"].get<std::string>()) + " " +
         escape_html(doc["info"]["version"].get<std::string>()) + "</h1>\n";
  out += "<p>" + escape_html(doc["info"]["description"].get<std::string>()) +
         " The machine-readable OpenAPI 3.0.3 document is at <a href=\"/api-json\">/api-json</a>. "
         "Authenticated routes take <code>Authorization: Bearer &lt;token&gt;</code> from "
         "<code>POST /auth/login</code>.</p>\n";
  out +=
      "<h2>Routes</h2>\n<table><tr><th>method</th><th>path</th><th>access</th><th>summary</th></"
      "tr>";
  for (const auto& r : routes()) {
    out += "<tr><td class=\"m " + std::string(r.method) + "\">" + std::string(r.method) +
           "</td><td><a href=\"#" + escape_html(std::string(r.method) + std::string(r.path)) +
           "\"><code>" + escape_html(r.path) + "</code></a></td><td>" +
           std::string(to_string(r.who)) + "</td><td>" + escape_html(r.summary) + "</td></tr>";
  }
  out += "</table>\n";
  std::string_view tag;
  for (const auto& r : routes()) {
    if (r.tag != tag) {
      tag = r.tag;
      out += "<h2>" + escape_html(tag) + "</h2>\n";
    }
    std::string method(r.method);
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const json& op = doc["paths"][std::string(r.path)][method];
    out += "<div class=\"op\" id=\"" + escape_html(std::string(r.method) + std::string(r.path)) +
           "\"><p><span class=\"m " + std::string(r.method) + "\">" + std::string(r.method) +
           "</span> <code>" + escape_html(r.path) + "</code> — " + escape_html(r.summary) +
           "</p>\n<p class=\"note\">Auth: " + escape_html(op["description"].get<std::string>()) +
           "</p>\n";
    std::string params;
    for (const auto& p_in : op["parameters"]) {
      const json& p = resolve(p_in);
      params += "<tr><td><code>" + escape_html(p["name"].get<std::string>()) + "</code></td><td>" +
                escape_html(p["in"].get<std::string>()) + "</td><td>" +
                (p["required"].get<bool>() ? "yes" : "") + "</td><td>" +
                escape_html(p.value("description", std::string())) + "</td></tr>";
    }
    out +=
        "<p>Parameters:</p><table><tr><th>name</th><th>in</th><th>required</th><th>notes</th>"
        "</tr>" +
        params + "</table>\n";
    if (op.contains("requestBody")) {
      const json& body = op["requestBody"];
      out += std::string("<p>Request body (application/json") +
             (body["required"].get<bool>() ? "" : ", optional") + "): <code>" +
             escape_html(type_text(body["content"]["application/json"]["schema"])) + "</code></p>" +
             fields_table(body["content"]["application/json"]["schema"]) + "\n";
    }
    out += "<p>Responses:</p><ul>";
    for (const auto& [status, resp_in] : op["responses"].items()) {
      const json& resp = resolve(resp_in);
      out += "<li><b>" + status + "</b> " + escape_html(resp["description"].get<std::string>());
      if (resp.contains("content")) {
        for (const auto& [media, body] : resp["content"].items()) {
          out += " — <code>" + escape_html(media) + "</code> <code>" +
                 escape_html(type_text(body["schema"])) + "</code>";
        }
        if (status.front() == '2' && resp["content"].contains("application/json"))
          out += fields_table(resp["content"]["application/json"]["schema"]);
      }
      out += "</li>";
    }
    out += "</ul></div>\n";
  }
  out +=
      "<h2>Problem responses</h2>\n<p>Every error is <code>application/problem+json</code>:</p>" +
      fields_table(ref("Problem")) + "\n</body></html>\n";
  return out;
}

}  // namespace

std::string openapi_json() {
  static const std::string text = document().dump(2);
  return text;
}

std::string docs_page_html() {
  static const std::string html = build_html();
  return html;
}

}  // namespace saga::http

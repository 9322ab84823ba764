#include "http/routes.hpp"

namespace saga::http {

std::string_view to_string(access who) noexcept {
  switch (who) {
    case access::public_:
      return "public";
    case access::customer:
      return "customer";
    case access::admin:
      return "admin";
  }
  return "admin";
}

const std::vector<route_info>& routes() {
  using a = access;
  static const std::vector<route_info> table{
      {"POST", "/auth/register", "Register a customer account", a::public_, "auth"},
      {"POST", "/auth/login", "Log in and receive a bearer token", a::public_, "auth"},
      {"POST", "/products", "Register a product with its initial stock", a::admin, "products"},
      {"GET", "/products", "List products with available and reserved stock", a::customer,
       "products"},
      {"GET", "/products/{id}", "Get one product", a::customer, "products"},
      {"POST", "/products/{id}/restock", "Add stock to a product", a::admin, "products"},
      {"POST", "/orders", "Place an order; starts its saga (202)", a::customer, "orders"},
      {"GET", "/orders", "List the caller's orders (admins: ?customerId= for another customer)",
       a::customer, "orders"},
      {"GET", "/orders/{id}", "Get one order (strongly consistent)", a::customer, "orders"},
      {"DELETE", "/orders/{id}", "Cancel an order; compensates what its saga did", a::customer,
       "orders"},
      {"PUT", "/orders/{id}/confirm", "Confirm an order manually", a::admin, "orders"},
      {"GET", "/saga/status/{correlationId}", "Saga status by correlation id", a::customer, "saga"},
      {"GET", "/saga/active", "Sagas still running or compensating", a::admin, "saga"},
      {"POST", "/saga/retry/{sagaId}", "Retry a failed or stuck saga", a::admin, "saga"},
      {"POST", "/saga/compensate/{sagaId}", "Compensate a saga", a::admin, "saga"},
      {"GET", "/trace/correlation/{correlationId}", "Events of one correlation id, in order",
       a::customer, "trace"},
      {"GET", "/trace/order/{orderId}", "Events of one order's flow, in order", a::customer,
       "trace"},
      {"GET", "/trace/active-flows", "Flows (sagas) in progress", a::admin, "trace"},
      {"GET", "/trace/events",
       "Global event feed after a position; Accept: text/event-stream streams it live", a::admin,
       "trace"},
      {"GET", "/health", "Liveness", a::public_, "health"},
      {"GET", "/health/detailed", "Database, migrations, projection lag, actor counts and uptime",
       a::public_, "health"},
      {"GET", "/metrics", "Prometheus metrics (text format 0.0.4)", a::public_, "health"},
      {"GET", "/api-json", "This OpenAPI 3 document", a::public_, "docs"},
      {"GET", "/api", "Readable API documentation page", a::public_, "docs"},
  };
  return table;
}

const route_info* find_route(std::string_view method, std::string_view path) {
  for (const auto& r : routes())
    if (r.method == method && r.path == path) return &r;
  return nullptr;
}

std::string express_path(std::string_view openapi_path) {
  std::string out;
  out.reserve(openapi_path.size());
  for (std::size_t i = 0; i < openapi_path.size(); ++i) {
    const char c = openapi_path[i];
    if (c == '{') {
      const auto close = openapi_path.find('}', i);
      if (close == std::string_view::npos) {  // not a parameter: keep the text as is
        out.append(openapi_path.substr(i));
        break;
      }
      out.push_back(':');
      out.append(openapi_path.substr(i + 1, close - i - 1));
      i = close;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> path_parameters(std::string_view openapi_path) {
  std::vector<std::string> names;
  std::size_t pos = 0;
  while ((pos = openapi_path.find('{', pos)) != std::string_view::npos) {
    const auto close = openapi_path.find('}', pos);
    if (close == std::string_view::npos) break;
    names.emplace_back(openapi_path.substr(pos + 1, close - pos - 1));
    pos = close + 1;
  }
  return names;
}

}  // namespace saga::http

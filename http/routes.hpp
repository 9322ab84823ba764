// The single route table of the HTTP front: the server registers exactly these routes and the
// OpenAPI document describes exactly these. Immutable static data; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace saga::http {

/// Who may call a route.
enum class access { public_, customer, admin };

/// "public", "customer" or "admin".
[[nodiscard]] std::string_view to_string(access who) noexcept;

/// One route: method, OpenAPI-style path ("/orders/{id}"), summary, access and tag.
struct route_info {
  std::string_view method;
  std::string_view path;
  std::string_view summary;
  access who;
  std::string_view tag;
};

/// Every route of DESIGN.md §6, in a stable order.
[[nodiscard]] const std::vector<route_info>& routes();

/// The route with this method and OpenAPI path, or nullptr.
[[nodiscard]] const route_info* find_route(std::string_view method, std::string_view path);

/// "/orders/{id}" → "/orders/:id" (the router's syntax).
[[nodiscard]] std::string express_path(std::string_view openapi_path);

/// Names of the path parameters of an OpenAPI path, in order ("/saga/retry/{sagaId}" → sagaId).
[[nodiscard]] std::vector<std::string> path_parameters(std::string_view openapi_path);

}  // namespace saga::http

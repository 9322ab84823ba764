// The OpenAPI 3.0.3 document of the HTTP front (GET /api-json) and a self-contained HTML docs page
// generated from it (GET /api). Both are built once from routes() and cached; any thread.
#pragma once

#include <string>

namespace saga::http {

/// Complete OpenAPI 3.0.3 document: every route of routes(), request bodies, response schemas,
/// the bearerAuth security scheme and the Problem schema.
[[nodiscard]] std::string openapi_json();

/// A readable HTML page listing every route with method, path, summary, access, request and
/// response fields; no scripts, no external resources.
[[nodiscard]] std::string docs_page_html();

}  // namespace saga::http

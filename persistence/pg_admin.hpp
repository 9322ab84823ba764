// Small administrative helpers over a fresh PostgreSQL connection per call: for tools, fault
// injection in tests (e.g. pg_terminate_backend) and set-up scripts. Any thread.
#pragma once

#include <string>
#include <vector>

#include "domain/expected.hpp"
#include "persistence/event_store.hpp"

namespace saga::persistence {

/// Rows of a query result as text; a NULL field is an empty string.
using sql_rows = std::vector<std::vector<std::string>>;

/// Runs `sql` (one or more statements, simple protocol) on a new connection and returns the
/// last statement's rows. Errors come back as a classified store_error.
[[nodiscard]] expected<sql_rows, store_error> run_sql(const std::string& database_url,
                                                      const std::string& sql);

}  // namespace saga::persistence

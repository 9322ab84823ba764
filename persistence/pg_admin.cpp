#include "persistence/pg_admin.hpp"

#include <pqxx/pqxx>

#include "persistence/pg_error.hpp"

namespace saga::persistence {

expected<sql_rows, store_error> run_sql(const std::string& database_url, const std::string& sql) {
  try {
    pqxx::connection conn(database_url);
    pqxx::nontransaction tx(conn);
    const auto result = tx.exec(sql);
    sql_rows rows;
    rows.reserve(result.size());
    for (const auto& row : result) {
      std::vector<std::string> fields;
      fields.reserve(row.size());
      for (const auto& field : row) fields.emplace_back(field.is_null() ? "" : field.c_str());
      rows.push_back(std::move(fields));
    }
    return rows;
  } catch (...) {
    return unexpected{detail::classify_current_exception("run_sql").error};
  }
}

}  // namespace saga::persistence

#include "persistence/migrations.hpp"

#include <algorithm>
#include <map>

#include <pqxx/pqxx>

#include "persistence/pg_error.hpp"

namespace saga::persistence {

namespace {

// 1397312845 = 'SAGM'; the second key is the schema, so separate schemas migrate in parallel.
constexpr int migration_lock_key = 1397312845;

store_error error(store_errc code, std::string message) {
  return store_error{code, std::move(message), -1};
}

// NNNN_name.sql with a lower-case name; returns NNNN or -1.
int version_of(const std::string& name) {
  if (name.size() < 10 || name.compare(name.size() - 4, 4, ".sql") != 0 || name[4] != '_') {
    return -1;
  }
  for (std::size_t i = 0; i < 4; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
  }
  for (std::size_t i = 5; i + 4 < name.size(); ++i) {
    const char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return -1;
  }
  return std::stoi(name.substr(0, 4));
}

struct applied_row {
  std::string name;
  std::string checksum;
};

}  // namespace

expected<std::vector<std::string>, store_error> apply_migrations(
    const std::string& database_url, const std::vector<migration_file>& files,
    const migration_options& options) {
  std::map<int, const migration_file*> by_version;
  for (const auto& f : files) {
    const int v = version_of(f.name);
    if (v < 0) {
      return unexpected{error(store_errc::invalid_request,
                              "migration file name '" + f.name + "' is not NNNN_name.sql")};
    }
    if (!by_version.emplace(v, &f).second) {
      return unexpected{error(store_errc::invalid_request,
                              "two migration files have version " + f.name.substr(0, 4))};
    }
  }

  std::string stage = "connecting";
  try {
    pqxx::connection conn(database_url);
    pqxx::work tx(conn);
    stage = "locking";
    if (options.schema.empty()) {
      tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                     migration_lock_key);
    } else {
      tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", migration_lock_key,
                     options.schema);
      tx.exec("CREATE SCHEMA IF NOT EXISTS " + tx.quote_name(options.schema));
      tx.exec("SET LOCAL search_path TO " + tx.quote_name(options.schema));
    }
    stage = "reading schema_migrations";
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    std::map<int, applied_row> applied;
    for (const auto& row : tx.exec("SELECT version, name, checksum FROM schema_migrations")) {
      applied.emplace(row[0].as<int>(), applied_row{row[1].c_str(), row[2].c_str()});
    }

    const auto checksum = [&tx](const std::string& sql) {
      return tx.exec_params1("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", sql)[0]
          .as<std::string>();
    };
    const int newest_applied = applied.empty() ? 0 : applied.rbegin()->first;
    for (const auto& [version, row] : applied) {
      const auto it = by_version.find(version);
      if (it == by_version.end()) {
        return unexpected{error(store_errc::internal,
                                "the database has migration " + row.name +
                                    ", which this binary does not know (newer code ran here?)")};
      }
      if (it->second->name != row.name || checksum(it->second->sql) != row.checksum) {
        return unexpected{error(store_errc::internal,
                                "migration " + row.name +
                                    " was changed after it was applied (checksum mismatch; add "
                                    "a new migration instead of editing an applied one)")};
      }
    }

    std::vector<std::string> done_names;
    for (const auto& [version, file] : by_version) {
      if (applied.count(version) != 0) continue;
      if (version < newest_applied) {
        return unexpected{
            error(store_errc::internal, "migration " + file->name +
                                            " is older than the newest applied "
                                            "one and was never applied; renumber it")};
      }
      stage = "applying " + file->name;
      tx.exec(file->sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     version, file->name, checksum(file->sql));
      done_names.push_back(file->name);
    }
    stage = "committing";
    tx.commit();
    return done_names;
  } catch (...) {
    return unexpected{detail::classify_current_exception("migrations (" + stage + ")").error};
  }
}

expected<std::vector<std::string>, store_error> apply_migrations(const std::string& database_url,
                                                                 const migration_options& options) {
  return apply_migrations(database_url, embedded_migrations(), options);
}

}  // namespace saga::persistence

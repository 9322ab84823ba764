// Numbered SQL migrations (persistence/migrations/NNNN_name.sql, compiled into the library)
// and the migrator that applies them at start-up. Stateless functions; each call opens its own
// connection, so any thread may call them, and concurrent processes are serialized in the DB.
#pragma once

#include <string>
#include <vector>

#include "domain/expected.hpp"
#include "persistence/event_store.hpp"

namespace saga::persistence {

/// One migration file: `name` is NNNN_name.sql, NNNN its version.
struct migration_file {
  std::string name;
  std::string sql;
};

/// The migrations compiled into this binary, sorted by name (generated at build time).
const std::vector<migration_file>& embedded_migrations();

struct migration_options {
  /// Schema to migrate (created if missing); empty = the connection's default (public).
  std::string schema;
};

/// Applies every pending migration in ONE transaction, serialized across processes by an
/// advisory lock, and records each in `schema_migrations(version, name, checksum, applied_at)`.
/// Applying twice is a no-op. An applied migration whose file changed (checksum), or one the
/// database has but `files` lacks, is an error and nothing is applied. Returns the names applied.
[[nodiscard]] expected<std::vector<std::string>, store_error> apply_migrations(
    const std::string& database_url, const std::vector<migration_file>& files,
    const migration_options& options = {});

/// Applies the embedded migrations.
[[nodiscard]] expected<std::vector<std::string>, store_error> apply_migrations(
    const std::string& database_url, const migration_options& options = {});

}  // namespace saga::persistence

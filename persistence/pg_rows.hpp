// Internal to persistence: reading journal rows from libpqxx results, and writing PostgreSQL
// array literals. Included by .cpp files only (it pulls in libpqxx). Stateless; any thread.
#pragma once

#include <string>

#include <pqxx/row>

#include "persistence/event_store.hpp"

namespace saga::persistence::detail {

/// A journal row selected as (position, stream_id, stream_type, version, event_id, event_type,
/// schema_version, payload::text, metadata::text, recorded_at in epoch ms).
[[nodiscard]] recorded_event event_from_row(const pqxx::row& row);

/// Appends `value` as one element of a PostgreSQL array literal (e.g. for `$1::text[]`):
/// always quoted, so only " and \ need escaping. The caller writes the braces and commas.
void append_array_text(std::string& out, const std::string& value);

}  // namespace saga::persistence::detail

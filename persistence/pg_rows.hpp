// Internal to persistence: reading journal rows from libpqxx results. Included by .cpp files
// only (it pulls in libpqxx). Stateless; any thread.
#pragma once

#include <pqxx/row>

#include "persistence/event_store.hpp"

namespace saga::persistence::detail {

/// A journal row selected as (position, stream_id, stream_type, version, event_id, event_type,
/// schema_version, payload::text, metadata::text, recorded_at in epoch ms).
[[nodiscard]] recorded_event event_from_row(const pqxx::row& row);

}  // namespace saga::persistence::detail

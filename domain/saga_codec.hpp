// JSON codec for saga instances: events for the journal and whole states for snapshots.
// Pure and thread-safe. Encoding never throws; decoding never throws either and names the
// offending field ("input.items[1].quantity", "steps[0].forward[2]") on failure.
#pragma once

#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "domain/saga.hpp"

namespace saga::domain {

/// Schema version written by this codec for snapshots and for saga events, except those that
/// carry a folded step start ("next"), which are written as saga_next_schema_version so that a
/// reader which does not know the field refuses them instead of skipping the step start.
inline constexpr int saga_schema_version = 1;
inline constexpr int saga_next_schema_version = 2;

/// The journal type name of a saga event: "SagaStarted", "SagaStepStarted", …
[[nodiscard]] std::string_view event_type(const sagas::event& e) noexcept;

/// Encodes a saga event as type name + JSON payload (camelCase fields, "schema_version").
[[nodiscard]] encoded_event encode(const sagas::event& e);

/// Decodes a saga event; an unknown type, corrupt JSON, a missing, mistyped or out-of-range
/// field or an unsupported schema version is a decode_error.
[[nodiscard]] decoded<sagas::event> decode_saga_event(const encoded_event& e);

/// Encodes a whole saga state (for snapshots) as a JSON object with "schema_version".
[[nodiscard]] std::string encode_state(const sagas::state& s);

/// Decodes a snapshot written by encode_state; errors name the field as for events.
[[nodiscard]] decoded<sagas::state> decode_saga_state(const std::string& json);

}  // namespace saga::domain

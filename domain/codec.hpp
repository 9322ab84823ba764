// JSON encoding of domain events for the journal. Pure; thread-safe.
// Every encoded payload carries "schema_version"; decoding refuses unknown types,
// unknown versions, missing fields and wrong types with an error naming the field.
// nlohmann/json stays inside the .cpp files so this header is cheap to include.
#pragma once

#include <string>

#include "domain/expected.hpp"

namespace saga::domain {

/// An event as stored in the journal: its type name, schema version and JSON text.
struct encoded_event {
  std::string type;        ///< e.g. "OrderCreated"
  int schema_version = 1;  ///< also written inside payload as "schema_version"
  std::string payload;     ///< a JSON object
};

/// Why a payload could not be decoded. `field` names the offending field ("" for the
/// whole payload, e.g. malformed JSON or an unknown event type).
struct decode_error {
  std::string field;
  std::string message;
};

template <class T>
using decoded = expected<T, decode_error>;

}  // namespace saga::domain

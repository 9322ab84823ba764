// Internal to domain/*_codec.cpp: typed field access on nlohmann::json objects that
// reports the offending field by name. Include only from .cpp files (nlohmann is heavy).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "domain/codec.hpp"

namespace saga::domain::json_fields {

/// Thrown inside a decoder and turned into decode_error at its boundary.
struct field_error : std::runtime_error {
  field_error(std::string f, const std::string& what)
      : std::runtime_error(what), field(std::move(f)) {}
  std::string field;
};

inline const nlohmann::json& require(const nlohmann::json& obj, const char* field,
                                     const std::string& prefix = "") {
  auto it = obj.find(field);
  if (it == obj.end()) throw field_error(prefix + field, "missing field '" + prefix + field + "'");
  return *it;
}

inline std::string get_string(const nlohmann::json& obj, const char* field,
                              const std::string& prefix = "") {
  const auto& v = require(obj, field, prefix);
  if (!v.is_string())
    throw field_error(prefix + field, "field '" + prefix + field + "' must be a string");
  return v.get<std::string>();
}

inline std::int64_t get_int(const nlohmann::json& obj, const char* field,
                            const std::string& prefix = "") {
  const auto& v = require(obj, field, prefix);
  if (!v.is_number_integer())
    throw field_error(prefix + field, "field '" + prefix + field + "' must be an integer");
  return v.get<std::int64_t>();
}

inline bool get_bool(const nlohmann::json& obj, const char* field, const std::string& prefix = "") {
  const auto& v = require(obj, field, prefix);
  if (!v.is_boolean())
    throw field_error(prefix + field, "field '" + prefix + field + "' must be a boolean");
  return v.get<bool>();
}

inline double get_double(const nlohmann::json& obj, const char* field,
                         const std::string& prefix = "") {
  const auto& v = require(obj, field, prefix);
  if (!v.is_number())
    throw field_error(prefix + field, "field '" + prefix + field + "' must be a number");
  return v.get<double>();
}

inline const nlohmann::json& get_array(const nlohmann::json& obj, const char* field,
                                       const std::string& prefix = "") {
  const auto& v = require(obj, field, prefix);
  if (!v.is_array())
    throw field_error(prefix + field, "field '" + prefix + field + "' must be an array");
  return v;
}

inline const nlohmann::json& get_object(const nlohmann::json& obj, const char* field,
                                        const std::string& prefix = "") {
  const auto& v = require(obj, field, prefix);
  if (!v.is_object())
    throw field_error(prefix + field, "field '" + prefix + field + "' must be an object");
  return v;
}

/// Parses `e.payload`, checks it is an object and that its "schema_version" matches
/// `e.schema_version` and is one this decoder knows (`max_known`).
inline nlohmann::json parse_payload(const encoded_event& e, int max_known) {
  nlohmann::json j = nlohmann::json::parse(e.payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw field_error("", "payload of " + e.type + " is not valid JSON");
  if (!j.is_object()) throw field_error("", "payload of " + e.type + " must be a JSON object");
  const auto version = get_int(j, "schema_version");
  if (version != e.schema_version)
    throw field_error("schema_version", "schema_version in payload (" + std::to_string(version) +
                                            ") differs from the envelope (" +
                                            std::to_string(e.schema_version) + ")");
  if (version < 1 || version > max_known)
    throw field_error("schema_version",
                      "unsupported schema_version " + std::to_string(version) + " for " + e.type);
  return j;
}

}  // namespace saga::domain::json_fields

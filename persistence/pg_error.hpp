// Internal to persistence: turns the exception being handled (from libpqxx or elsewhere) into a
// typed store_error, so no libpqxx exception leaves this library. Stateless; any thread.
#pragma once

#include <string>

#include "persistence/event_store.hpp"

namespace saga::persistence::detail {

struct classified_error {
  store_error error;
  bool connection_unusable = false;  ///< drop the connection and reconnect on the next call
  bool unique_violation = false;     ///< SQLSTATE 23505
};

/// Classifies the exception currently being handled; call only inside a `catch` block.
[[nodiscard]] classified_error classify_current_exception(const std::string& context);

}  // namespace saga::persistence::detail

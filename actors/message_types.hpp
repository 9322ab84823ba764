// Registers every message type of the actor runtime with a CAF configuration (names, inspect),
// as CAF 0.17 requires for types that are serialized or printed. Call once per config, before
// the actor_system is created.
#pragma once

#include <caf/fwd.hpp>

namespace saga::actors {

/// Adds the runtime's message types to `config`.
void add_message_types(caf::actor_system_config& config);

}  // namespace saga::actors

// The payment gateway actor: a detached actor (its own thread) that owns a payment_gateway and
// answers gateway_request messages, draining its mailbox into batches so one ledger round trip
// serves many payments. The only place gateway calls run; never on a scheduler thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "persistence/payment_gateway.hpp"

namespace saga::actors {

using gateway_actor = caf::typed_actor<
    caf::replies_to<persistence::gateway_request>::with<persistence::gateway_result>>;

/// Makes the gateway an actor owns; called on the actor's own thread (so a PostgreSQL ledger
/// opens its connection there). When it throws, every request is answered !ok with the reason
/// and the factory is tried again for the next batch.
using gateway_factory = std::function<std::unique_ptr<persistence::payment_gateway>()>;

struct gateway_actor_options {
  /// Requests answered per batch at most.
  std::size_t max_batch = 512;
};

/// Spawns one detached gateway actor. Stop it with an exit message (requests still parked are
/// answered !ok "payment gateway stopped"), or drop every handle to it; either way the actor
/// system's shutdown does not wait on it.
[[nodiscard]] gateway_actor spawn_gateway(caf::actor_system& system, gateway_factory make_gateway,
                                          gateway_actor_options options = {});

/// Registers gateway_request and gateway_result with a CAF configuration (names, inspect).
void add_gateway_message_types(caf::actor_system_config& config);

}  // namespace saga::actors

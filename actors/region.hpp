// A region per aggregate type: the only way to reach an aggregate. It maps id → actor, spawns on
// first message, buffers messages while an actor recovers or restarts, supervises (restart with
// exponential backoff and a budget, poison commands rejected) and passivates idle actors.
// One event-based actor; all its state is confined to it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/aggregate_actor.hpp"
#include "actors/aggregate_traits.hpp"
#include "actors/messages.hpp"
#include "actors/outcome.hpp"
#include "actors/saga_traits.hpp"

namespace saga::actors {

using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// Internal: look for idle actors.
using idle_atom = caf::atom_constant<caf::atom("idle_check")>;
/// Internal: the backoff of a crashed actor elapsed (id, generation).
using restart_atom = caf::atom_constant<caf::atom("restart")>;
/// Internal: look for actors whose recovery took longer than recovery_timeout.
using recovery_check_atom = caf::atom_constant<caf::atom("rec_check")>;
/// Internal: look for items an actor has not answered within command_timeout.
using timeout_check_atom = caf::atom_constant<caf::atom("tmo_check")>;

template <class Traits>
using region_actor =
    caf::typed_actor<typename caf::replies_to<command_request<Traits>>::template with<
                         command_reply<typename Traits::event>>,
                     typename caf::replies_to<state_query<Traits>>::template with<
                         state_reply<typename Traits::state>>,
                     caf::replies_to<stats_atom>::with<region_stats>, caf::reacts_to<idle_atom>,
                     caf::reacts_to<ready_atom>,  // internal: an actor recovered
                     caf::reacts_to<recovery_check_atom>, caf::reacts_to<timeout_check_atom>,
                     caf::reacts_to<restart_atom, std::string, std::uint64_t>>;

using order_region = region_actor<order_traits>;
using payment_region = region_actor<payment_traits>;
using inventory_region = region_actor<inventory_traits>;
using user_region = region_actor<user_traits>;
using saga_region = region_actor<saga_traits>;

/// Spawns the region of one aggregate type; its actors share `context`. Stopping the region
/// stops its actors. The region uses its own copy of `context->options`.
template <class Traits>
[[nodiscard]] region_actor<Traits> spawn_region(caf::actor_system& system,
                                                std::shared_ptr<const aggregate_context> context);

/// Same, with region settings of its own (e.g. no passivation for sagas, which stop themselves
/// when finished); the actors still use `context->options`.
template <class Traits>
[[nodiscard]] region_actor<Traits> spawn_region(caf::actor_system& system,
                                                std::shared_ptr<const aggregate_context> context,
                                                region_options options);

}  // namespace saga::actors

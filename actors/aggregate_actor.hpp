// Aggregate actors: one per aggregate instance (saga instances included), owned and supervised
// by its region. Its first message makes it recover (snapshot + events through evolve) before
// anything else is handled, unless that message is a command flagged `fresh` (a new stream: no
// read; see command_request::fresh); then it handles one command at a time: decide → append through
// the group-commit writer → evolve → reply (per-type hooks in actors/aggregate_logic.hpp: the
// payment's gateway call, the saga's actions). Confined to its actor; never blocks a scheduler
// thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/journal_reader.hpp"
#include "actors/messages.hpp"
#include "actors/options.hpp"
#include "actors/outcome.hpp"

namespace saga::persistence {
class group_commit_writer;
}

namespace saga::actors {

struct actor_services;  // see actors/services.hpp

/// Answered once recovery is done (the region sends it right after spawning).
using ready_atom = caf::atom_constant<caf::atom("ready")>;
/// Internal: the journal did not answer append `seq` in time.
using app_tmo_atom = caf::atom_constant<caf::atom("app_tmo")>;
/// Internal: re-read the journal and resume pending work (sagas, after a failed job).
using resync_atom = caf::atom_constant<caf::atom("resync")>;
/// Internal: the actor's own timer for the given (domain clock) time fired (sagas' durable
/// timers share one CAF timer per saga).
using wake_atom = caf::atom_constant<caf::atom("wake")>;
/// Internal: decide the commands queued behind the appends in flight (pipelining).
using pipe_atom = caf::atom_constant<caf::atom("pipe")>;

template <class Traits>
using aggregate_actor =
    caf::typed_actor<typename caf::replies_to<command_request<Traits>>::template with<
                         command_reply<typename Traits::event>>,
                     typename caf::replies_to<state_query<Traits>>::template with<
                         state_reply<typename Traits::state>>,
                     caf::replies_to<ready_atom>::with<ready_atom>,
                     caf::reacts_to<append_outcome>,  // internal: the writer's answer
                     caf::reacts_to<app_tmo_atom, std::uint64_t>, caf::reacts_to<resync_atom>,
                     caf::reacts_to<wake_atom, std::int64_t>, caf::reacts_to<pipe_atom>>;

/// What every aggregate actor of a runtime shares; immutable after start.
struct aggregate_context {
  std::vector<journal_reader> readers;
  persistence::group_commit_writer* writer = nullptr;  ///< outlives every actor
  region_options options;
  /// What sagas and payments need beyond the journal (regions, gateway, clock, catalog). Filled
  /// in by the runtime before any actor of it handles a message; null in bare-region setups.
  std::shared_ptr<actor_services> services;
};

/// Spawns the actor for aggregate `id` (not monitored: the caller monitors it).
template <class Traits>
[[nodiscard]] aggregate_actor<Traits> spawn_aggregate(
    caf::actor_system& system, const std::string& id,
    std::shared_ptr<const aggregate_context> context);

}  // namespace saga::actors

// Journal reader actors: detached (own thread each) and each owning its own event_store, so
// blocking journal reads and snapshot saves never run on CAF scheduler threads. Aggregate actors
// pick one of a small pool by stream id.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "persistence/event_store.hpp"

namespace saga::actors {

using load_atom = caf::atom_constant<caf::atom("load")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using snap_atom = caf::atom_constant<caf::atom("snap")>;

/// load: snapshot (when `use_snapshot`) + the events after it. read: events with version >=
/// from. snap: saves a snapshot (an older one than stored is ignored).
using journal_reader =
    caf::typed_actor<caf::replies_to<load_atom, std::string, bool>::with<stream_load>,
                     caf::replies_to<read_atom, std::string, std::int64_t>::with<stream_load>,
                     caf::replies_to<snap_atom, persistence::snapshot>::with<snapshot_saved>>;

/// Makes the store a reader owns; called on the reader's own thread.
using store_factory = std::function<std::unique_ptr<persistence::event_store>()>;

/// Spawns `count` (at least one) detached readers, each with a store from `make_store`.
[[nodiscard]] std::vector<journal_reader> spawn_journal_readers(caf::actor_system& system,
                                                                const store_factory& make_store,
                                                                std::size_t count);

/// The reader responsible for `stream_id`.
[[nodiscard]] const journal_reader& reader_for(const std::vector<journal_reader>& readers,
                                               const std::string& stream_id);

}  // namespace saga::actors

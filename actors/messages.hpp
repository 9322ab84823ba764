// Messages exchanged inside the actor runtime (regions, aggregate actors, journal readers) that
// are not part of the public outcome types. Plain values; no CAF here (see actors/inspect.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/outcome.hpp"
#include "persistence/event_store.hpp"

namespace saga::actors {

/// What a rider adds to the append of a command's events.
struct rider_write {
  persistence::append_request request;           ///< for the sender's own stream (see its riders)
  std::shared_ptr<const rider_receipt> receipt;  ///< goes back in the reply once written
};

/// A sender's own bookkeeping, to be written in the same transaction as the events its command
/// causes (persistence::append_request::riders), so the sender needs no append of its own for
/// the answer: a saga records a step's outcome this way. The aggregate actor calls it, on its
/// own thread, each time it is about to append events for the command; the store writes the
/// rider only where it applies, and the reply says whether it did (command_reply::rider).
/// Never serialized: a command that leaves the process leaves its rider behind.
template <class Event>
struct command_rider {
  virtual ~command_rider() = default;
  /// What to write along with `events`, the command's new events; nothing: no rider.
  [[nodiscard]] virtual std::optional<rider_write> ride(const std::vector<Event>& events) const = 0;
  /// Called, on the aggregate actor's thread, once the append that carries this rider's write
  /// (`receipt` is the one ride returned) is handed to the writer, before it commits. A sender
  /// may then start what only has to come after that write (see saga_rider). Default: nothing.
  virtual void submitted(const std::shared_ptr<const rider_receipt>& receipt) const {
    (void)receipt;
  }
};

/// A command for aggregate `id` of the type described by Traits.
template <class Traits>
struct command_request {
  std::string id;
  typename Traits::command command;
  command_meta meta;
  /// A hint from a sender that generated `id` just now: the stream is new, so an actor
  /// activated by this command may skip the recovery read. A wrong hint costs one version
  /// conflict and a re-read, never a wrong result (the first append expects version 0).
  bool fresh = false;
  /// The sender's bookkeeping to write with the command's events, if any (see command_rider).
  std::shared_ptr<const command_rider<typename Traits::event>> rider{};
};

/// Asks for the current state of aggregate `id`.
template <class Traits>
struct state_query {
  std::string id;
};

/// What a journal reader loaded: an optional snapshot and the events after it.
struct stream_load {
  bool ok = false;
  persistence::store_error error;
  bool has_snapshot = false;
  persistence::snapshot snap;
  std::vector<persistence::recorded_event> events;
};

/// The group-commit writer's answer for append number `seq` of one actor.
struct append_outcome {
  std::uint64_t seq = 0;
  bool ok = false;
  persistence::append_ok result;
  persistence::store_error error;
};

/// The answer to a snapshot save.
struct snapshot_saved {
  bool ok = false;
  bool stored = false;
  persistence::store_error error;
};

}  // namespace saga::actors

// Messages exchanged inside the actor runtime (regions, aggregate actors, journal readers) that
// are not part of the public outcome types. Plain values; no CAF here (see actors/inspect.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/outcome.hpp"
#include "persistence/event_store.hpp"

namespace saga::actors {

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

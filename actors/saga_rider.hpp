// Internal to saga_actors: the saga's side of riders (see command_rider in actors/messages.hpp).
// A saga's events for one input, decided ahead of time and written by another aggregate in
// the transaction of its own events; the saga actor later applies them from the receipt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "domain/saga.hpp"
#include "domain/types.hpp"
#include "persistence/event_store.hpp"

namespace saga::actors::detail {

/// What a saga applies once its rider was written: the events, on top of `expected_version`,
/// and the actions they call for.
struct saga_receipt final : rider_receipt {
  std::int64_t expected_version = 0;
  std::vector<domain::sagas::event> events;
  std::vector<domain::sagas::action> actions;
  std::string last_event_id;
};

/// Decides `in` for the saga in `state` (under `def`, at `now`) and, when that yields events,
/// the rider that writes them to `stream_id` on top of its event `after_event_id` at `version`
/// (version 0 and no id: a new stream), each event with `meta`; nothing when there is nothing
/// to write.
[[nodiscard]] std::optional<rider_write> saga_rider_write(
    const domain::sagas::saga_definition& def, const domain::sagas::state& state,
    const domain::sagas::input& in, const std::string& stream_id, std::int64_t version,
    const std::string& after_event_id, const persistence::event_metadata& meta,
    domain::timestamp now, double random01);

}  // namespace saga::actors::detail

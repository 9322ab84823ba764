// Binds saga instances to the generic event-sourced actor runtime: the saga's command (an input
// of the saga state machine, plus the definition type for a start), events, state and journal
// codec. Pure and stateless; any thread.
#pragma once

#include <memory>
#include <string>

#include "actors/outcome.hpp"
#include "domain/saga.hpp"
#include "domain/saga_codec.hpp"

namespace saga::actors {

/// What a saga actor handles: one input of domain::sagas::decide. `saga_type` names the
/// definition (in the runtime's catalog) and is only read for a start; every later input uses
/// the type recorded in the saga's state.
struct saga_command {
  std::string saga_type;
  domain::sagas::input input;
  /// An answer whose rider was written: the saga's events for this input are in the journal
  /// already (see command_rider; never serialized).
  std::shared_ptr<const rider_receipt> receipt{};
  /// `receipt`'s rider was handed to the writer and may not be committed yet: the saga only
  /// sends the commands its transition lets go out before the commit (see saga_rider::submitted).
  bool early = false;
};

struct saga_traits {
  using state = domain::sagas::state;
  using command = saga_command;
  using event = domain::sagas::event;
  static constexpr const char* stream_type = "saga";
  static constexpr int schema_version = domain::saga_schema_version;
  static state evolve(state s, const event& e) { return domain::sagas::evolve(std::move(s), e); }
  static domain::decoded<event> decode(const domain::encoded_event& e) {
    return domain::decode_saga_event(e);
  }
  static domain::decoded<state> decode_state(const std::string& json) {
    return domain::decode_saga_state(json);
  }
  /// Sagas recognise repeated and stale inputs themselves (decide ignores them).
  static std::string key(const command&) { return {}; }
};

}  // namespace saga::actors

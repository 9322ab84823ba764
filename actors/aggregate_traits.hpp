// Binds each aggregate (order, payment, inventory, user) to what the generic actor runtime needs:
// its types, decide/evolve, the journal codec, stream naming and idempotency keys. Pure and
// stateless; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "domain/aggregate_codec.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/payment.hpp"
#include "domain/user.hpp"

namespace saga::actors {

/// The journal stream of aggregate `id` of type `stream_type`: "<type>-<id>", so ids of
/// different aggregate types never share a stream.
[[nodiscard]] inline std::string stream_id_of(const char* stream_type, const std::string& id) {
  return std::string(stream_type) + "-" + id;
}

/// The idempotency key of a command variant whose alternatives all carry one.
template <class Command>
[[nodiscard]] std::string idempotency_key_of(const Command& cmd) {
  return std::visit([](const auto& c) { return c.idempotency_key; }, cmd);
}

struct order_traits {
  using state = domain::order::state;
  using command = domain::order::command;
  using event = domain::order::event;
  static constexpr const char* stream_type = "order";
  static constexpr int schema_version = domain::aggregate_schema_version;
  static auto decide(const state& s, const command& c) { return domain::order::decide(s, c); }
  static state evolve(state s, const event& e) { return domain::order::evolve(std::move(s), e); }
  static domain::decoded<event> decode(const domain::encoded_event& e) {
    return domain::decode_order_event(e);
  }
  static domain::decoded<state> decode_state(const std::string& json) {
    return domain::decode_order_state(json);
  }
  static std::string key(const command& c) { return idempotency_key_of(c); }
};

struct payment_traits {
  using state = domain::payment::state;
  using command = domain::payment::command;
  using event = domain::payment::event;
  static constexpr const char* stream_type = "payment";
  static constexpr int schema_version = domain::aggregate_schema_version;
  static auto decide(const state& s, const command& c) { return domain::payment::decide(s, c); }
  static state evolve(state s, const event& e) { return domain::payment::evolve(std::move(s), e); }
  static domain::decoded<event> decode(const domain::encoded_event& e) {
    return domain::decode_payment_event(e);
  }
  static domain::decoded<state> decode_state(const std::string& json) {
    return domain::decode_payment_state(json);
  }
  static std::string key(const command& c) { return idempotency_key_of(c); }
};

struct inventory_traits {
  using state = domain::inventory::state;
  using command = domain::inventory::command;
  using event = domain::inventory::event;
  static constexpr const char* stream_type = "inventory";
  static constexpr int schema_version = domain::aggregate_schema_version;
  static auto decide(const state& s, const command& c) { return domain::inventory::decide(s, c); }
  static state evolve(state s, const event& e) {
    return domain::inventory::evolve(std::move(s), e);
  }
  static domain::decoded<event> decode(const domain::encoded_event& e) {
    return domain::decode_inventory_event(e);
  }
  static domain::decoded<state> decode_state(const std::string& json) {
    return domain::decode_inventory_state(json);
  }
  static std::string key(const command& c) { return idempotency_key_of(c); }
};

struct user_traits {
  using state = domain::user::state;
  using command = domain::user::command;
  using event = domain::user::event;
  static constexpr const char* stream_type = "user";
  static constexpr int schema_version = domain::aggregate_schema_version;
  static auto decide(const state& s, const command& c) { return domain::user::decide(s, c); }
  static state evolve(state s, const event& e) { return domain::user::evolve(std::move(s), e); }
  static domain::decoded<event> decode(const domain::encoded_event& e) {
    return domain::decode_user_event(e);
  }
  static domain::decoded<state> decode_state(const std::string& json) {
    return domain::decode_user_state(json);
  }
  /// Registration has no idempotency key: a repeated one is rejected as already_exists.
  static std::string key(const command&) { return {}; }
};

}  // namespace saga::actors

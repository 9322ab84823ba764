// CAF inspect() overloads for every type that travels in an actor message: domain commands,
// events and states, journal records and the runtime's own messages. Lets CAF serialize them
// (for the cluster later) and print them. Header-only; stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <variant>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>

#include "actors/messages.hpp"
#include "actors/outcome.hpp"
#include "domain/idempotency.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/payment.hpp"
#include "domain/rejection.hpp"
#include "domain/user.hpp"
#include "persistence/event_store.hpp"

namespace saga::actors::detail {

template <class Variant, std::size_t... Is>
bool emplace_index(Variant& v, std::size_t index, std::index_sequence<Is...>) {
  return ((index == Is ? (v.template emplace<Is>(), true) : false) || ...);
}

/// std::variant as (index, alternative). CAF 0.17 only knows its own variant type.
template <class Inspector, class... Ts>
typename Inspector::result_type inspect_variant(Inspector& f, std::variant<Ts...>& x) {
  if constexpr (Inspector::reads_state) {
    auto index = static_cast<std::uint8_t>(x.index());
    return std::visit([&](auto& alternative) ->
                      typename Inspector::result_type { return f(index, alternative); },
                      x);
  } else {
    std::uint8_t index = 0;
    if (auto err = f(index)) return err;
    if (!emplace_index(x, index, std::index_sequence_for<Ts...>{})) {
      return caf::make_error(caf::sec::invalid_argument, "variant index out of range");
    }
    return std::visit([&](auto& alternative) -> caf::error { return f(alternative); }, x);
  }
}

/// std::optional as (engaged, value?).
template <class Inspector, class T>
typename Inspector::result_type inspect_optional(Inspector& f, std::optional<T>& x) {
  if constexpr (Inspector::reads_state) {
    bool engaged = x.has_value();
    if (engaged) return f(engaged, *x);
    return f(engaged);
  } else {
    bool engaged = false;
    if (auto err = f(engaged)) return err;
    if (!engaged) {
      x.reset();
      return caf::none;
    }
    x.emplace();
    return f(*x);
  }
}

}  // namespace saga::actors::detail

namespace saga::domain {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rejection& x) {
  return f(caf::meta::type_name("rejection"), x.code, x.message);
}
template <class Inspector, class Event>
typename Inspector::result_type inspect(Inspector& f, remembered<Event>& x) {
  return f(caf::meta::type_name("remembered"), x.key, x.events);
}
/// Capacity, then the entries oldest first; loading rebuilds the memory through remember().
template <class Inspector, class Event>
typename Inspector::result_type inspect(Inspector& f, idempotency_memory<Event>& x) {
  if constexpr (Inspector::reads_state) {
    std::uint64_t capacity = x.capacity();
    std::vector<remembered<Event>> entries(x.begin(), x.end());
    return f(caf::meta::type_name("idempotency_memory"), capacity, entries);
  } else {
    std::uint64_t capacity = 0;
    std::vector<remembered<Event>> entries;
    if (auto err = f(caf::meta::type_name("idempotency_memory"), capacity, entries)) return err;
    idempotency_memory<Event> loaded(static_cast<std::size_t>(capacity));
    for (const auto& entry : entries)
      for (const auto& e : entry.events) loaded.remember(entry.key, e);
    x = std::move(loaded);
    return caf::none;
  }
}
}  // namespace saga::domain

namespace saga::domain::order {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, line_item& x) {
  return f(caf::meta::type_name("line_item"), x.product_id, x.product_name, x.quantity,
           x.unit_price);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create& x) {
  return f(caf::meta::type_name("order_create"), x.order_id, x.customer_id, x.items,
           x.shipping_address, x.correlation_id, x.saga_id, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, confirm& x) {
  return f(caf::meta::type_name("order_confirm"), x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel& x) {
  return f(caf::meta::type_name("order_cancel"), x.reason, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_created& x) {
  return f(caf::meta::type_name("OrderCreated"), x.order_id, x.customer_id, x.items, x.total,
           x.shipping_address, x.correlation_id, x.saga_id, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_confirmed& x) {
  return f(caf::meta::type_name("OrderConfirmed"), x.order_id, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_cancelled& x) {
  return f(caf::meta::type_name("OrderCancelled"), x.order_id, x.reason, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state& x) {
  return f(caf::meta::type_name("order_state"), x.status_, x.order_id, x.customer_id, x.items,
           x.total, x.shipping_address, x.correlation_id, x.saga_id, x.failure_reason, x.created_at,
           x.updated_at, x.version, x.handled);
}
}  // namespace saga::domain::order

namespace saga::domain::payment {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gateway_answer& x) {
  return f(caf::meta::type_name("gateway_answer"), x.approved, x.transaction_id, x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, std::optional<gateway_answer>& x) {
  return actors::detail::inspect_optional(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process& x) {
  return f(caf::meta::type_name("payment_process"), x.payment_id, x.order_id, x.customer_id,
           x.amount, x.at, x.idempotency_key, x.gateway);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, charge_ref& x) {
  return f(caf::meta::type_name("charge_ref"), x.idempotency_key, x.payment_id, x.order_id,
           x.customer_id, x.amount);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, std::optional<charge_ref>& x) {
  return actors::detail::inspect_optional(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, void_answer& x) {
  return f(caf::meta::type_name("void_answer"), x.refunded, x.charge_transaction_id, x.amount,
           x.refund_transaction_id, x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, std::optional<void_answer>& x) {
  return actors::detail::inspect_optional(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refund& x) {
  return f(caf::meta::type_name("payment_refund"), x.reason, x.at, x.idempotency_key, x.gateway,
           x.charge, x.voided);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_processed& x) {
  return f(caf::meta::type_name("PaymentProcessed"), x.payment_id, x.order_id, x.customer_id,
           x.amount, x.transaction_id, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_failed& x) {
  return f(caf::meta::type_name("PaymentFailed"), x.payment_id, x.order_id, x.customer_id, x.amount,
           x.reason, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_refunded& x) {
  return f(caf::meta::type_name("PaymentRefunded"), x.payment_id, x.order_id, x.amount, x.reason,
           x.refund_transaction_id, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state& x) {
  return f(caf::meta::type_name("payment_state"), x.status_, x.payment_id, x.order_id,
           x.customer_id, x.amount, x.transaction_id, x.failure_reason, x.version, x.handled);
}
}  // namespace saga::domain::payment

namespace saga::domain::inventory {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, register_product& x) {
  return f(caf::meta::type_name("inventory_register"), x.product_id, x.name, x.price,
           x.initial_stock, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, restock& x) {
  return f(caf::meta::type_name("inventory_restock"), x.quantity, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reserve& x) {
  return f(caf::meta::type_name("inventory_reserve"), x.order_id, x.quantity, x.at,
           x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, release& x) {
  return f(caf::meta::type_name("inventory_release"), x.order_id, x.reason, x.at,
           x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, product_registered& x) {
  return f(caf::meta::type_name("ProductRegistered"), x.product_id, x.name, x.price,
           x.initial_stock, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stock_added& x) {
  return f(caf::meta::type_name("StockAdded"), x.product_id, x.quantity, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inventory_reserved& x) {
  return f(caf::meta::type_name("InventoryReserved"), x.product_id, x.order_id, x.quantity, x.at,
           x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inventory_reservation_failed& x) {
  return f(caf::meta::type_name("InventoryReservationFailed"), x.product_id, x.order_id, x.quantity,
           x.available, x.reason, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inventory_released& x) {
  return f(caf::meta::type_name("InventoryReleased"), x.product_id, x.order_id, x.quantity,
           x.reason, x.at, x.idempotency_key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state& x) {
  return f(caf::meta::type_name("inventory_state"), x.registered, x.product_id, x.name, x.price,
           x.available, x.reserved, x.reservations, x.version, x.handled);
}
}  // namespace saga::domain::inventory

namespace saga::domain::user {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, register_user& x) {
  return f(caf::meta::type_name("user_register"), x.user_id, x.email, x.name, x.password_hash,
           x.role_, x.at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_registered& x) {
  return f(caf::meta::type_name("UserRegistered"), x.user_id, x.email, x.name, x.password_hash,
           x.role_, x.at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return actors::detail::inspect_variant(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state& x) {
  return f(caf::meta::type_name("user_state"), x.registered, x.user_id, x.email, x.name,
           x.password_hash, x.role_, x.registered_at, x.version);
}
}  // namespace saga::domain::user

namespace saga::persistence {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_metadata& x) {
  return f(caf::meta::type_name("event_metadata"), x.correlation_id, x.causation_id, x.command_id,
           x.node_id, x.user_id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recorded_event& x) {
  return f(caf::meta::type_name("recorded_event"), x.position, x.stream_id, x.stream_type,
           x.version, x.event_id, x.event_type, x.schema_version, x.payload, x.metadata,
           x.recorded_at_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot& x) {
  return f(caf::meta::type_name("snapshot"), x.stream_id, x.stream_type, x.version,
           x.schema_version, x.payload, x.taken_at_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_error& x) {
  return f(caf::meta::type_name("store_error"), x.code, x.message, x.actual_version);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_ok& x) {
  return f(caf::meta::type_name("append_ok"), x.version, x.last_position, x.duplicate,
           x.riders_written);
}
}  // namespace saga::persistence

namespace saga::actors {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command_meta& x) {
  return f(caf::meta::type_name("command_meta"), x.correlation_id, x.causation_id, x.command_id,
           x.user_id);
}
template <class Inspector, class Event>
typename Inspector::result_type inspect(Inspector& f, command_reply<Event>& x) {
  return f(caf::meta::type_name("command_reply"), x.kind, x.events, x.version, x.rejection,
           x.failure, x.message);
}
template <class Inspector, class State>
typename Inspector::result_type inspect(Inspector& f, state_reply<State>& x) {
  return f(caf::meta::type_name("state_reply"), x.ok, x.state, x.failure, x.message);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, region_stats& x) {
  return f(caf::meta::type_name("region_stats"), x.active, x.spawned, x.crashes, x.restarts,
           x.passivations, x.poison, x.gave_up, x.buffered);
}
template <class Inspector, class Traits>
typename Inspector::result_type inspect(Inspector& f, command_request<Traits>& x) {
  return f(caf::meta::type_name("command_request"), x.id, x.command, x.meta, x.fresh);
}
template <class Inspector, class Traits>
typename Inspector::result_type inspect(Inspector& f, state_query<Traits>& x) {
  return f(caf::meta::type_name("state_query"), x.id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_load& x) {
  return f(caf::meta::type_name("stream_load"), x.ok, x.error, x.has_snapshot, x.snap, x.events);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_outcome& x) {
  return f(caf::meta::type_name("append_outcome"), x.seq, x.ok, x.result, x.error);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_saved& x) {
  return f(caf::meta::type_name("snapshot_saved"), x.ok, x.stored, x.error);
}
}  // namespace saga::actors

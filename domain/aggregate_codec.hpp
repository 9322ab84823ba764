// JSON codec for the order, payment, inventory and user aggregates: events for the journal
// and whole states for snapshots. Pure and thread-safe. Encoding never throws; decoding
// never throws either and names the offending field ("items[1].quantity") on failure.
#pragma once

#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/payment.hpp"
#include "domain/user.hpp"
#include "domain/validation.hpp"

namespace saga::domain {

/// Schema version written by this codec for every event and snapshot.
inline constexpr int aggregate_schema_version = 1;

// ---- event type names ("OrderCreated", …) ----

/// The journal type name of an event, e.g. "OrderCreated".
[[nodiscard]] std::string_view event_type(const order::event& e) noexcept;
[[nodiscard]] std::string_view event_type(const payment::event& e) noexcept;
[[nodiscard]] std::string_view event_type(const inventory::event& e) noexcept;
[[nodiscard]] std::string_view event_type(const user::event& e) noexcept;

// ---- events ----

/// Encodes an event as type name + JSON payload (camelCase fields and "schema_version").
[[nodiscard]] encoded_event encode(const order::event& e);
[[nodiscard]] encoded_event encode(const payment::event& e);
[[nodiscard]] encoded_event encode(const inventory::event& e);
[[nodiscard]] encoded_event encode(const user::event& e);

/// Decodes a journal event; an unknown type, corrupt JSON, a missing or mistyped field or an
/// unsupported schema version is a decode_error.
[[nodiscard]] decoded<order::event> decode_order_event(const encoded_event& e);
[[nodiscard]] decoded<payment::event> decode_payment_event(const encoded_event& e);
[[nodiscard]] decoded<inventory::event> decode_inventory_event(const encoded_event& e);
[[nodiscard]] decoded<user::event> decode_user_event(const encoded_event& e);

// ---- snapshots ----

/// Encodes a whole state (version and idempotency memory included, oldest key first) as a
/// JSON object. The memory is bounded, so it adds a fixed maximum to a snapshot however many
/// commands the aggregate handled.
[[nodiscard]] std::string encode_state(const order::state& s);
[[nodiscard]] std::string encode_state(const payment::state& s);
[[nodiscard]] std::string encode_state(const inventory::state& s);
[[nodiscard]] std::string encode_state(const user::state& s);

/// Decodes a snapshot written by encode_state; errors name the field as for events. Snapshots
/// whose "handled" is the older unbounded object map still decode (key order is then the
/// object's, and at most max_remembered_keys of them are kept).
[[nodiscard]] decoded<order::state> decode_order_state(const std::string& json);
[[nodiscard]] decoded<payment::state> decode_payment_state(const std::string& json);
[[nodiscard]] decoded<inventory::state> decode_inventory_state(const std::string& json);
[[nodiscard]] decoded<user::state> decode_user_state(const std::string& json);

}  // namespace saga::domain

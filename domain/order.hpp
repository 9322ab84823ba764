// Order aggregate: state, commands, events, decide and evolve (pure, thread-safe).
// An order is created PENDING by the API, then CONFIRMED or CANCELLED by its saga.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/idempotency.hpp"
#include "domain/money.hpp"
#include "domain/rejection.hpp"
#include "domain/types.hpp"

namespace saga::domain::order {

enum class status { none, pending, confirmed, cancelled };
[[nodiscard]] std::string_view to_string(status s) noexcept;  ///< "PENDING", …
/// Inverse of to_string; nullopt for an unknown name.
[[nodiscard]] std::optional<status> parse_status(std::string_view name) noexcept;

struct line_item {
  std::string product_id;
  std::string product_name;
  std::int64_t quantity = 0;
  money unit_price = 0;
  friend bool operator==(const line_item& a, const line_item& b) {
    return a.product_id == b.product_id && a.product_name == b.product_name &&
           a.quantity == b.quantity && a.unit_price == b.unit_price;
  }
};

// ---- commands ----
struct create {
  std::string order_id;
  std::string customer_id;
  std::vector<line_item> items;
  std::string shipping_address;
  std::string correlation_id;
  std::string saga_id;
  timestamp at = 0;
  std::string idempotency_key;
};
struct confirm {
  timestamp at = 0;
  std::string idempotency_key;
};
struct cancel {
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
};
using command = std::variant<create, confirm, cancel>;

// ---- events ----
struct order_created {
  std::string order_id;
  std::string customer_id;
  std::vector<line_item> items;
  money total = 0;
  std::string shipping_address;
  std::string correlation_id;
  std::string saga_id;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const order_created& a, const order_created& b) {
    return a.order_id == b.order_id && a.customer_id == b.customer_id && a.items == b.items &&
           a.total == b.total && a.shipping_address == b.shipping_address &&
           a.correlation_id == b.correlation_id && a.saga_id == b.saga_id && a.at == b.at &&
           a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const order_created& a, const order_created& b) { return !(a == b); }
};
struct order_confirmed {
  std::string order_id;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const order_confirmed& a, const order_confirmed& b) {
    return a.order_id == b.order_id && a.at == b.at && a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const order_confirmed& a, const order_confirmed& b) { return !(a == b); }
};
struct order_cancelled {
  std::string order_id;
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const order_cancelled& a, const order_cancelled& b) {
    return a.order_id == b.order_id && a.reason == b.reason && a.at == b.at &&
           a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const order_cancelled& a, const order_cancelled& b) { return !(a == b); }
};
using event = std::variant<order_created, order_confirmed, order_cancelled>;

// ---- state ----
struct state {
  status status_ = status::none;
  std::string order_id;
  std::string customer_id;
  std::vector<line_item> items;
  money total = 0;
  std::string shipping_address;
  std::string correlation_id;
  std::string saga_id;
  std::string failure_reason;
  timestamp created_at = 0;
  timestamp updated_at = 0;
  std::int64_t version = 0;  ///< number of events applied
  /// The newest idempotency keys handled → the events they produced (bounded). Once a key is
  /// forgotten, the status rules refuse a repeated create/confirm/cancel.
  idempotency_memory<event> handled;
};

/// Validates `cmd` against `s`: new events, a replay of an earlier outcome, or a rejection.
[[nodiscard]] result<decision<event>> decide(const state& s, const command& cmd);
/// Applies one event; total (every event type is handled).
[[nodiscard]] state evolve(state s, const event& e);

}  // namespace saga::domain::order

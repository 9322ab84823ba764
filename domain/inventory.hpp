// Inventory aggregate, one per product: state, commands, events, decide, evolve. Pure.
// Stock never goes negative: a reserve beyond what is available records
// InventoryReservationFailed (a durable, idempotent outcome) instead of reserving.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "domain/money.hpp"
#include "domain/rejection.hpp"
#include "domain/types.hpp"

namespace saga::domain::inventory {

// ---- commands ----
struct register_product {
  std::string product_id;
  std::string name;
  money price = 0;
  std::int64_t initial_stock = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
struct restock {
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
struct reserve {
  std::string order_id;
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
/// Gives back what `order_id` holds; a release with nothing reserved succeeds and emits nothing.
struct release {
  std::string order_id;
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
};
using command = std::variant<register_product, restock, reserve, release>;

// ---- events ----
struct product_registered {
  std::string product_id;
  std::string name;
  money price = 0;
  std::int64_t initial_stock = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
struct stock_added {
  std::string product_id;
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
struct inventory_reserved {
  std::string product_id;
  std::string order_id;
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
struct inventory_reservation_failed {
  std::string product_id;
  std::string order_id;
  std::int64_t quantity = 0;
  std::int64_t available = 0;
  std::string reason;  ///< "insufficient_stock"
  timestamp at = 0;
  std::string idempotency_key;
};
struct inventory_released {
  std::string product_id;
  std::string order_id;
  std::int64_t quantity = 0;
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
};
using event = std::variant<product_registered, stock_added, inventory_reserved,
                           inventory_reservation_failed, inventory_released>;

// ---- state ----
struct state {
  bool registered = false;
  std::string product_id;
  std::string name;
  money price = 0;
  std::int64_t available = 0;                        ///< can be reserved now; never negative
  std::int64_t reserved = 0;                         ///< held by orders
  std::map<std::string, std::int64_t> reservations;  ///< order id → quantity held
  std::int64_t version = 0;
  std::unordered_map<std::string, std::vector<event>> handled;
};

[[nodiscard]] result<decision<event>> decide(const state& s, const command& cmd);
[[nodiscard]] state evolve(state s, const event& e);

}  // namespace saga::domain::inventory

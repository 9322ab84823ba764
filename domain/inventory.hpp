// Inventory aggregate, one per product: state, commands, events, decide, evolve. Pure.
// Stock never goes negative: a reserve beyond what is available records
// InventoryReservationFailed (a durable, idempotent outcome) instead of reserving.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "domain/idempotency.hpp"
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
/// Adds stock. Idempotent only while its key is remembered (see max_remembered_keys): the
/// state cannot tell a retried delivery from a second one.
struct restock {
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
};
/// Holds `quantity` for `order_id`; an order holds at most one reservation per product. A
/// reserve for an order that already holds exactly `quantity` is answered as a replay of that
/// reservation (its key may have been forgotten); any other quantity is already_processed.
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
  friend bool operator==(const product_registered& a, const product_registered& b) {
    return a.product_id == b.product_id && a.name == b.name && a.price == b.price &&
           a.initial_stock == b.initial_stock && a.at == b.at &&
           a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const product_registered& a, const product_registered& b) {
    return !(a == b);
  }
};
struct stock_added {
  std::string product_id;
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const stock_added& a, const stock_added& b) {
    return a.product_id == b.product_id && a.quantity == b.quantity && a.at == b.at &&
           a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const stock_added& a, const stock_added& b) { return !(a == b); }
};
struct inventory_reserved {
  std::string product_id;
  std::string order_id;
  std::int64_t quantity = 0;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const inventory_reserved& a, const inventory_reserved& b) {
    return a.product_id == b.product_id && a.order_id == b.order_id && a.quantity == b.quantity &&
           a.at == b.at && a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const inventory_reserved& a, const inventory_reserved& b) {
    return !(a == b);
  }
};
struct inventory_reservation_failed {
  std::string product_id;
  std::string order_id;
  std::int64_t quantity = 0;
  std::int64_t available = 0;
  std::string reason;  ///< "insufficient_stock"
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const inventory_reservation_failed& a,
                         const inventory_reservation_failed& b) {
    return a.product_id == b.product_id && a.order_id == b.order_id && a.quantity == b.quantity &&
           a.available == b.available && a.reason == b.reason && a.at == b.at &&
           a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const inventory_reservation_failed& a,
                         const inventory_reservation_failed& b) {
    return !(a == b);
  }
};
struct inventory_released {
  std::string product_id;
  std::string order_id;
  std::int64_t quantity = 0;
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const inventory_released& a, const inventory_released& b) {
    return a.product_id == b.product_id && a.order_id == b.order_id && a.quantity == b.quantity &&
           a.reason == b.reason && a.at == b.at && a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const inventory_released& a, const inventory_released& b) {
    return !(a == b);
  }
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
  /// The newest idempotency keys handled → their events (bounded: a hot product handles a key
  /// per order). Once a key is forgotten, `reservations` keeps reserve and release harmless.
  idempotency_memory<event> handled;
};

[[nodiscard]] result<decision<event>> decide(const state& s, const command& cmd);
[[nodiscard]] state evolve(state s, const event& e);

}  // namespace saga::domain::inventory

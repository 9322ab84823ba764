#include "domain/inventory.hpp"

#include <optional>
#include <string>
#include <utility>

#include "domain/validation.hpp"

namespace saga::domain::inventory {

namespace {

using rc = rejection_code;

/// Largest single restock or initial stock; anything above is a typo, not a delivery.
constexpr std::int64_t max_restock_quantity = 1'000'000'000;

std::optional<rejection> unknown(const state& s) {
  if (s.registered) return std::nullopt;
  return rejection{rc::unknown_product, "the product is not registered"};
}

result<decision<event>> decide_register(const state& s, const register_product& c) {
  if (s.registered)
    return reject(rc::already_exists, "product " + s.product_id + " is already registered");
  if (auto bad = text_error("product_id", c.product_id, true)) return unexpected{*bad};
  if (auto bad = text_error("name", c.name, true)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (c.price <= 0)
    return reject(rc::invalid_price, "price must be positive, got " + std::to_string(c.price));
  if (c.initial_stock < 0 || c.initial_stock > max_restock_quantity)
    return reject(rc::invalid_quantity, "initial_stock must be between 0 and " +
                                            std::to_string(max_restock_quantity) + ", got " +
                                            std::to_string(c.initial_stock));
  return emit<event>(
      product_registered{c.product_id, c.name, c.price, c.initial_stock, c.at, c.idempotency_key});
}

result<decision<event>> decide_restock(const state& s, const restock& c) {
  if (auto bad = unknown(s)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (c.quantity <= 0 || c.quantity > max_restock_quantity)
    return reject(rc::invalid_quantity, "quantity must be between 1 and " +
                                            std::to_string(max_restock_quantity) + ", got " +
                                            std::to_string(c.quantity));
  // available + reserved must stay representable so a later release cannot overflow either.
  const auto available = checked_add(s.available, c.quantity);
  if (!available || !checked_add(*available, s.reserved))
    return reject(rc::money_overflow, "restocking " + std::to_string(c.quantity) + " onto " +
                                          std::to_string(s.available) + " available and " +
                                          std::to_string(s.reserved) + " reserved overflows");
  return emit<event>(stock_added{s.product_id, c.quantity, c.at, c.idempotency_key});
}

result<decision<event>> decide_reserve(const state& s, const reserve& c) {
  if (auto bad = unknown(s)) return unexpected{*bad};
  if (auto bad = text_error("order_id", c.order_id, true)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (c.quantity <= 0 || c.quantity > max_item_quantity)
    return reject(rc::invalid_quantity, "quantity must be between 1 and " +
                                            std::to_string(max_item_quantity) + ", got " +
                                            std::to_string(c.quantity));
  if (auto held = s.reservations.find(c.order_id); held != s.reservations.end()) {
    // The key is not (or no longer) remembered, but the reservation is: a re-send whose key
    // was forgotten must neither hold twice nor fail a saga whose stock is already held, so
    // the same request is answered with the reservation it made. The saga stamps a step's
    // first `at` into every re-send, so this is the very event the first attempt recorded.
    if (held->second != c.quantity)
      return reject(rc::already_processed,
                    "order " + c.order_id + " already holds " + std::to_string(held->second) +
                        " of product " + s.product_id + ", not " + std::to_string(c.quantity));
    decision<event> d;
    d.replayed = true;
    d.earlier.emplace_back(
        inventory_reserved{s.product_id, c.order_id, held->second, c.at, c.idempotency_key});
    return d;
  }
  if (c.quantity > s.available)
    return emit<event>(inventory_reservation_failed{s.product_id, c.order_id, c.quantity,
                                                    s.available, "insufficient_stock", c.at,
                                                    c.idempotency_key});
  return emit<event>(
      inventory_reserved{s.product_id, c.order_id, c.quantity, c.at, c.idempotency_key});
}

result<decision<event>> decide_release(const state& s, const release& c) {
  if (auto bad = unknown(s)) return unexpected{*bad};
  if (auto bad = text_error("order_id", c.order_id, true)) return unexpected{*bad};
  if (auto bad = text_error("reason", c.reason, false)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  auto held = s.reservations.find(c.order_id);
  // Compensation must be safe to repeat: releasing nothing is a success with no events.
  if (held == s.reservations.end()) return decision<event>{};
  return emit<event>(inventory_released{s.product_id, c.order_id, held->second, c.reason, c.at,
                                        c.idempotency_key});
}

struct command_handler {
  const state& s;
  result<decision<event>> operator()(const register_product& c) const {
    return decide_register(s, c);
  }
  result<decision<event>> operator()(const restock& c) const { return decide_restock(s, c); }
  result<decision<event>> operator()(const reserve& c) const { return decide_reserve(s, c); }
  result<decision<event>> operator()(const release& c) const { return decide_release(s, c); }
};

struct event_handler {
  state& s;
  void operator()(const product_registered& e) const {
    s.registered = true;
    s.product_id = e.product_id;
    s.name = e.name;
    s.price = e.price;
    s.available = e.initial_stock;
    s.reserved = 0;
    s.reservations.clear();
  }
  void operator()(const stock_added& e) const { s.available += e.quantity; }
  void operator()(const inventory_reserved& e) const {
    s.available -= e.quantity;
    s.reserved += e.quantity;
    s.reservations[e.order_id] += e.quantity;
  }
  void operator()(const inventory_reservation_failed&) const {}  // an outcome, not a change
  void operator()(const inventory_released& e) const {
    s.available += e.quantity;
    s.reserved -= e.quantity;
    auto it = s.reservations.find(e.order_id);
    if (it != s.reservations.end()) {
      it->second -= e.quantity;
      if (it->second <= 0) s.reservations.erase(it);
    }
  }
};

}  // namespace

result<decision<event>> decide(const state& s, const command& cmd) {
  if (auto earlier = replay(s.handled, key_of(cmd))) return std::move(*earlier);
  return std::visit(command_handler{s}, cmd);
}

state evolve(state s, const event& e) {
  std::visit(event_handler{s}, e);
  return record_applied(std::move(s), e);
}

}  // namespace saga::domain::inventory

#include "domain/order.hpp"

#include <optional>
#include <string>
#include <utility>

#include "domain/validation.hpp"

namespace saga::domain::order {

namespace {

using rc = rejection_code;

result<decision<event>> decide_create(const state& s, const create& c) {
  if (s.status_ != status::none)
    return reject(rc::already_exists, "order " + s.order_id + " already exists");
  if (auto bad = text_error("order_id", c.order_id, true)) return unexpected{*bad};
  if (auto bad = text_error("customer_id", c.customer_id, true)) return unexpected{*bad};
  if (auto bad = text_error("shipping_address", c.shipping_address, false)) return unexpected{*bad};
  if (auto bad = text_error("correlation_id", c.correlation_id, false)) return unexpected{*bad};
  if (auto bad = text_error("saga_id", c.saga_id, false)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (c.items.empty()) return reject(rc::invalid_argument, "items must not be empty");
  if (c.items.size() > max_order_items)
    return reject(rc::too_many_items, "an order holds at most " + std::to_string(max_order_items) +
                                          " items, got " + std::to_string(c.items.size()));
  money total = 0;
  for (std::size_t i = 0; i < c.items.size(); ++i) {
    const auto& item = c.items[i];
    const std::string at = "items[" + std::to_string(i) + "]";
    if (auto bad = text_error(at + ".product_id", item.product_id, true)) return unexpected{*bad};
    if (auto bad = text_error(at + ".product_name", item.product_name, false))
      return unexpected{*bad};
    if (item.quantity <= 0 || item.quantity > max_item_quantity)
      return reject(rc::invalid_quantity, at + ".quantity must be between 1 and " +
                                              std::to_string(max_item_quantity) + ", got " +
                                              std::to_string(item.quantity));
    if (item.unit_price <= 0)
      return reject(rc::invalid_price,
                    at + ".unit_price must be positive, got " + std::to_string(item.unit_price));
    const auto line = checked_mul(item.unit_price, item.quantity);
    const auto sum = line ? checked_add(total, *line) : std::nullopt;
    if (!sum)
      return reject(rc::money_overflow, "order total overflows at " + at + " (" +
                                            std::to_string(item.quantity) + " x " +
                                            std::to_string(item.unit_price) + ")");
    total = *sum;
  }
  return emit<event>(order_created{c.order_id, c.customer_id, c.items, total, c.shipping_address,
                                   c.correlation_id, c.saga_id, c.at, c.idempotency_key});
}

result<decision<event>> decide_confirm(const state& s, const confirm& c) {
  switch (s.status_) {
    case status::none:
      return reject(rc::not_found, "cannot confirm: the order does not exist");
    case status::cancelled:
      return reject(rc::already_cancelled, "cannot confirm order " + s.order_id +
                                               ": it was cancelled (" + s.failure_reason + ")");
    case status::confirmed:
      return reject(rc::already_confirmed, "order " + s.order_id + " is already confirmed");
    case status::pending:
      break;
  }
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  return emit<event>(order_confirmed{s.order_id, c.at, c.idempotency_key});
}

result<decision<event>> decide_cancel(const state& s, const cancel& c) {
  switch (s.status_) {
    case status::none:
      return reject(rc::not_found, "cannot cancel: the order does not exist");
    case status::cancelled:
      return reject(rc::already_cancelled, "order " + s.order_id + " is already cancelled");
    case status::pending:
    case status::confirmed:  // the saga compensates what a confirmed order already did
      break;
  }
  if (auto bad = text_error("reason", c.reason, false)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  return emit<event>(order_cancelled{s.order_id, c.reason, c.at, c.idempotency_key});
}

struct command_handler {
  const state& s;
  result<decision<event>> operator()(const create& c) const { return decide_create(s, c); }
  result<decision<event>> operator()(const confirm& c) const { return decide_confirm(s, c); }
  result<decision<event>> operator()(const cancel& c) const { return decide_cancel(s, c); }
};

struct event_handler {
  state& s;
  void operator()(const order_created& e) const {
    s.status_ = status::pending;
    s.order_id = e.order_id;
    s.customer_id = e.customer_id;
    s.items = e.items;
    s.total = e.total;
    s.shipping_address = e.shipping_address;
    s.correlation_id = e.correlation_id;
    s.saga_id = e.saga_id;
    s.created_at = e.at;
    s.updated_at = e.at;
  }
  void operator()(const order_confirmed& e) const {
    s.status_ = status::confirmed;
    s.updated_at = e.at;
  }
  void operator()(const order_cancelled& e) const {
    s.status_ = status::cancelled;
    s.failure_reason = e.reason;
    s.updated_at = e.at;
  }
};

}  // namespace

std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::none:
      return "NONE";
    case status::pending:
      return "PENDING";
    case status::confirmed:
      return "CONFIRMED";
    case status::cancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

std::optional<status> parse_status(std::string_view name) noexcept {
  for (auto s : {status::none, status::pending, status::confirmed, status::cancelled})
    if (to_string(s) == name) return s;
  return std::nullopt;
}

result<decision<event>> decide(const state& s, const command& cmd) {
  if (auto earlier = replay(s.handled, key_of(cmd))) return std::move(*earlier);
  return std::visit(command_handler{s}, cmd);
}

state evolve(state s, const event& e) {
  std::visit(event_handler{s}, e);
  return record_applied(std::move(s), e);
}

}  // namespace saga::domain::order

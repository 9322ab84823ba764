#include "domain/payment.hpp"

#include <optional>
#include <string>
#include <utility>

#include "domain/validation.hpp"

namespace saga::domain::payment {

namespace {

using rc = rejection_code;

// The gateway answer is checked last: the payment actor may call decide without one first,
// and only charge when the sole objection is the missing answer.
result<decision<event>> decide_process(const state& s, const process& c) {
  if (auto bad = text_error("payment_id", c.payment_id, true)) return unexpected{*bad};
  if (auto bad = text_error("order_id", c.order_id, true)) return unexpected{*bad};
  if (auto bad = text_error("customer_id", c.customer_id, true)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (c.amount <= 0)
    return reject(rc::invalid_price, "amount must be positive, got " + std::to_string(c.amount));
  switch (s.status_) {
    case status::processed:
      return reject(rc::already_processed, "payment " + s.payment_id + " for order " + s.order_id +
                                               " was already processed");
    case status::refunded:
      return reject(rc::already_refunded,
                    "payment " + s.payment_id + " for order " + s.order_id + " was refunded");
    case status::failed:
      // A declined payment may be tried again, but only for the same payment and order.
      if (c.payment_id != s.payment_id)
        return reject(
            rc::invalid_argument,
            "payment_id " + c.payment_id + " does not match this payment (" + s.payment_id + ")");
      if (c.order_id != s.order_id)
        return reject(
            rc::invalid_argument,
            "order_id " + c.order_id + " does not match this payment's order (" + s.order_id + ")");
      break;
    case status::none:
      break;
  }
  if (!c.gateway) return reject(rc::invalid_argument, "gateway answer is missing");
  if (c.gateway->approved) {
    if (auto bad = text_error("gateway.transaction_id", c.gateway->transaction_id, false))
      return unexpected{*bad};
    return emit<event>(payment_processed{c.payment_id, c.order_id, c.customer_id, c.amount,
                                         c.gateway->transaction_id, c.at, c.idempotency_key});
  }
  if (auto bad = text_error("gateway.reason", c.gateway->reason, false)) return unexpected{*bad};
  return emit<event>(payment_failed{c.payment_id, c.order_id, c.customer_id, c.amount,
                                    c.gateway->reason, c.at, c.idempotency_key});
}

result<decision<event>> decide_refund(const state& s, const refund& c) {
  switch (s.status_) {
    case status::none:
      return reject(rc::not_paid, "cannot refund: nothing was charged");
    case status::failed:
      return reject(rc::not_paid, "cannot refund payment " + s.payment_id +
                                      ": the charge failed (" + s.failure_reason + ")");
    case status::refunded:
      return reject(rc::already_refunded, "payment " + s.payment_id + " was already refunded");
    case status::processed:
      break;
  }
  if (auto bad = text_error("reason", c.reason, false)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (!c.gateway) return reject(rc::invalid_argument, "gateway answer is missing");
  // A declined refund changes nothing; the caller retries with the same key.
  if (!c.gateway->approved)
    return reject(rc::invalid_state, "gateway declined the refund of payment " + s.payment_id +
                                         ": " + c.gateway->reason);
  if (auto bad = text_error("gateway.transaction_id", c.gateway->transaction_id, false))
    return unexpected{*bad};
  return emit<event>(payment_refunded{s.payment_id, s.order_id, s.amount, c.reason,
                                      c.gateway->transaction_id, c.at, c.idempotency_key});
}

struct command_handler {
  const state& s;
  result<decision<event>> operator()(const process& c) const { return decide_process(s, c); }
  result<decision<event>> operator()(const refund& c) const { return decide_refund(s, c); }
};

struct event_handler {
  state& s;
  void operator()(const payment_processed& e) const {
    s.status_ = status::processed;
    s.payment_id = e.payment_id;
    s.order_id = e.order_id;
    s.customer_id = e.customer_id;
    s.amount = e.amount;
    s.transaction_id = e.transaction_id;
    s.failure_reason.clear();
  }
  void operator()(const payment_failed& e) const {
    s.status_ = status::failed;
    s.payment_id = e.payment_id;
    s.order_id = e.order_id;
    s.customer_id = e.customer_id;
    s.amount = e.amount;
    s.failure_reason = e.reason;
  }
  void operator()(const payment_refunded&) const { s.status_ = status::refunded; }
};

}  // namespace

std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::none:
      return "NONE";
    case status::processed:
      return "PROCESSED";
    case status::failed:
      return "FAILED";
    case status::refunded:
      return "REFUNDED";
  }
  return "UNKNOWN";
}

std::optional<status> parse_status(std::string_view name) noexcept {
  for (auto s : {status::none, status::processed, status::failed, status::refunded})
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

}  // namespace saga::domain::payment

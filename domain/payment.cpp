#include "domain/payment.hpp"

#include <algorithm>
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

/// Whether this aggregate already knows the charge `key` was declined: then there is nothing
/// to void and the gateway need not be asked.
bool known_declined(const state& s, const std::string& key) {
  const auto* events = s.handled.find(key);
  if (events == nullptr) return false;
  return std::any_of(events->begin(), events->end(),
                     [](const event& e) { return std::holds_alternative<payment_failed>(e); });
}

std::optional<rejection> charge_ref_error(const state& s, const charge_ref& c) {
  if (auto bad = text_error("charge.idempotency_key", c.idempotency_key, true)) return bad;
  if (auto bad = text_error("charge.payment_id", c.payment_id, true)) return bad;
  if (auto bad = text_error("charge.order_id", c.order_id, true)) return bad;
  if (auto bad = text_error("charge.customer_id", c.customer_id, true)) return bad;
  if (c.amount <= 0) {
    return rejection{rc::invalid_price,
                     "charge.amount must be positive, got " + std::to_string(c.amount)};
  }
  // A failed payment knows its ids: a charge of another payment is not this one's to void.
  if (s.status_ == status::failed && (c.payment_id != s.payment_id || c.order_id != s.order_id)) {
    return rejection{rc::invalid_argument, "charge " + c.payment_id + " of order " + c.order_id +
                                               " is not this payment (" + s.payment_id +
                                               " of order " + s.order_id + ")"};
  }
  return std::nullopt;
}

/// A refund of a payment that never recorded a charge: the void's answer says whether the
/// gateway had charged it after all (then the journal catches up: processed, then refunded).
result<decision<event>> decide_void(const state& s, const refund& c) {
  const auto nothing = [&](const std::string& why) -> result<decision<event>> {
    if (s.status_ == status::failed) {
      return reject(rc::not_paid,
                    "cannot refund payment " + s.payment_id + ": the charge failed (" + why + ")");
    }
    return reject(rc::not_paid, "cannot refund: nothing was charged (" + why + ")");
  };
  if (!c.charge) {
    if (s.status_ == status::failed) return nothing(s.failure_reason);
    return reject(rc::not_paid, "cannot refund: nothing was charged");
  }
  if (auto bad = charge_ref_error(s, *c.charge)) return unexpected{*bad};
  if (auto bad = text_error("reason", c.reason, false)) return unexpected{*bad};
  if (auto bad = text_error("idempotency_key", c.idempotency_key, false)) return unexpected{*bad};
  if (known_declined(s, c.charge->idempotency_key)) return nothing(s.failure_reason);
  if (!c.voided) return reject(rc::invalid_argument, "gateway answer to the void is missing");
  const auto& v = *c.voided;
  if (!v.refunded) {
    if (auto bad = text_error("voided.reason", v.reason, false)) return unexpected{*bad};
    return nothing(v.reason);
  }
  if (auto bad = text_error("voided.charge_transaction_id", v.charge_transaction_id, true))
    return unexpected{*bad};
  if (auto bad = text_error("voided.refund_transaction_id", v.refund_transaction_id, true))
    return unexpected{*bad};
  if (v.amount <= 0) {
    return reject(rc::invalid_price,
                  "voided.amount must be positive, got " + std::to_string(v.amount));
  }
  const auto& ch = *c.charge;
  // The ledger's amount, not the request's: the journal must say what was actually taken.
  decision<event> d;
  d.events.push_back(payment_processed{ch.payment_id, ch.order_id, ch.customer_id, v.amount,
                                       v.charge_transaction_id, c.at, ch.idempotency_key});
  d.events.push_back(payment_refunded{ch.payment_id, ch.order_id, v.amount, c.reason,
                                      v.refund_transaction_id, c.at, c.idempotency_key});
  return d;
}

result<decision<event>> decide_refund(const state& s, const refund& c) {
  switch (s.status_) {
    case status::none:
    case status::failed:
      return decide_void(s, c);
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

std::optional<gateway_call> gateway_call_needed(const state& s, const command& cmd) {
  // Probe with approvals: only a command that would then append needs the gateway. Which
  // answer decide would consume follows from the command and the status.
  command probe = cmd;
  if (auto* charge = std::get_if<process>(&probe)) {
    if (charge->gateway) return std::nullopt;
    charge->gateway = gateway_answer{true, "probe", {}};
    const auto probed = decide(s, probe);
    if (!probed || probed->replayed || probed->events.empty()) return std::nullopt;
    return gateway_call::charge;
  }
  auto& r = std::get<refund>(probe);
  const bool voids = s.status_ == status::none || s.status_ == status::failed;
  if (voids ? r.voided.has_value() : r.gateway.has_value()) return std::nullopt;
  if (voids) {
    r.voided = void_answer{true, "probe", 1, "probe", {}};
  } else {
    r.gateway = gateway_answer{true, "probe", {}};
  }
  const auto probed = decide(s, probe);
  if (!probed || probed->replayed || probed->events.empty()) return std::nullopt;
  return voids ? gateway_call::void_charge : gateway_call::refund;
}

state evolve(state s, const event& e) {
  std::visit(event_handler{s}, e);
  return record_applied(std::move(s), e);
}

}  // namespace saga::domain::payment

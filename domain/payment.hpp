// Payment aggregate (one per order): state, commands, events, decide, evolve. Pure.
// The gateway is a port: the payment actor charges through it and hands the gateway's
// answer to decide inside the command, so decide stays free of I/O. A refund that names the
// charge it undoes can settle a charge whose answer never reached this aggregate (a void).
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

namespace saga::domain::payment {

enum class status { none, processed, failed, refunded };
[[nodiscard]] std::string_view to_string(status s) noexcept;  ///< "PROCESSED", …
/// Inverse of to_string; nullopt for an unknown name.
[[nodiscard]] std::optional<status> parse_status(std::string_view name) noexcept;

/// What the payment gateway answered for a charge or a refund.
struct gateway_answer {
  bool approved = false;
  std::string transaction_id;  ///< set when approved
  std::string reason;          ///< set when declined
};

/// What the gateway answered when asked to void a charge by its idempotency key (a refund for a
/// payment this aggregate never saw charged): it either refunded a charge it had approved, or
/// nothing was charged under that key (declined, or voided before it arrived; it never will be).
struct void_answer {
  bool refunded = false;
  std::string charge_transaction_id;  ///< refunded: the charge's transaction id
  money amount = 0;                   ///< refunded: what the charge took
  std::string refund_transaction_id;  ///< refunded: the refund's transaction id
  std::string reason;                 ///< not refunded: why nothing was charged
};

/// The charge a refund undoes, as it was sent (the same key, ids and amount): lets the refund
/// settle that charge with the gateway even when its answer never reached this aggregate.
struct charge_ref {
  std::string idempotency_key;
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  money amount = 0;
};

// ---- commands ----
struct process {
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  money amount = 0;
  timestamp at = 0;
  std::string idempotency_key;
  std::optional<gateway_answer> gateway;  ///< filled in by the payment actor before decide
};
struct refund {
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
  std::optional<gateway_answer> gateway;  ///< the refund's answer, filled in before decide
  /// The charge this refund undoes; without it a payment that is not PROCESSED has nothing to
  /// undo. With it, such a refund voids the charge at the gateway first (see void_answer).
  std::optional<charge_ref> charge{};
  std::optional<void_answer> voided{};  ///< the void's answer, filled in before decide
};
using command = std::variant<process, refund>;

// ---- events ----
struct payment_processed {
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  money amount = 0;
  std::string transaction_id;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const payment_processed& a, const payment_processed& b) {
    return a.payment_id == b.payment_id && a.order_id == b.order_id &&
           a.customer_id == b.customer_id && a.amount == b.amount &&
           a.transaction_id == b.transaction_id && a.at == b.at &&
           a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const payment_processed& a, const payment_processed& b) {
    return !(a == b);
  }
};
struct payment_failed {
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  money amount = 0;
  std::string reason;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const payment_failed& a, const payment_failed& b) {
    return a.payment_id == b.payment_id && a.order_id == b.order_id &&
           a.customer_id == b.customer_id && a.amount == b.amount && a.reason == b.reason &&
           a.at == b.at && a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const payment_failed& a, const payment_failed& b) { return !(a == b); }
};
struct payment_refunded {
  std::string payment_id;
  std::string order_id;
  money amount = 0;
  std::string reason;
  std::string refund_transaction_id;
  timestamp at = 0;
  std::string idempotency_key;
  friend bool operator==(const payment_refunded& a, const payment_refunded& b) {
    return a.payment_id == b.payment_id && a.order_id == b.order_id && a.amount == b.amount &&
           a.reason == b.reason && a.refund_transaction_id == b.refund_transaction_id &&
           a.at == b.at && a.idempotency_key == b.idempotency_key;
  }
  friend bool operator!=(const payment_refunded& a, const payment_refunded& b) { return !(a == b); }
};
using event = std::variant<payment_processed, payment_failed, payment_refunded>;

// ---- state ----
struct state {
  status status_ = status::none;
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  money amount = 0;
  std::string transaction_id;
  std::string failure_reason;
  std::int64_t version = 0;
  /// The newest idempotency keys handled → their events (bounded). Once a key is forgotten,
  /// the status refuses a second charge or refund before the gateway is ever asked.
  idempotency_memory<event> handled;
};

/// Decides a command. A refund of a payment that is not PROCESSED but names its charge needs
/// the void's answer: refunded → PaymentProcessed (the charge, under its key) then
/// PaymentRefunded, so the journal matches the ledger; nothing charged → not_paid.
[[nodiscard]] result<decision<event>> decide(const state& s, const command& cmd);

/// The gateway call a command needs before it can be decided.
enum class gateway_call { charge, refund, void_charge };
/// Which gateway call deciding `cmd` on `s` needs: nullopt when the command already carries
/// its answer or would not append whatever the gateway said (a replay, a refusal, nothing to
/// undo), so the gateway is never asked in vain.
[[nodiscard]] std::optional<gateway_call> gateway_call_needed(const state& s, const command& cmd);
[[nodiscard]] state evolve(state s, const event& e);

}  // namespace saga::domain::payment

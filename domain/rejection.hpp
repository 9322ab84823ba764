// Typed business rejections returned by every aggregate's decide().
// Plain values: a rejection is an answer, never an exception.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "domain/expected.hpp"

namespace saga::domain {

/// Why a command was refused. Stable names (see to_string) are part of the API.
enum class rejection_code {
  invalid_argument,      ///< a field is missing, empty or malformed
  invalid_quantity,      ///< quantity <= 0 or > max_item_quantity
  invalid_price,         ///< price or amount <= 0
  too_many_items,        ///< more than max_order_items lines
  money_overflow,        ///< a total does not fit in int64 minor units
  unknown_product,       ///< the product was never registered
  already_exists,        ///< create/register on an aggregate that exists
  not_found,             ///< the aggregate does not exist
  already_cancelled,     ///< cancel or confirm of a cancelled order
  already_confirmed,     ///< confirm of a confirmed order
  insufficient_stock,    ///< reserve beyond available stock
  not_paid,              ///< refund of a payment that was never processed
  already_processed,     ///< a second, different charge for the same payment
  already_refunded,      ///< a second refund
  idempotency_mismatch,  ///< a known idempotency key with a different command
  invalid_state,         ///< the operation is not allowed in the current status
};

[[nodiscard]] std::string_view to_string(rejection_code code) noexcept;

/// A refused command: a code for programs and a message for people.
struct rejection {
  rejection_code code;
  std::string message;

  friend bool operator==(const rejection& a, const rejection& b) {
    return a.code == b.code && a.message == b.message;
  }
};

/// Result of a decision: a value or a rejection.
template <class T>
using result = expected<T, rejection>;

/// Convenience for `return reject(rejection_code::x, "why");`.
inline unexpected<rejection> reject(rejection_code code, std::string message) {
  return unexpected<rejection>{rejection{code, std::move(message)}};
}

/// What `decide` returns for one command.
/// `events` are the new events to persist. When the command's idempotency key was
/// handled before, `events` is empty, `replayed` is true and `earlier` holds the events
/// that key produced the first time, so the caller can answer with the same outcome.
template <class Event>
struct decision {
  std::vector<Event> events;
  std::vector<Event> earlier;
  bool replayed = false;

  /// The events that describe the outcome, new or replayed.
  [[nodiscard]] const std::vector<Event>& outcome() const noexcept {
    return replayed ? earlier : events;
  }
};

}  // namespace saga::domain

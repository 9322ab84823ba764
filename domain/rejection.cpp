#include "domain/rejection.hpp"

namespace saga::domain {

std::string_view to_string(rejection_code code) noexcept {
  switch (code) {
    case rejection_code::invalid_argument:
      return "invalid_argument";
    case rejection_code::invalid_quantity:
      return "invalid_quantity";
    case rejection_code::invalid_price:
      return "invalid_price";
    case rejection_code::too_many_items:
      return "too_many_items";
    case rejection_code::money_overflow:
      return "money_overflow";
    case rejection_code::unknown_product:
      return "unknown_product";
    case rejection_code::already_exists:
      return "already_exists";
    case rejection_code::not_found:
      return "not_found";
    case rejection_code::already_cancelled:
      return "already_cancelled";
    case rejection_code::already_confirmed:
      return "already_confirmed";
    case rejection_code::insufficient_stock:
      return "insufficient_stock";
    case rejection_code::not_paid:
      return "not_paid";
    case rejection_code::already_processed:
      return "already_processed";
    case rejection_code::already_refunded:
      return "already_refunded";
    case rejection_code::idempotency_mismatch:
      return "idempotency_mismatch";
    case rejection_code::invalid_state:
      return "invalid_state";
  }
  return "unknown";
}

}  // namespace saga::domain

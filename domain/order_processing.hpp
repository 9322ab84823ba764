// The OrderProcessing saga definition: reserve inventory → process payment → confirm order;
// on failure release and refund in reverse order, then cancel the order with the reason.
// Pure data built once at start-up and shared read-only (thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/saga.hpp"

namespace saga::domain::sagas {

/// The definition's type name, stored in every OrderProcessing saga's state.
inline constexpr std::string_view order_processing_type = "OrderProcessing";

struct order_processing_options {
  std::int64_t step_timeout_ms = 5000;  ///< per attempt of every step, both directions
  retry_policy retry{3, 100, 2.0, 2000, 0.2};
  retry_policy compensation_retry{5, 100, 2.0, 2000, 0.2};  ///< also used by the order cancel
};

/// The name of the step that charges the order.
inline constexpr std::string_view process_payment_step = "process_payment";

/// The idempotency key of an OrderProcessing saga's charge (its process_payment command).
/// Deterministic, so the compensating refund can name the charge it undoes.
[[nodiscard]] std::string charge_key_for(std::string_view saga_id);

/// The payment aggregate id of an order: "pay-" + order_id. One payment per order, and the
/// same id on every attempt, so a charge can only ever land on one payment aggregate.
[[nodiscard]] std::string payment_id_for(std::string_view order_id);

/// Quantity per distinct product (lines of the same product summed), in order of first
/// appearance: target i of the reserve step and of its release is entry i.
/// A sum that does not fit saturates at INT64_MAX, which the inventory refuses as invalid.
[[nodiscard]] std::vector<std::pair<std::string, std::int64_t>> quantities_by_product(
    const std::vector<order::line_item>& items);

/// Steps "reserve_inventory" (one inventory::reserve per product, compensated by
/// inventory::release), "process_payment" (payment::process of the order total,
/// compensated by payment::refund naming that charge) and "confirm_order" (order::confirm, nothing
/// to undo); on_compensated sends order::cancel with the compensation reason.
[[nodiscard]] saga_definition order_processing(const order_processing_options& options = {});

}  // namespace saga::domain::sagas

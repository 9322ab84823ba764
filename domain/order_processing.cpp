#include "domain/order_processing.hpp"

#include <algorithm>
#include <limits>
#include <optional>

namespace saga::domain::sagas {

std::string payment_id_for(std::string_view order_id) {
  std::string id = "pay-";
  id.append(order_id);
  return id;
}

std::string charge_key_for(std::string_view saga_id) {
  // The key build_commands stamps into the process_payment step's only command.
  return make_idempotency_key(saga_id, process_payment_step, "process", {}, false);
}

std::vector<std::pair<std::string, std::int64_t>> quantities_by_product(
    const std::vector<order::line_item>& items) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (const auto& item : items) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& entry) { return entry.first == item.product_id; });
    if (it == out.end()) {
      out.emplace_back(item.product_id, item.quantity);
    } else if (auto sum = checked_add(it->second, item.quantity)) {
      it->second = *sum;
    } else {
      it->second = std::numeric_limits<std::int64_t>::max();
    }
  }
  return out;
}

saga_definition order_processing(const order_processing_options& options) {
  saga_definition def;
  def.type = std::string(order_processing_type);

  step_definition reserve;
  reserve.name = "reserve_inventory";
  reserve.action = [](const saga_context& ctx) {
    std::vector<step_command> out;
    for (auto& [product_id, quantity] : quantities_by_product(ctx.input.items)) {
      out.push_back({aggregate_kind::inventory, product_id,
                     inventory::reserve{ctx.input.order_id, quantity, ctx.at, {}}});
    }
    return out;
  };
  reserve.compensation = [](const saga_context& ctx) {
    std::vector<step_command> out;
    for (auto& [product_id, quantity] : quantities_by_product(ctx.input.items)) {
      out.push_back({aggregate_kind::inventory, product_id,
                     inventory::release{ctx.input.order_id, ctx.reason, ctx.at, {}}});
    }
    return out;
  };

  step_definition pay;
  pay.name = std::string(process_payment_step);
  pay.action = [](const saga_context& ctx) {
    const auto payment_id = payment_id_for(ctx.input.order_id);
    return std::vector<step_command>{{aggregate_kind::payment, payment_id,
                                      payment::process{payment_id,
                                                       ctx.input.order_id,
                                                       ctx.input.customer_id,
                                                       ctx.input.total,
                                                       ctx.at,
                                                       {},
                                                       std::nullopt}}};
  };
  pay.compensation = [](const saga_context& ctx) {
    const auto payment_id = payment_id_for(ctx.input.order_id);
    // The refund names the charge it undoes, so a charge whose answer was lost (or is still in
    // flight) is voided at the gateway instead of being left on the customer's card.
    payment::refund refund{ctx.reason, ctx.at, {}, std::nullopt};
    refund.charge = payment::charge_ref{charge_key_for(ctx.saga_id), payment_id, ctx.input.order_id,
                                        ctx.input.customer_id, ctx.input.total};
    return std::vector<step_command>{{aggregate_kind::payment, payment_id, std::move(refund)}};
  };

  step_definition confirm;
  confirm.name = "confirm_order";
  confirm.action = [](const saga_context& ctx) {
    return std::vector<step_command>{
        {aggregate_kind::order, ctx.input.order_id, order::confirm{ctx.at, {}}}};
  };

  for (auto* st : {&reserve, &pay, &confirm}) {
    st->timeout_ms = options.step_timeout_ms;
    st->retry = options.retry;
    st->compensation_retry = options.compensation_retry;
    def.steps.push_back(std::move(*st));
  }

  def.on_compensated = [](const saga_context& ctx) {
    return std::vector<step_command>{
        {aggregate_kind::order, ctx.input.order_id, order::cancel{ctx.reason, ctx.at, {}}}};
  };
  def.on_compensated_timeout_ms = options.step_timeout_ms;
  def.on_compensated_retry = options.compensation_retry;
  return def;
}

}  // namespace saga::domain::sagas

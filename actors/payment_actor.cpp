// Payment actors: the generic aggregate actor plus a prepare hook that asks the payment gateway
// actor for the answer a charge or refund needs, but only when deciding would actually append
// (a replayed or refused command never reaches the gateway). The gateway call carries the
// command's idempotency key, so a re-send after a crash gets the ledger's first answer. A refund
// of a payment never recorded as charged voids its charge by key, so a charge whose answer was
// lost is refunded, and one still in flight is barred.
#include <string>
#include <utility>
#include <variant>

#include "actors/aggregate_logic.hpp"
#include "actors/gateway_inspect.hpp"
#include "actors/services.hpp"

namespace saga::actors {
namespace {

namespace pay = domain::payment;
namespace per = saga::persistence;

per::gateway_request gateway_request_for(const pay::state& s, const pay::command& cmd,
                                         pay::gateway_call call) {
  per::gateway_request r;
  if (const auto* charge = std::get_if<pay::process>(&cmd)) {
    r.operation = per::gateway_operation::charge;
    r.idempotency_key = charge->idempotency_key;
    r.payment_id = charge->payment_id;
    r.order_id = charge->order_id;
    r.customer_id = charge->customer_id;
    r.amount = charge->amount;
    return r;
  }
  const auto& refund = std::get<pay::refund>(cmd);
  r.idempotency_key = refund.idempotency_key;
  r.reason = refund.reason;
  if (call == pay::gateway_call::void_charge) {
    // decide only asks for a void when the refund names its charge.
    const auto& charge = *refund.charge;
    r.operation = per::gateway_operation::void_charge;
    r.charge_key = charge.idempotency_key;
    r.payment_id = charge.payment_id;
    r.order_id = charge.order_id;
    r.customer_id = charge.customer_id;
    r.amount = charge.amount;
    return r;
  }
  r.operation = per::gateway_operation::refund;
  r.payment_id = s.payment_id;
  r.order_id = s.order_id;
  r.customer_id = s.customer_id;
  r.amount = s.amount;
  return r;
}

/// Puts the gateway's answer where decide looks for it.
void fill_answer(pay::command& cmd, pay::gateway_call call, per::gateway_result&& result) {
  if (call == pay::gateway_call::void_charge) {
    std::get<pay::refund>(cmd).voided = std::move(result.voided);
    return;
  }
  std::visit([&](auto& c) { c.gateway = std::move(result.answer); }, cmd);
}

}  // namespace

template <>
struct actor_hooks<payment_traits> : default_hooks<payment_traits> {
  template <class Self, class Job, class Next>
  static void prepare(Self self, Job job, Next next) {
    using L = detail::logic<payment_traits>;
    auto& st = self->state;
    // Only a command that would append needs the gateway. Anything else (a replay, a refusal,
    // nothing to refund) is decided on the original command.
    const auto call = pay::gateway_call_needed(st.aggregate, job.request.command);
    if (!call) {
      next(std::move(job));
      return;
    }
    const auto request = gateway_request_for(st.aggregate, job.request.command, *call);
    if (request.idempotency_key.empty()) {
      // Without a key a re-send could charge twice.
      L::reply_rejected(self, std::move(job),
                        domain::rejection{domain::rejection_code::invalid_argument,
                                          "a charge or refund needs an idempotency key"});
      return;
    }
    const auto* services = st.context->services.get();
    if (services == nullptr || !services->gateway) {
      L::reply_failed(self, std::move(job), failure_code::gateway_unavailable,
                      "no payment gateway is configured");
      return;
    }
    auto pending = std::make_shared<Job>(std::move(job));
    auto then = std::make_shared<Next>(std::move(next));
    const auto timeout = st.context->options.gateway_timeout;
    const auto kind = *call;
    self->request(services->gateway, timeout, request)
        .then(
            [=](per::gateway_result& result) {
              if (!result.ok) {
                L::reply_failed(self, std::move(*pending), failure_code::gateway_unavailable,
                                "payment gateway unavailable: " + result.error);
                return;
              }
              fill_answer(pending->request.command, kind, std::move(result));
              (*then)(std::move(*pending));
            },
            [=](caf::error& err) {
              const auto why = err == caf::sec::request_timeout
                                   ? "no answer within " + std::to_string(timeout.count()) + " ms"
                                   : self->system().render(err);
              L::reply_failed(self, std::move(*pending), failure_code::gateway_unavailable,
                              "payment gateway unavailable: " + why);
            });
  }
};

template aggregate_actor<payment_traits> spawn_aggregate<payment_traits>(
    caf::actor_system&, const std::string&, std::shared_ptr<const aggregate_context>);

}  // namespace saga::actors

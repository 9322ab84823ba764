// Payment actors: the generic aggregate actor plus a prepare hook that asks the payment gateway
// actor for the answer a charge or refund needs, but only when deciding would actually append
// (a replayed or refused command never reaches the gateway). The gateway call carries the
// command's idempotency key, so a re-send after a crash gets the ledger's first answer.
#include <string>
#include <utility>
#include <variant>

#include "actors/aggregate_logic.hpp"
#include "actors/gateway_inspect.hpp"
#include "actors/services.hpp"

namespace saga::actors {
namespace {

namespace pay = domain::payment;

/// The command's gateway answer slot, or nullptr when it already has one.
std::optional<pay::gateway_answer>* missing_answer(pay::command& cmd) {
  auto* slot = std::visit([](auto& c) { return &c.gateway; }, cmd);
  return slot->has_value() ? nullptr : slot;
}

persistence::gateway_request gateway_request_for(const pay::state& s, const pay::command& cmd) {
  persistence::gateway_request r;
  if (const auto* charge = std::get_if<pay::process>(&cmd)) {
    r.operation = persistence::gateway_operation::charge;
    r.idempotency_key = charge->idempotency_key;
    r.payment_id = charge->payment_id;
    r.order_id = charge->order_id;
    r.customer_id = charge->customer_id;
    r.amount = charge->amount;
  } else {
    const auto& refund = std::get<pay::refund>(cmd);
    r.operation = persistence::gateway_operation::refund;
    r.idempotency_key = refund.idempotency_key;
    r.payment_id = s.payment_id;
    r.order_id = s.order_id;
    r.customer_id = s.customer_id;
    r.amount = s.amount;
    r.reason = refund.reason;
  }
  return r;
}

}  // namespace

template <>
struct actor_hooks<payment_traits> : default_hooks<payment_traits> {
  template <class Self, class Job, class Next>
  static void prepare(Self self, Job job, Next next) {
    using L = detail::logic<payment_traits>;
    auto& st = self->state;
    auto* slot = missing_answer(job.request.command);
    if (slot == nullptr) {
      next(std::move(job));
      return;
    }
    // Probe with an approval: only a command that would append needs the gateway. Anything
    // else (a replay, a refusal, nothing to refund) is decided on the original command.
    auto probe = job.request.command;
    *missing_answer(probe) = pay::gateway_answer{true, "probe", {}};
    auto probed = payment_traits::decide(st.aggregate, probe);
    if (!probed || probed->replayed || probed->events.empty()) {
      next(std::move(job));
      return;
    }
    const auto request = gateway_request_for(st.aggregate, job.request.command);
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
    self->request(services->gateway, timeout, request)
        .then(
            [=](persistence::gateway_result& result) {
              if (!result.ok) {
                L::reply_failed(self, std::move(*pending), failure_code::gateway_unavailable,
                                "payment gateway unavailable: " + result.error);
                return;
              }
              *missing_answer(pending->request.command) = std::move(result.answer);
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

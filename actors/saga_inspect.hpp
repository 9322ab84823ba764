// CAF inspect() overloads for the saga types that travel in actor messages: saga commands
// (inputs), events and states, so CAF can print and serialize them. Header-only; stateless.
#pragma once

#include <caf/meta/type_name.hpp>

#include "actors/inspect.hpp"
#include "actors/saga_traits.hpp"
#include "domain/saga.hpp"

namespace saga::domain::sagas {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_input& x) {
  return f(caf::meta::type_name("saga_input"), x.order_id, x.customer_id, x.items, x.total,
           x.attributes);
}

// ---- inputs ----
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start& x) {
  return f(caf::meta::type_name("saga_start"), x.saga_id, x.correlation_id, x.input, x.anchored);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, target_succeeded& x) {
  return f(caf::meta::type_name("saga_target_succeeded"), x.step, x.phase_, x.attempt, x.target);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, target_failed& x) {
  return f(caf::meta::type_name("saga_target_failed"), x.step, x.phase_, x.attempt, x.target,
           x.reason, x.retryable);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deadline_reached& x) {
  return f(caf::meta::type_name("saga_deadline_reached"), x.step, x.phase_, x.attempt);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, retry_due& x) {
  return f(caf::meta::type_name("saga_retry_due"), x.step, x.phase_, x.attempt);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, manual_retry&) {
  return f(caf::meta::type_name("saga_manual_retry"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, manual_compensate& x) {
  return f(caf::meta::type_name("saga_manual_compensate"), x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel_requested& x) {
  return f(caf::meta::type_name("saga_cancel_requested"), x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, input& x) {
  return actors::detail::inspect_variant(f, x);
}

// ---- events ----
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_started& x) {
  return f(caf::meta::type_name("SagaStepStarted"), x.step, x.phase_, x.attempt, x.target_count,
           x.targets, x.at, x.deadline_at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, std::optional<step_started>& x) {
  return actors::detail::inspect_optional(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_started& x) {
  return f(caf::meta::type_name("SagaStarted"), x.saga_id, x.saga_type, x.correlation_id, x.input,
           x.steps, x.at, x.next);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_succeeded& x) {
  return f(caf::meta::type_name("SagaStepSucceeded"), x.step, x.phase_, x.attempt, x.target,
           x.step_done, x.at, x.next);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_failed& x) {
  return f(caf::meta::type_name("SagaStepFailed"), x.step, x.phase_, x.attempt, x.target, x.reason,
           x.retryable, x.will_retry, x.retry_at, x.at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, compensation_started& x) {
  return f(caf::meta::type_name("SagaCompensationStarted"), x.reason, x.at, x.next);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_compensated& x) {
  return f(caf::meta::type_name("SagaStepCompensated"), x.step, x.phase_, x.attempt, x.target,
           x.step_done, x.at, x.next);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_completed& x) {
  return f(caf::meta::type_name("SagaCompleted"), x.at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_compensated& x) {
  return f(caf::meta::type_name("SagaCompensated"), x.reason, x.at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_failed& x) {
  return f(caf::meta::type_name("SagaFailed"), x.step, x.phase_, x.reason, x.at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return actors::detail::inspect_variant(f, x);
}

// ---- state ----
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_record& x) {
  return f(caf::meta::type_name("saga_step_record"), x.status_, x.forward, x.compensation,
           x.started_at, x.compensation_started_at);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state& x) {
  return f(caf::meta::type_name("saga_state"), x.saga_id, x.saga_type, x.correlation_id, x.input,
           x.status_, x.current_step, x.phase_, x.attempt, x.awaiting_retry, x.deadline_at,
           x.retry_at, x.step_names, x.steps, x.on_compensated, x.attempt_failure,
           x.attempt_failed_for_good, x.compensation_reason, x.failure_reason, x.version,
           x.started_at, x.updated_at);
}

}  // namespace saga::domain::sagas

namespace saga::actors {
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_command& x) {
  return f(caf::meta::type_name("saga_command"), x.saga_type, x.input);
}
}  // namespace saga::actors

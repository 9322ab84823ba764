// CAF inspect() overloads for the payment gateway's messages (gateway_request, gateway_result),
// so CAF can print and serialize them; the gateway and void answers come from actors/inspect.hpp.
// Header-only; stateless.
#pragma once

#include <caf/meta/type_name.hpp>

#include "actors/inspect.hpp"
#include "persistence/payment_gateway.hpp"

namespace saga::persistence {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gateway_request& x) {
  return f(caf::meta::type_name("gateway_request"), x.operation, x.idempotency_key, x.payment_id,
           x.order_id, x.customer_id, x.amount, x.reason, x.charge_key);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gateway_result& x) {
  return f(caf::meta::type_name("gateway_result"), x.ok, x.answer, x.error, x.replayed, x.voided);
}

}  // namespace saga::persistence

// Messages between the read side facade (actors/read_side.hpp) and its query actors, and the
// CAF inspect() overloads for them and the read-model views they carry. Internal to saga_actors;
// plain values, header-only, stateless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "actors/inspect.hpp"
#include "persistence/event_store.hpp"
#include "persistence/read_models.hpp"

namespace saga::actors {

/// Which query a read_query asks for.
enum class read_query_kind : std::uint8_t {
  order,
  orders_by_customer,
  payment_by_order,
  product,
  products,
  saga,
  saga_by_correlation,
  active_sagas,
  failed_sagas,
  events_by_correlation,
  events_after,  ///< `offset` carries nothing; the position travels in `after`
  status,        ///< checkpoints of `names` and the journal head
};

/// One query for a query actor. `id` is the key of lookups; `names` the projections of status.
struct read_query {
  read_query_kind kind = read_query_kind::order;
  std::string id;
  std::int32_t limit = 0;
  std::int32_t offset = 0;
  std::vector<std::string> names;
  std::int64_t after = 0;
};

/// A query actor's answer: `ok` and the vector the query fills, or the error. Single lookups
/// answer with zero or one element.
struct read_reply {
  bool ok = false;
  persistence::store_error error;
  std::vector<persistence::order_view> orders;
  std::vector<persistence::payment_view> payments;
  std::vector<persistence::inventory_view> products;
  std::vector<persistence::saga_view> sagas;
  std::vector<persistence::recorded_event> events;
  std::vector<persistence::projection_checkpoint> checkpoints;
  std::int64_t journal_head = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_query& x) {
  return f(caf::meta::type_name("read_query"), x.kind, x.id, x.limit, x.offset, x.names, x.after);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_reply& x) {
  return f(caf::meta::type_name("read_reply"), x.ok, x.error, x.orders, x.payments, x.products,
           x.sagas, x.events, x.checkpoints, x.journal_head);
}

}  // namespace saga::actors

namespace saga::persistence {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_view& x) {
  return f(caf::meta::type_name("order_view"), x.order_id, x.customer_id, x.items, x.total,
           x.status, x.shipping_address, x.correlation_id, x.saga_id, x.failure_reason,
           x.created_at, x.updated_at, x.version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_view& x) {
  return f(caf::meta::type_name("payment_view"), x.payment_id, x.order_id, x.customer_id, x.amount,
           x.status, x.transaction_id, x.failure_reason, x.refund_transaction_id, x.refund_reason,
           x.correlation_id, x.created_at, x.updated_at, x.version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inventory_view& x) {
  return f(caf::meta::type_name("inventory_view"), x.product_id, x.name, x.price, x.available,
           x.reserved, x.updated_at, x.version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_step_view& x) {
  return f(caf::meta::type_name("saga_step_view"), x.name, x.status);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_view& x) {
  return f(caf::meta::type_name("saga_view"), x.saga_id, x.saga_type, x.correlation_id, x.order_id,
           x.status, x.current_step, x.steps, x.failure_reason, x.compensation_reason, x.started_at,
           x.updated_at, x.version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, projection_checkpoint& x) {
  return f(caf::meta::type_name("projection_checkpoint"), x.name, x.position, x.updated_at_ms);
}

}  // namespace saga::persistence

// JSON shapes of the HTTP front (DESIGN.md §6): orders, products, sagas and journal events.
#include "domain/saga.hpp"
#include "http/server_internal.hpp"

namespace saga::http::detail {

namespace {

json text_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json items_json(const std::vector<domain::order::line_item>& items) {
  json out = json::array();
  for (const auto& i : items)
    out.push_back({{"productId", i.product_id},
                   {"productName", i.product_name},
                   {"quantity", i.quantity},
                   {"price", i.unit_price}});
  return out;
}

}  // namespace

json order_json(const domain::order::state& s) {
  return {{"orderId", s.order_id},
          {"customerId", s.customer_id},
          {"items", items_json(s.items)},
          {"total", s.total},
          {"status", std::string(domain::order::to_string(s.status_))},
          {"shippingAddress", s.shipping_address},
          {"correlationId", s.correlation_id},
          {"sagaId", text_or_null(s.saga_id)},
          {"failureReason", text_or_null(s.failure_reason)},
          {"createdAt", iso8601(s.created_at)},
          {"updatedAt", iso8601(s.updated_at)},
          {"version", s.version}};
}

json order_json(const persistence::order_view& v) {
  return {{"orderId", v.order_id},
          {"customerId", v.customer_id},
          {"items", items_json(v.items)},
          {"total", v.total},
          {"status", v.status},
          {"shippingAddress", v.shipping_address},
          {"correlationId", v.correlation_id},
          {"sagaId", text_or_null(v.saga_id)},
          {"failureReason", text_or_null(v.failure_reason)},
          {"createdAt", iso8601(v.created_at)},
          {"updatedAt", iso8601(v.updated_at)},
          {"version", v.version}};
}

json product_json(const domain::inventory::state& s) {
  return {{"productId", s.product_id},
          {"name", s.name},
          {"price", s.price},
          {"stock", s.available},
          {"reserved", s.reserved}};
}

json product_json(const persistence::inventory_view& v) {
  return {{"productId", v.product_id},
          {"name", v.name},
          {"price", v.price},
          {"stock", v.available},
          {"reserved", v.reserved}};
}

json saga_json(const persistence::saga_view& v) {
  json steps = json::array();
  for (const auto& st : v.steps) steps.push_back({{"name", st.name}, {"status", st.status}});
  return {{"sagaId", v.saga_id},
          {"sagaType", v.saga_type},
          {"correlationId", v.correlation_id},
          {"orderId", v.order_id},
          {"status", v.status},
          {"currentStep", text_or_null(v.current_step)},
          {"steps", std::move(steps)},
          {"failureReason", text_or_null(v.failure_reason)},
          {"compensationReason", text_or_null(v.compensation_reason)},
          {"startedAt", iso8601(v.started_at)},
          {"updatedAt", iso8601(v.updated_at)},
          {"version", v.version}};
}

json event_json(const persistence::recorded_event& e) {
  json payload = json::parse(e.payload, nullptr, false);
  if (payload.is_discarded()) payload = e.payload;  // stored text that is not JSON: show it as is
  return {{"position", e.position},
          {"streamId", e.stream_id},
          {"streamType", e.stream_type},
          {"version", e.version},
          {"eventId", e.event_id},
          {"eventType", e.event_type},
          {"schemaVersion", e.schema_version},
          {"data", std::move(payload)},
          {"metadata",
           {{"correlationId", e.metadata.correlation_id},
            {"causationId", e.metadata.causation_id},
            {"commandId", e.metadata.command_id},
            {"nodeId", e.metadata.node_id},
            {"userId", e.metadata.user_id}}},
          {"recordedAt", iso8601(e.recorded_at_ms)}};
}

}  // namespace saga::http::detail

#include "domain/aggregate_codec.hpp"

#include <array>
#include <cstdint>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <utility>

#include "domain/json_fields.hpp"

namespace saga::domain {

namespace {

using nlohmann::json;
namespace jf = json_fields;

// ---- helpers --------------------------------------------------------------

/// decide() only admits valid UTF-8, so `replace` never fires for accepted events; it keeps
/// encode total (no throw) should a hand-built event carry bad bytes.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

/// An int64 value; unsigned JSON numbers above INT64_MAX are refused, not wrapped.
std::int64_t int64_value(const json& v, const std::string& field) {
  if (!v.is_number_integer())
    throw jf::field_error(field, "field '" + field + "' must be an integer");
  if (v.is_number_unsigned() &&
      v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw jf::field_error(field, "field '" + field + "' does not fit in a signed 64-bit integer");
  return v.get<std::int64_t>();
}

std::int64_t get_i64(const json& obj, const char* field, const std::string& prefix) {
  return int64_value(jf::require(obj, field, prefix), prefix + field);
}

std::string get_str(const json& obj, const char* field, const std::string& prefix) {
  return jf::get_string(obj, field, prefix);
}

void check_schema_version(const json& obj, const std::string& prefix) {
  const auto version = get_i64(obj, "schema_version", prefix);
  if (version < 1 || version > aggregate_schema_version)
    throw jf::field_error(prefix + "schema_version",
                          "unsupported schema_version " + std::to_string(version));
}

template <class T, class F>
decoded<T> guarded(F&& f) {
  try {
    return decoded<T>(f());
  } catch (const jf::field_error& err) {
    return unexpected{decode_error{err.field, err.what()}};
  } catch (const std::exception& err) {
    return unexpected{decode_error{"", err.what()}};
  }
}

/// Parses a snapshot document and checks its schema_version.
json parse_snapshot(const std::string& text, const char* what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw jf::field_error("", std::string(what) + " snapshot is not valid JSON");
  if (!j.is_object())
    throw jf::field_error("", std::string(what) + " snapshot must be a JSON object");
  check_schema_version(j, "");
  return j;
}

/// One event type of an aggregate: its journal name, writer and reader.
template <class Event>
struct event_codec {
  std::string_view type;
  Event (*read)(const json& payload, const std::string& prefix);
};

template <class Event, std::size_t N>
const event_codec<Event>* find_codec(const std::array<event_codec<Event>, N>& codecs,
                                     std::string_view type) {
  for (const auto& c : codecs)
    if (c.type == type) return &c;
  return nullptr;
}

template <class Event, std::size_t N>
decoded<Event> decode_event(const std::array<event_codec<Event>, N>& codecs, const encoded_event& e,
                            const char* aggregate) {
  return guarded<Event>([&]() -> Event {
    const auto* codec = find_codec(codecs, e.type);
    if (!codec)
      throw jf::field_error("",
                            "unknown " + std::string(aggregate) + " event type '" + e.type + "'");
    const json payload = jf::parse_payload(e, aggregate_schema_version);
    return codec->read(payload, "");
  });
}

// ---- order ----------------------------------------------------------------

json items_to_json(const std::vector<order::line_item>& items) {
  json out = json::array();
  for (const auto& i : items)
    out.push_back(json{{"productId", i.product_id},
                       {"productName", i.product_name},
                       {"quantity", i.quantity},
                       {"price", i.unit_price}});
  return out;
}

std::vector<order::line_item> items_from_json(const json& obj, const std::string& prefix) {
  std::vector<order::line_item> out;
  const json& items = jf::get_array(obj, "items", prefix);
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string p = prefix + "items[" + std::to_string(i) + "].";
    if (!items[i].is_object())
      throw jf::field_error(p.substr(0, p.size() - 1), "items must be objects");
    out.push_back(
        order::line_item{get_str(items[i], "productId", p), get_str(items[i], "productName", p),
                         get_i64(items[i], "quantity", p), get_i64(items[i], "price", p)});
  }
  return out;
}

json to_json_payload(const order::order_created& e) {
  return json{{"orderId", e.order_id},
              {"customerId", e.customer_id},
              {"items", items_to_json(e.items)},
              {"total", e.total},
              {"shippingAddress", e.shipping_address},
              {"correlationId", e.correlation_id},
              {"sagaId", e.saga_id},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const order::order_confirmed& e) {
  return json{{"orderId", e.order_id}, {"at", e.at}, {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const order::order_cancelled& e) {
  return json{{"orderId", e.order_id},
              {"reason", e.reason},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}

const std::array<event_codec<order::event>, 3> order_codecs = {{
    {"OrderCreated",
     [](const json& j, const std::string& p) -> order::event {
       return order::order_created{get_str(j, "orderId", p),
                                   get_str(j, "customerId", p),
                                   items_from_json(j, p),
                                   get_i64(j, "total", p),
                                   get_str(j, "shippingAddress", p),
                                   get_str(j, "correlationId", p),
                                   get_str(j, "sagaId", p),
                                   get_i64(j, "at", p),
                                   get_str(j, "idempotencyKey", p)};
     }},
    {"OrderConfirmed",
     [](const json& j, const std::string& p) -> order::event {
       return order::order_confirmed{get_str(j, "orderId", p), get_i64(j, "at", p),
                                     get_str(j, "idempotencyKey", p)};
     }},
    {"OrderCancelled",
     [](const json& j, const std::string& p) -> order::event {
       return order::order_cancelled{get_str(j, "orderId", p), get_str(j, "reason", p),
                                     get_i64(j, "at", p), get_str(j, "idempotencyKey", p)};
     }},
}};

// ---- payment --------------------------------------------------------------

json to_json_payload(const payment::payment_processed& e) {
  return json{{"paymentId", e.payment_id},          {"orderId", e.order_id},
              {"customerId", e.customer_id},        {"amount", e.amount},
              {"transactionId", e.transaction_id},  {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const payment::payment_failed& e) {
  return json{{"paymentId", e.payment_id},
              {"orderId", e.order_id},
              {"customerId", e.customer_id},
              {"amount", e.amount},
              {"reason", e.reason},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const payment::payment_refunded& e) {
  return json{{"paymentId", e.payment_id},
              {"orderId", e.order_id},
              {"amount", e.amount},
              {"reason", e.reason},
              {"refundTransactionId", e.refund_transaction_id},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}

const std::array<event_codec<payment::event>, 3> payment_codecs = {{
    {"PaymentProcessed",
     [](const json& j, const std::string& p) -> payment::event {
       return payment::payment_processed{get_str(j, "paymentId", p),     get_str(j, "orderId", p),
                                         get_str(j, "customerId", p),    get_i64(j, "amount", p),
                                         get_str(j, "transactionId", p), get_i64(j, "at", p),
                                         get_str(j, "idempotencyKey", p)};
     }},
    {"PaymentFailed",
     [](const json& j, const std::string& p) -> payment::event {
       return payment::payment_failed{get_str(j, "paymentId", p),     get_str(j, "orderId", p),
                                      get_str(j, "customerId", p),    get_i64(j, "amount", p),
                                      get_str(j, "reason", p),        get_i64(j, "at", p),
                                      get_str(j, "idempotencyKey", p)};
     }},
    {"PaymentRefunded",
     [](const json& j, const std::string& p) -> payment::event {
       return payment::payment_refunded{get_str(j, "paymentId", p),
                                        get_str(j, "orderId", p),
                                        get_i64(j, "amount", p),
                                        get_str(j, "reason", p),
                                        get_str(j, "refundTransactionId", p),
                                        get_i64(j, "at", p),
                                        get_str(j, "idempotencyKey", p)};
     }},
}};

// ---- inventory ------------------------------------------------------------

json to_json_payload(const inventory::product_registered& e) {
  return json{
      {"productId", e.product_id},       {"name", e.name}, {"price", e.price},
      {"initialStock", e.initial_stock}, {"at", e.at},     {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const inventory::stock_added& e) {
  return json{{"productId", e.product_id},
              {"quantity", e.quantity},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const inventory::inventory_reserved& e) {
  return json{{"productId", e.product_id},
              {"orderId", e.order_id},
              {"quantity", e.quantity},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const inventory::inventory_reservation_failed& e) {
  return json{
      {"productId", e.product_id},          {"orderId", e.order_id}, {"quantity", e.quantity},
      {"available", e.available},           {"reason", e.reason},    {"at", e.at},
      {"idempotencyKey", e.idempotency_key}};
}
json to_json_payload(const inventory::inventory_released& e) {
  return json{{"productId", e.product_id},
              {"orderId", e.order_id},
              {"quantity", e.quantity},
              {"reason", e.reason},
              {"at", e.at},
              {"idempotencyKey", e.idempotency_key}};
}

const std::array<event_codec<inventory::event>, 5> inventory_codecs = {{
    {"ProductRegistered",
     [](const json& j, const std::string& p) -> inventory::event {
       return inventory::product_registered{
           get_str(j, "productId", p),    get_str(j, "name", p), get_i64(j, "price", p),
           get_i64(j, "initialStock", p), get_i64(j, "at", p),   get_str(j, "idempotencyKey", p)};
     }},
    {"StockAdded",
     [](const json& j, const std::string& p) -> inventory::event {
       return inventory::stock_added{get_str(j, "productId", p), get_i64(j, "quantity", p),
                                     get_i64(j, "at", p), get_str(j, "idempotencyKey", p)};
     }},
    {"InventoryReserved",
     [](const json& j, const std::string& p) -> inventory::event {
       return inventory::inventory_reserved{get_str(j, "productId", p), get_str(j, "orderId", p),
                                            get_i64(j, "quantity", p), get_i64(j, "at", p),
                                            get_str(j, "idempotencyKey", p)};
     }},
    {"InventoryReservationFailed",
     [](const json& j, const std::string& p) -> inventory::event {
       return inventory::inventory_reservation_failed{
           get_str(j, "productId", p),     get_str(j, "orderId", p), get_i64(j, "quantity", p),
           get_i64(j, "available", p),     get_str(j, "reason", p),  get_i64(j, "at", p),
           get_str(j, "idempotencyKey", p)};
     }},
    {"InventoryReleased",
     [](const json& j, const std::string& p) -> inventory::event {
       return inventory::inventory_released{
           get_str(j, "productId", p), get_str(j, "orderId", p), get_i64(j, "quantity", p),
           get_str(j, "reason", p),    get_i64(j, "at", p),      get_str(j, "idempotencyKey", p)};
     }},
}};

// ---- user -----------------------------------------------------------------

user::role role_from_json(const json& obj, const char* field, const std::string& prefix) {
  const auto name = get_str(obj, field, prefix);
  const auto r = user::parse_role(name);
  if (!r) throw jf::field_error(prefix + field, "unknown role '" + name + "'");
  return *r;
}

json to_json_payload(const user::user_registered& e) {
  return json{{"userId", e.user_id},
              {"email", e.email},
              {"name", e.name},
              {"passwordHash", e.password_hash},
              {"role", std::string(user::to_string(e.role_))},
              {"at", e.at}};
}

const std::array<event_codec<user::event>, 1> user_codecs = {{
    {"UserRegistered",
     [](const json& j, const std::string& p) -> user::event {
       return user::user_registered{get_str(j, "userId", p),      get_str(j, "email", p),
                                    get_str(j, "name", p),        get_str(j, "passwordHash", p),
                                    role_from_json(j, "role", p), get_i64(j, "at", p)};
     }},
}};

// ---- shared by all aggregates (after the to_json_payload overloads they call) ----

template <class Event>
encoded_event encode_event(const Event& e) {
  encoded_event out;
  out.type = std::string(event_type(e));
  out.schema_version = aggregate_schema_version;
  json j = std::visit([](const auto& ev) { return to_json_payload(ev); }, e);
  j["schema_version"] = aggregate_schema_version;
  out.payload = dump(j);
  return out;
}

// ---- idempotency memory inside snapshots ------------------------------------
// "handled": [{"key": "<key>", "events": [{"type": "OrderCreated", "payload": {…}}]}, …]
// Oldest key first, so a decoded memory forgets in the same order as the one encoded. Payloads
// leave out what the entry already says: "idempotencyKey" (every remembered event carries its
// entry's key) and "schema_version" (the snapshot's own version covers what it embeds). Both
// are still honoured when present.
//
// Snapshots written before the memory was bounded hold an object instead,
// {"<key>": [{"type": …, "payload": {…, "idempotencyKey", "schema_version"}}]}: it still
// decodes (same snapshot schema_version, the shape tells them apart), its keys remembered in
// the object's order, as the original order is lost; snapshots are only a cache, so the
// old shape needs no migration and dies out as new snapshots are taken.

template <class Event>
json handled_to_json(const idempotency_memory<Event>& handled) {
  json out = json::array();
  for (const auto& entry : handled) {
    json events = json::array();
    for (const auto& e : entry.events) {
      json payload = std::visit([](const auto& ev) { return to_json_payload(ev); }, e);
      if (key_of(e) == entry.key) payload.erase("idempotencyKey");
      events.push_back(json{{"type", std::string(event_type(e))}, {"payload", std::move(payload)}});
    }
    out.push_back(json{{"key", entry.key}, {"events", std::move(events)}});
  }
  return out;
}

/// One embedded event; `key` fills in an omitted "idempotencyKey".
template <class Event, std::size_t N>
Event remembered_event_from_json(const json& item, const std::string& key,
                                 const std::array<event_codec<Event>, N>& codecs,
                                 const std::string& p, bool legacy) {
  if (!item.is_object()) throw jf::field_error(p.substr(0, p.size() - 1), "must be an object");
  const auto type = get_str(item, "type", p);
  const auto* codec = find_codec(codecs, type);
  if (!codec) throw jf::field_error(p + "type", "unknown event type '" + type + "'");
  const json& payload = jf::get_object(item, "payload", p);
  if (legacy || payload.contains("schema_version")) check_schema_version(payload, p + "payload.");
  if (payload.contains("idempotencyKey")) return codec->read(payload, p + "payload.");
  json with_key = payload;
  with_key["idempotencyKey"] = key;
  return codec->read(with_key, p + "payload.");
}

/// The decoded memory's capacity is always the current limit, not the encoder's, so changing
/// max_remembered_keys takes effect on the next recovery (a smaller one keeps the newest keys).
template <class Event, std::size_t N>
idempotency_memory<Event> handled_from_json(const json& state,
                                            const std::array<event_codec<Event>, N>& codecs) {
  idempotency_memory<Event> out;
  const json& handled = jf::require(state, "handled");
  if (handled.is_object()) {  // the unbounded map of older snapshots
    for (const auto& entry : handled.items()) {
      const std::string at = "handled[" + entry.key() + "]";
      if (!entry.value().is_array())
        throw jf::field_error(at, "field '" + at + "' must be an array");
      std::size_t i = 0;
      for (const auto& item : entry.value()) {
        const std::string p = at + "[" + std::to_string(i++) + "].";
        out.remember(entry.key(),
                     remembered_event_from_json(item, entry.key(), codecs, p, /*legacy=*/true));
      }
    }
    return out;
  }
  if (!handled.is_array())
    throw jf::field_error("handled", "field 'handled' must be an array of {key, events}");
  std::unordered_set<std::string> seen;
  seen.reserve(handled.size());
  for (std::size_t i = 0; i < handled.size(); ++i) {
    const std::string at = "handled[" + std::to_string(i) + "]";
    const json& entry = handled[i];
    if (!entry.is_object()) throw jf::field_error(at, "field '" + at + "' must be an object");
    auto key = get_str(entry, "key", at + ".");
    if (key.empty()) throw jf::field_error(at + ".key", "field '" + at + ".key' is empty");
    if (!seen.insert(key).second)
      throw jf::field_error(at + ".key", "key '" + key + "' is remembered twice");
    const json& events = jf::get_array(entry, "events", at + ".");
    if (events.empty()) throw jf::field_error(at + ".events", "field '" + at + ".events' is empty");
    for (std::size_t k = 0; k < events.size(); ++k) {
      const std::string p = at + ".events[" + std::to_string(k) + "].";
      out.remember(key, remembered_event_from_json(events[k], key, codecs, p, /*legacy=*/false));
    }
  }
  return out;
}

/// The journal name of one event alternative, taken from the codec table so names are
/// written in exactly one place.
template <class Event, std::size_t N>
std::string_view type_name(const std::array<event_codec<Event>, N>& codecs, const Event& e) {
  return codecs[e.index()].type;
}

}  // namespace

// ---- public API -------------------------------------------------------------

std::string_view event_type(const order::event& e) noexcept { return type_name(order_codecs, e); }
std::string_view event_type(const payment::event& e) noexcept {
  return type_name(payment_codecs, e);
}
std::string_view event_type(const inventory::event& e) noexcept {
  return type_name(inventory_codecs, e);
}
std::string_view event_type(const user::event& e) noexcept { return type_name(user_codecs, e); }

encoded_event encode(const order::event& e) { return encode_event(e); }
encoded_event encode(const payment::event& e) { return encode_event(e); }
encoded_event encode(const inventory::event& e) { return encode_event(e); }
encoded_event encode(const user::event& e) { return encode_event(e); }

decoded<order::event> decode_order_event(const encoded_event& e) {
  return decode_event(order_codecs, e, "order");
}
decoded<payment::event> decode_payment_event(const encoded_event& e) {
  return decode_event(payment_codecs, e, "payment");
}
decoded<inventory::event> decode_inventory_event(const encoded_event& e) {
  return decode_event(inventory_codecs, e, "inventory");
}
decoded<user::event> decode_user_event(const encoded_event& e) {
  return decode_event(user_codecs, e, "user");
}

// ---- snapshots ----------------------------------------------------------------

std::string encode_state(const order::state& s) {
  return dump(json{{"schema_version", aggregate_schema_version},
                   {"status", std::string(order::to_string(s.status_))},
                   {"orderId", s.order_id},
                   {"customerId", s.customer_id},
                   {"items", items_to_json(s.items)},
                   {"total", s.total},
                   {"shippingAddress", s.shipping_address},
                   {"correlationId", s.correlation_id},
                   {"sagaId", s.saga_id},
                   {"failureReason", s.failure_reason},
                   {"createdAt", s.created_at},
                   {"updatedAt", s.updated_at},
                   {"version", s.version},
                   {"handled", handled_to_json(s.handled)}});
}

decoded<order::state> decode_order_state(const std::string& text) {
  return guarded<order::state>([&] {
    const json j = parse_snapshot(text, "order");
    order::state s;
    const auto status = get_str(j, "status", "");
    const auto parsed = order::parse_status(status);
    if (!parsed) throw jf::field_error("status", "unknown order status '" + status + "'");
    s.status_ = *parsed;
    s.order_id = get_str(j, "orderId", "");
    s.customer_id = get_str(j, "customerId", "");
    s.items = items_from_json(j, "");
    s.total = get_i64(j, "total", "");
    s.shipping_address = get_str(j, "shippingAddress", "");
    s.correlation_id = get_str(j, "correlationId", "");
    s.saga_id = get_str(j, "sagaId", "");
    s.failure_reason = get_str(j, "failureReason", "");
    s.created_at = get_i64(j, "createdAt", "");
    s.updated_at = get_i64(j, "updatedAt", "");
    s.version = get_i64(j, "version", "");
    s.handled = handled_from_json(j, order_codecs);
    return s;
  });
}

std::string encode_state(const payment::state& s) {
  return dump(json{{"schema_version", aggregate_schema_version},
                   {"status", std::string(payment::to_string(s.status_))},
                   {"paymentId", s.payment_id},
                   {"orderId", s.order_id},
                   {"customerId", s.customer_id},
                   {"amount", s.amount},
                   {"transactionId", s.transaction_id},
                   {"failureReason", s.failure_reason},
                   {"version", s.version},
                   {"handled", handled_to_json(s.handled)}});
}

decoded<payment::state> decode_payment_state(const std::string& text) {
  return guarded<payment::state>([&] {
    const json j = parse_snapshot(text, "payment");
    payment::state s;
    const auto status = get_str(j, "status", "");
    const auto parsed = payment::parse_status(status);
    if (!parsed) throw jf::field_error("status", "unknown payment status '" + status + "'");
    s.status_ = *parsed;
    s.payment_id = get_str(j, "paymentId", "");
    s.order_id = get_str(j, "orderId", "");
    s.customer_id = get_str(j, "customerId", "");
    s.amount = get_i64(j, "amount", "");
    s.transaction_id = get_str(j, "transactionId", "");
    s.failure_reason = get_str(j, "failureReason", "");
    s.version = get_i64(j, "version", "");
    s.handled = handled_from_json(j, payment_codecs);
    return s;
  });
}

std::string encode_state(const inventory::state& s) {
  json reservations = json::object();
  for (const auto& [order_id, quantity] : s.reservations) reservations[order_id] = quantity;
  return dump(json{{"schema_version", aggregate_schema_version},
                   {"registered", s.registered},
                   {"productId", s.product_id},
                   {"name", s.name},
                   {"price", s.price},
                   {"available", s.available},
                   {"reserved", s.reserved},
                   {"reservations", std::move(reservations)},
                   {"version", s.version},
                   {"handled", handled_to_json(s.handled)}});
}

decoded<inventory::state> decode_inventory_state(const std::string& text) {
  return guarded<inventory::state>([&] {
    const json j = parse_snapshot(text, "inventory");
    inventory::state s;
    s.registered = jf::get_bool(j, "registered");
    s.product_id = get_str(j, "productId", "");
    s.name = get_str(j, "name", "");
    s.price = get_i64(j, "price", "");
    s.available = get_i64(j, "available", "");
    s.reserved = get_i64(j, "reserved", "");
    for (const auto& entry : jf::get_object(j, "reservations").items())
      s.reservations[entry.key()] = int64_value(entry.value(), "reservations[" + entry.key() + "]");
    s.version = get_i64(j, "version", "");
    s.handled = handled_from_json(j, inventory_codecs);
    return s;
  });
}

std::string encode_state(const user::state& s) {
  return dump(json{{"schema_version", aggregate_schema_version},
                   {"registered", s.registered},
                   {"userId", s.user_id},
                   {"email", s.email},
                   {"name", s.name},
                   {"passwordHash", s.password_hash},
                   {"role", std::string(user::to_string(s.role_))},
                   {"registeredAt", s.registered_at},
                   {"version", s.version}});
}

decoded<user::state> decode_user_state(const std::string& text) {
  return guarded<user::state>([&] {
    const json j = parse_snapshot(text, "user");
    user::state s;
    s.registered = jf::get_bool(j, "registered");
    s.user_id = get_str(j, "userId", "");
    s.email = get_str(j, "email", "");
    s.name = get_str(j, "name", "");
    s.password_hash = get_str(j, "passwordHash", "");
    s.role_ = role_from_json(j, "role", "");
    s.registered_at = get_i64(j, "registeredAt", "");
    s.version = get_i64(j, "version", "");
    return s;
  });
}

}  // namespace saga::domain

// Codec specs: every event and state round-trips; corrupt payloads are errors naming the field.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "domain/aggregate_codec.hpp"

namespace d = saga::domain;
namespace order = saga::domain::order;
namespace payment = saga::domain::payment;
namespace inventory = saga::domain::inventory;
namespace user = saga::domain::user;

namespace {

const std::string korean_address = "서울시 강남구 테헤란로 123";

order::order_created order_created() {
  return {"o-1",
          "c-1",
          {{"p-1", "Keyboard \"mechanical\" \\ 🚚", 2, 15000}, {"p-2", "마우스", 1, 5000}},
          35000,
          korean_address,
          "corr-1",
          "saga-1",
          1700000000123,
          "create-1"};
}

std::vector<order::event> all_order_events() {
  return {
      order_created(), order::order_confirmed{"o-1", 1700000000456, "saga-1/3/confirm"},
      order::order_cancelled{"o-1", "payment declined: 잔액 부족", 1700000000789, "saga-1/cancel"}};
}

std::vector<payment::event> all_payment_events() {
  return {
      payment::payment_processed{"pay-1", "o-1", "c-1", 35000, "tx-1", 11, "k-process"},
      payment::payment_failed{"pay-1", "o-1", "c-1", 35000, "card declined", 12, "k-fail"},
      payment::payment_refunded{"pay-1", "o-1", 35000, "order cancelled", "rtx-1", 13, "k-refund"}};
}

std::vector<inventory::event> all_inventory_events() {
  return {inventory::product_registered{"p-1", "키보드", 15000, 10, 21, "k-register"},
          inventory::stock_added{"p-1", 5, 22, "k-restock"},
          inventory::inventory_reserved{"p-1", "o-1", 3, 23, "k-reserve"},
          inventory::inventory_reservation_failed{"p-1", "o-2", 30, 12, "insufficient_stock", 24,
                                                  "k-reserve-2"},
          inventory::inventory_released{"p-1", "o-1", 3, "payment declined", 25, "k-release"}};
}

std::vector<user::event> all_user_events() {
  return {user::user_registered{"u-1", "kim@example.com", "김민준", "$argon2id$v=19$xyz",
                                user::role::admin, 31}};
}

/// "ok" or "<field>: <message>"; Boost builds messages even for passing checks.
template <class T>
std::string describe(const d::decoded<T>& r) {
  return r.has_value() ? std::string("ok") : r.error().field + ": " + r.error().message;
}

/// Encodes, decodes and re-encodes `e`; the payloads must be identical. Every field carries a
/// non-default value, so a field the decoder drops or mixes up changes the second payload.
template <class Event, class Decode>
void check_round_trip(const Event& e, Decode decode, const std::string& type) {
  BOOST_TEST_CONTEXT("event " << type) {
    const auto enc = d::encode(e);
    BOOST_TEST(enc.type == type);
    BOOST_TEST(std::string(d::event_type(e)) == type);
    BOOST_TEST(enc.schema_version == 1);
    BOOST_TEST(enc.payload.find("\"schema_version\":1") != std::string::npos);
    const auto dec = decode(enc);
    BOOST_REQUIRE_MESSAGE(dec.has_value(), describe(dec));
    BOOST_TEST(dec->index() == e.index());
    BOOST_TEST(d::encode(*dec).payload == enc.payload);
  }
}

std::string mutate(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  BOOST_REQUIRE_MESSAGE(pos != std::string::npos, "'" << from << "' not in " << text);
  text.replace(pos, from.size(), to);
  return text;
}

/// Requires a decode failure whose field is `field`.
template <class T>
void expect_error(const d::decoded<T>& r, const std::string& field) {
  BOOST_REQUIRE_MESSAGE(!r.has_value(), "expected a decode error on '" << field << "'");
  BOOST_TEST(r.error().field == field);
  BOOST_TEST(!r.error().message.empty());
}

d::encoded_event with_payload(d::encoded_event e, std::string payload) {
  e.payload = std::move(payload);
  return e;
}

/// Event equality (which the idempotency memory's equality rests on) must see every field:
/// the decoded event equals the original, and changing any one payload field, nested ones
/// included, makes it differ.
template <class Event, class Decode>
void check_equality_sees_every_field(const Event& e, Decode decode) {
  const auto enc = d::encode(e);
  const auto same = decode(enc);
  BOOST_REQUIRE_MESSAGE(same.has_value(), describe(same));
  BOOST_TEST((*same == e));
  BOOST_TEST(!(*same != e));
  const nlohmann::json flat = nlohmann::json::parse(enc.payload).flatten();
  for (const auto& field : flat.items()) {
    if (field.key() == "/schema_version") continue;
    BOOST_TEST_CONTEXT("event " << enc.type << ", field " << field.key()) {
      nlohmann::json changed = flat;
      nlohmann::json& value = changed[field.key()];
      if (value.is_string())
        value = value.get<std::string>() + "x";
      else if (value.is_number_integer())
        value = value.get<std::int64_t>() + 1;
      else if (value.is_boolean())
        value = !value.get<bool>();
      const auto other = decode(with_payload(enc, changed.unflatten().dump()));
      BOOST_REQUIRE_MESSAGE(other.has_value(), describe(other));
      BOOST_TEST((*other != e));
      BOOST_TEST(!(*other == e));
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(aggregate_codec)

// ---- round trips ----

BOOST_AUTO_TEST_CASE(every_order_event_round_trips) {
  const auto events = all_order_events();
  const char* types[] = {"OrderCreated", "OrderConfirmed", "OrderCancelled"};
  for (std::size_t i = 0; i < events.size(); ++i)
    check_round_trip(events[i], d::decode_order_event, types[i]);
}

BOOST_AUTO_TEST_CASE(every_payment_event_round_trips) {
  const auto events = all_payment_events();
  const char* types[] = {"PaymentProcessed", "PaymentFailed", "PaymentRefunded"};
  for (std::size_t i = 0; i < events.size(); ++i)
    check_round_trip(events[i], d::decode_payment_event, types[i]);
}

BOOST_AUTO_TEST_CASE(event_equality_sees_every_field) {
  for (const auto& e : all_order_events())
    check_equality_sees_every_field(e, d::decode_order_event);
  for (const auto& e : all_payment_events())
    check_equality_sees_every_field(e, d::decode_payment_event);
  for (const auto& e : all_inventory_events())
    check_equality_sees_every_field(e, d::decode_inventory_event);
}

BOOST_AUTO_TEST_CASE(every_inventory_event_round_trips) {
  const auto events = all_inventory_events();
  const char* types[] = {"ProductRegistered", "StockAdded", "InventoryReserved",
                         "InventoryReservationFailed", "InventoryReleased"};
  for (std::size_t i = 0; i < events.size(); ++i)
    check_round_trip(events[i], d::decode_inventory_event, types[i]);
}

BOOST_AUTO_TEST_CASE(every_user_event_round_trips) {
  check_round_trip(all_user_events().front(), d::decode_user_event, "UserRegistered");
  const auto dec = d::decode_user_event(d::encode(all_user_events().front()));
  BOOST_REQUIRE(dec.has_value());
  BOOST_TEST((std::get<user::user_registered>(*dec).role_ == user::role::admin));
}

BOOST_AUTO_TEST_CASE(order_created_decodes_field_by_field) {
  const auto dec = d::decode_order_event(d::encode(order::event{order_created()}));
  BOOST_REQUIRE(dec.has_value());
  const auto& e = std::get<order::order_created>(*dec);
  const auto want = order_created();
  BOOST_TEST(e.order_id == want.order_id);
  BOOST_TEST(e.customer_id == want.customer_id);
  BOOST_TEST((e.items == want.items));
  BOOST_TEST(e.total == want.total);
  BOOST_TEST(e.shipping_address == korean_address);
  BOOST_TEST(e.correlation_id == want.correlation_id);
  BOOST_TEST(e.saga_id == want.saga_id);
  BOOST_TEST(e.at == want.at);
  BOOST_TEST(e.idempotency_key == want.idempotency_key);
}

BOOST_AUTO_TEST_CASE(payload_uses_camel_case_names_and_raw_utf8) {
  const auto enc = d::encode(order::event{order_created()});
  for (const char* field :
       {"\"orderId\":\"o-1\"", "\"customerId\":\"c-1\"", "\"productId\":\"p-1\"",
        "\"productName\":\"마우스\"", "\"quantity\":2", "\"price\":15000", "\"total\":35000",
        "\"correlationId\":\"corr-1\"", "\"sagaId\":\"saga-1\"", "\"at\":1700000000123",
        "\"idempotencyKey\":\"create-1\""})
    BOOST_CHECK_MESSAGE(enc.payload.find(field) != std::string::npos, field);
  // UTF-8 is kept as is (readable in psql), not escaped.
  BOOST_TEST(enc.payload.find("\"shippingAddress\":\"" + korean_address + "\"") !=
             std::string::npos);
}

// ---- decode errors ----

BOOST_AUTO_TEST_CASE(an_unknown_type_is_an_error_on_the_whole_payload) {
  auto enc = d::encode(order::event{order_created()});
  enc.type = "OrderExploded";
  expect_error(d::decode_order_event(enc), "");
  BOOST_TEST(d::decode_order_event(enc).error().message.find("OrderExploded") != std::string::npos);
  // An event of another aggregate is unknown here too.
  expect_error(d::decode_order_event(d::encode(all_payment_events().front())), "");
  expect_error(d::decode_inventory_event(d::encode(all_user_events().front())), "");
}

BOOST_AUTO_TEST_CASE(corrupt_json_is_an_error_on_the_whole_payload) {
  const auto enc = d::encode(order::event{order_created()});
  expect_error(d::decode_order_event(with_payload(enc, enc.payload.substr(0, 40))), "");
  expect_error(d::decode_order_event(with_payload(enc, "")), "");
  expect_error(d::decode_order_event(with_payload(enc, "[1,2,3]")), "");
  expect_error(d::decode_payment_event(with_payload(d::encode(all_payment_events()[0]), "\"x\"")),
               "");
}

BOOST_AUTO_TEST_CASE(a_missing_field_is_named) {
  const auto enc = d::encode(order::event{order_created()});
  expect_error(
      d::decode_order_event(with_payload(enc, mutate(enc.payload, "\"customerId\":\"c-1\",", ""))),
      "customerId");
  expect_error(
      d::decode_order_event(with_payload(enc, mutate(enc.payload, "\"productId\":\"p-1\",", ""))),
      "items[0].productId");
  const auto pay = d::encode(all_payment_events()[2]);
  expect_error(d::decode_payment_event(with_payload(
                   pay, mutate(pay.payload, "\"refundTransactionId\":\"rtx-1\",", ""))),
               "refundTransactionId");
  const auto inv = d::encode(all_inventory_events()[3]);
  expect_error(
      d::decode_inventory_event(with_payload(inv, mutate(inv.payload, "\"available\":12,", ""))),
      "available");
}

BOOST_AUTO_TEST_CASE(a_field_of_the_wrong_type_is_named) {
  const auto enc = d::encode(order::event{order_created()});
  const auto decode = [&](const std::string& from, const std::string& to) {
    return d::decode_order_event(with_payload(enc, mutate(enc.payload, from, to)));
  };
  expect_error(decode("\"total\":35000", "\"total\":\"35000\""), "total");
  expect_error(decode("\"quantity\":1}", "\"quantity\":\"1\"}"), "items[1].quantity");
  expect_error(decode("\"at\":1700000000123", "\"at\":1700000000123.5"), "at");
  expect_error(decode("\"orderId\":\"o-1\"", "\"orderId\":null"), "orderId");
  expect_error(decode("\"orderId\":\"o-1\"", "\"orderId\":17"), "orderId");
  expect_error(decode("\"total\":35000", "\"total\":18446744073709551615"), "total");
  expect_error(decode("\"total\":35000", "\"total\":true"), "total");

  const auto usr = d::encode(all_user_events().front());
  expect_error(d::decode_user_event(with_payload(
                   usr, mutate(usr.payload, "\"role\":\"admin\"", "\"role\":\"root\""))),
               "role");
}

BOOST_AUTO_TEST_CASE(items_must_be_an_array_of_objects) {
  const auto enc = d::encode(order::event{order_created()});
  const auto start = enc.payload.find("\"items\":[");
  const auto end = enc.payload.find("]", start);
  BOOST_REQUIRE(start != std::string::npos && end != std::string::npos);
  auto payload = enc.payload;
  payload.replace(start, end + 1 - start, "\"items\":\"none\"");
  expect_error(d::decode_order_event(with_payload(enc, payload)), "items");
  payload = enc.payload;
  payload.replace(start, end + 1 - start,
                  "\"items\":[{\"price\":1,\"productId\":\"p\","
                  "\"productName\":\"n\",\"quantity\":1},42]");
  expect_error(d::decode_order_event(with_payload(enc, payload)), "items[1]");
}

BOOST_AUTO_TEST_CASE(an_unsupported_schema_version_is_named) {
  auto enc = d::encode(order::event{order::order_confirmed{"o-1", 5, "k"}});
  const auto v2 = mutate(enc.payload, "\"schema_version\":1", "\"schema_version\":2");
  expect_error(d::decode_order_event(with_payload(enc, v2)), "schema_version");  // differs
  enc.schema_version = 2;
  expect_error(d::decode_order_event(with_payload(enc, v2)), "schema_version");  // unknown
  enc.schema_version = 0;
  expect_error(d::decode_order_event(with_payload(
                   enc, mutate(enc.payload, "\"schema_version\":1", "\"schema_version\":0"))),
               "schema_version");
  enc.schema_version = 1;
  expect_error(
      d::decode_order_event(with_payload(enc, mutate(enc.payload, ",\"schema_version\":1", ""))),
      "schema_version");
}

// ---- snapshots ----

BOOST_AUTO_TEST_CASE(order_state_round_trips_with_its_idempotency_map) {
  order::state s;
  for (const auto& e : all_order_events()) s = order::evolve(std::move(s), e);
  const auto text = d::encode_state(s);
  const auto back = d::decode_order_state(text);
  BOOST_REQUIRE_MESSAGE(back.has_value(), describe(back));
  BOOST_TEST(d::encode_state(*back) == text);
  BOOST_TEST(order::to_string(back->status_) == "CANCELLED");
  BOOST_TEST(back->shipping_address == korean_address);
  BOOST_TEST((back->items == s.items));
  BOOST_TEST(back->total == 35000);
  BOOST_TEST(back->failure_reason == "payment declined: 잔액 부족");
  BOOST_TEST(back->created_at == 1700000000123);
  BOOST_TEST(back->updated_at == 1700000000789);
  BOOST_TEST(back->version == 3);
  BOOST_TEST(back->handled.size() == 3u);
  // The restored map still answers retries.
  const auto r = order::decide(*back, order::confirm{1, "saga-1/3/confirm"});
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->replayed);
  BOOST_REQUIRE_EQUAL(r->earlier.size(), 1u);
  BOOST_TEST(std::get<order::order_confirmed>(r->earlier.front()).at == 1700000000456);
}

BOOST_AUTO_TEST_CASE(an_empty_state_round_trips) {
  const auto o = d::decode_order_state(d::encode_state(order::state{}));
  BOOST_REQUIRE(o.has_value());
  BOOST_TEST(order::to_string(o->status_) == "NONE");
  BOOST_TEST(o->version == 0);
  BOOST_TEST(d::decode_payment_state(d::encode_state(payment::state{})).has_value());
  BOOST_TEST(d::decode_inventory_state(d::encode_state(inventory::state{})).has_value());
  BOOST_TEST(d::decode_user_state(d::encode_state(user::state{})).has_value());
}

BOOST_AUTO_TEST_CASE(payment_state_round_trips) {
  payment::state s;
  for (const auto& e : all_payment_events()) s = payment::evolve(std::move(s), e);
  const auto text = d::encode_state(s);
  const auto back = d::decode_payment_state(text);
  BOOST_REQUIRE_MESSAGE(back.has_value(), describe(back));
  BOOST_TEST(d::encode_state(*back) == text);
  BOOST_TEST(payment::to_string(back->status_) == "REFUNDED");
  BOOST_TEST(back->amount == 35000);
  BOOST_TEST(back->failure_reason == "card declined");
  BOOST_TEST(back->transaction_id == "tx-1");
  BOOST_TEST(back->version == 3);
  BOOST_TEST(back->handled.contains("k-fail"));
}

BOOST_AUTO_TEST_CASE(inventory_state_round_trips_with_reservations) {
  inventory::state s;
  for (const auto& e : all_inventory_events()) s = inventory::evolve(std::move(s), e);
  s = inventory::evolve(std::move(s), inventory::inventory_reserved{"p-1", "o-3", 4, 26, "k-r3"});
  const auto text = d::encode_state(s);
  const auto back = d::decode_inventory_state(text);
  BOOST_REQUIRE_MESSAGE(back.has_value(), describe(back));
  BOOST_TEST(d::encode_state(*back) == text);
  BOOST_TEST(back->registered);
  BOOST_TEST(back->name == "키보드");
  BOOST_TEST(back->available == 11);
  BOOST_TEST(back->reserved == 4);
  BOOST_REQUIRE_EQUAL(back->reservations.size(), 1u);
  BOOST_TEST(back->reservations.at("o-3") == 4);
  BOOST_TEST(back->version == 6);
  BOOST_TEST(back->handled.size() == 6u);
  BOOST_TEST((back->handled == s.handled));  // same keys, events and order
}

BOOST_AUTO_TEST_CASE(user_state_round_trips) {
  const auto s = user::evolve(user::state{}, all_user_events().front());
  const auto text = d::encode_state(s);
  const auto back = d::decode_user_state(text);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(d::encode_state(*back) == text);
  BOOST_TEST(back->registered);
  BOOST_TEST(back->name == "김민준");
  BOOST_TEST((back->role_ == user::role::admin));
  BOOST_TEST(back->registered_at == 31);
  BOOST_TEST(back->version == 1);
}

BOOST_AUTO_TEST_CASE(corrupt_snapshots_name_the_field) {
  inventory::state s;
  for (const auto& e : all_inventory_events()) s = inventory::evolve(std::move(s), e);
  s = inventory::evolve(std::move(s), inventory::inventory_reserved{"p-1", "o-3", 4, 26, "k-r3"});
  const auto text = d::encode_state(s);

  expect_error(d::decode_inventory_state(text.substr(0, text.size() / 2)), "");
  expect_error(d::decode_inventory_state("42"), "");
  expect_error(d::decode_inventory_state(mutate(text, "\"schema_version\":1,\"version\"",
                                                "\"schema_version\":9,\"version\"")),
               "schema_version");
  expect_error(d::decode_inventory_state(mutate(text, "\"o-3\":4", "\"o-3\":\"4\"")),
               "reservations[o-3]");
  expect_error(d::decode_inventory_state(mutate(text, "\"quantity\":5", "\"quantity\":\"5\"")),
               "handled[1].events[0].payload.quantity");
  expect_error(d::decode_inventory_state(mutate(text, "\"StockAdded\"", "\"StockRemoved\"")),
               "handled[1].events[0].type");
  expect_error(d::decode_inventory_state(mutate(text, "\"registered\":true", "\"registered\":1")),
               "registered");
  expect_error(d::decode_inventory_state(mutate(text, ",\"version\":6", "")), "version");

  const auto order_text = d::encode_state(order::evolve(order::state{}, order_created()));
  expect_error(d::decode_order_state(mutate(order_text, "\"PENDING\"", "\"LOST\"")), "status");
  const auto user_text = d::encode_state(user::evolve(user::state{}, all_user_events().front()));
  expect_error(d::decode_user_state(mutate(user_text, "\"admin\"", "\"root\"")), "role");
}

// ---- text rule shared with decide ----

BOOST_AUTO_TEST_CASE(valid_text_is_utf8_without_nul) {
  BOOST_TEST(d::is_valid_text(""));
  BOOST_TEST(d::is_valid_text("plain ascii"));
  BOOST_TEST(d::is_valid_text(korean_address));
  BOOST_TEST(d::is_valid_text("🚚 \xf4\x8f\xbf\xbf"));  // U+10FFFF is the last code point
  BOOST_TEST(!d::is_valid_text(std::string("a\0b", 3)));
  BOOST_TEST(!d::is_valid_text("\x80"));              // stray continuation byte
  BOOST_TEST(!d::is_valid_text("\xc0\xaf"));          // overlong '/'
  BOOST_TEST(!d::is_valid_text("\xe0\x80\xaf"));      // overlong '/'
  BOOST_TEST(!d::is_valid_text("\xed\xa0\x80"));      // surrogate
  BOOST_TEST(!d::is_valid_text("\xf4\x90\x80\x80"));  // above U+10FFFF
  BOOST_TEST(!d::is_valid_text("\xec\x84"));          // truncated 3-byte sequence
}

BOOST_AUTO_TEST_SUITE_END()

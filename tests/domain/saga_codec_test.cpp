// Saga events and snapshots through the JSON codec: round trips, field names, and errors
// that name the offending field.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "domain/order_processing.hpp"
#include "domain/saga.hpp"
#include "domain/saga_codec.hpp"

namespace sg = saga::domain::sagas;
using nlohmann::json;
using saga::domain::decode_saga_event;
using saga::domain::decode_saga_state;
using saga::domain::encode;
using saga::domain::encode_state;
using saga::domain::encoded_event;

namespace {

sg::saga_input sample_input() {
  sg::saga_input in;
  in.order_id = "o-1";
  in.customer_id = "c-1";
  in.items = {{"p-1", "Füller ✒", 2, 500}, {"p-2", "Ink", 1, 1200}};
  in.total = 2200;
  in.attributes = {{"channel", "web"}, {"coupon", ""}};
  return in;
}

std::vector<sg::event> one_of_each() {
  return {
      sg::saga_started{"s-1",
                       "OrderProcessing",
                       "corr-1",
                       sample_input(),
                       {"reserve_inventory", "process_payment", "confirm_order"},
                       1000,
                       std::nullopt},
      sg::step_started{0, sg::phase::forward, 1, 2, {0, 1}, 1000, 6000},
      sg::step_started{3, sg::phase::on_compensated, 2, 1, {}, 1500, 1500},
      sg::step_succeeded{0, sg::phase::forward, 1, 1, false, 1100, std::nullopt},
      sg::step_succeeded{1, sg::phase::forward, 1, -1, true, 1101,
                         sg::step_started{2, sg::phase::forward, 1, 1, {0}, 1101, 6101}},
      sg::step_failed{1, sg::phase::forward, 2, 0, "declined \"hard\"", false, false, 0, 1200},
      sg::step_failed{1, sg::phase::compensation, 3, -1, "timed out", true, true, 9000, 1300},
      sg::compensation_started{"process_payment: declined", 1201, std::nullopt},
      sg::step_compensated{0, sg::phase::compensation, 1, 1, true, 1400,
                           sg::step_started{3, sg::phase::on_compensated, 1, 1, {0}, 1400, 6400}},
      sg::step_compensated{3, sg::phase::on_compensated, 1, 0, false, 1401, std::nullopt},
      sg::saga_completed{1500},
      sg::saga_compensated{"process_payment: declined", 1600},
      sg::saga_failed{0, sg::phase::compensation, "compensating reserve_inventory: x", 1700},
  };
}

json payload_of(const sg::event& e) { return json::parse(encode(e).payload); }

encoded_event with(const sg::event& e, const std::function<void(json&)>& change) {
  auto enc = encode(e);
  auto j = json::parse(enc.payload);
  change(j);
  enc.payload = j.dump();
  return enc;
}

void expect_error(const encoded_event& enc, const std::string& field) {
  const auto res = decode_saga_event(enc);
  BOOST_REQUIRE_MESSAGE(!res.has_value(), "decoding " << enc.payload << " should fail");
  BOOST_TEST(res.error().field == field);
  BOOST_TEST(!res.error().message.empty());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(saga_codec)

BOOST_AUTO_TEST_CASE(every_event_round_trips) {
  for (const auto& e : one_of_each()) {
    const auto enc = encode(e);
    // Events carrying a folded step start are schema 2, the rest stay 1.
    const bool folded = json::parse(enc.payload).contains("next");
    BOOST_TEST(enc.schema_version == (folded ? 2 : 1));
    const auto dec = decode_saga_event(enc);
    BOOST_REQUIRE_MESSAGE(dec.has_value(), enc.type << ": " << (dec ? "" : dec.error().message));
    BOOST_TEST_INFO(enc.type);
    BOOST_TEST((dec.value() == e));
  }
}

BOOST_AUTO_TEST_CASE(a_folded_step_start_is_written_as_next_and_needs_schema_2) {
  const sg::event e =
      sg::step_succeeded{0,
                         sg::phase::forward,
                         1,
                         0,
                         true,
                         1100,
                         sg::step_started{1, sg::phase::forward, 1, 1, {0}, 1100, 6100}};
  const auto enc = encode(e);
  BOOST_TEST(enc.type == "SagaStepSucceeded");
  BOOST_TEST(enc.schema_version == 2);
  const auto j = json::parse(enc.payload);
  BOOST_TEST(j.at("schema_version") == 2);
  BOOST_TEST(j.at("next").at("step") == 1);
  BOOST_TEST(j.at("next").at("deadlineAt") == 6100);
  BOOST_TEST(j.at("next").at("targets") == json::array({0}));
  // Without "next" nothing changes: schema 1, as every journal written before folding.
  BOOST_TEST(!payload_of(sg::step_succeeded{0, sg::phase::forward, 1, 0, true, 1100, std::nullopt})
                  .contains("next"));
  // "next" in a schema 1 payload is refused rather than misread.
  auto v1 = enc;
  v1.schema_version = 1;
  auto p = json::parse(v1.payload);
  p["schema_version"] = 1;
  v1.payload = p.dump();
  expect_error(v1, "next");
  // A broken "next" names its field.
  expect_error(with(e, [](json& x) { x["next"]["deadlineAt"] = "soon"; }), "next.deadlineAt");
  expect_error(with(e, [](json& x) { x["next"] = 3; }), "next");
  // Schema 3 is unknown.
  expect_error(with(e, [](json& x) { x["schema_version"] = 3; }), "schema_version");
}

BOOST_AUTO_TEST_CASE(type_names_and_camel_case_fields) {
  std::vector<std::string> types;
  for (const auto& e : one_of_each()) types.push_back(encode(e).type);
  BOOST_TEST(types == (std::vector<std::string>{
                          "SagaStarted", "SagaStepStarted", "SagaStepStarted", "SagaStepSucceeded",
                          "SagaStepSucceeded", "SagaStepFailed", "SagaStepFailed",
                          "SagaCompensationStarted", "SagaStepCompensated", "SagaStepCompensated",
                          "SagaCompleted", "SagaCompensated", "SagaFailed"}));
  const auto events = one_of_each();
  auto j = payload_of(events[0]);
  BOOST_TEST(j.at("schema_version") == 1);
  BOOST_TEST(j.at("sagaId") == "s-1");
  BOOST_TEST(j.at("sagaType") == "OrderProcessing");
  BOOST_TEST(j.at("correlationId") == "corr-1");
  BOOST_TEST(j.at("input").at("orderId") == "o-1");
  BOOST_TEST(j.at("input").at("items").at(0).at("unitPrice") == 500);
  BOOST_TEST(j.at("input").at("attributes").at("channel") == "web");
  j = payload_of(events[1]);
  BOOST_TEST(j.at("deadlineAt") == 6000);
  BOOST_TEST(j.at("targetCount") == 2);
  BOOST_TEST(j.at("phase") == "forward");
  j = payload_of(events[6]);
  BOOST_TEST(j.at("willRetry") == true);
  BOOST_TEST(j.at("retryAt") == 9000);
  BOOST_TEST(j.at("phase") == "compensation");
  BOOST_TEST(payload_of(events[4]).at("stepDone") == true);
}

BOOST_AUTO_TEST_CASE(corrupt_payloads_are_errors_naming_the_field) {
  const auto events = one_of_each();
  expect_error(encoded_event{"SagaPaused", 1, R"({"schema_version":1})"}, "");
  expect_error(encoded_event{"SagaCompleted", 1, "{not json"}, "");
  expect_error(encoded_event{"SagaCompleted", 1, "[1]"}, "");
  expect_error(with(events[10], [](json& j) { j.erase("at"); }), "at");
  expect_error(with(events[0], [](json& j) { j["sagaId"] = 5; }), "sagaId");
  expect_error(with(events[0], [](json& j) { j["input"]["items"][1]["quantity"] = "2"; }),
               "input.items[1].quantity");
  expect_error(with(events[0], [](json& j) { j["input"]["items"][0] = 3; }), "input.items[0]");
  expect_error(with(events[0], [](json& j) { j["input"]["attributes"]["channel"] = 1; }),
               "input.attributes.channel");
  expect_error(with(events[0], [](json& j) { j["steps"][2] = false; }), "steps[2]");
  expect_error(with(events[1], [](json& j) { j["phase"] = "sideways"; }), "phase");
  expect_error(with(events[1], [](json& j) { j["targets"] = json::array({0, 2}); }), "targets[1]");
  expect_error(with(events[1], [](json& j) { j["attempt"] = 0; }), "attempt");
  expect_error(with(events[1], [](json& j) { j["step"] = -1; }), "step");
  expect_error(with(events[1], [](json& j) { j["step"] = 1LL << 40; }), "step");
  expect_error(with(events[1], [](json& j) { j["deadlineAt"] = 18446744073709551615ULL; }),
               "deadlineAt");
  expect_error(with(events[3], [](json& j) { j["phase"] = "compensation"; }), "phase");
  expect_error(with(events[3], [](json& j) { j["target"] = -2; }), "target");
  expect_error(with(events[8], [](json& j) { j["phase"] = "forward"; }), "phase");
  expect_error(with(events[12], [](json& j) { j["phase"] = "forward"; }), "phase");
  expect_error(with(events[5], [](json& j) { j["willRetry"] = "no"; }), "willRetry");
  expect_error(with(events[7], [](json& j) { j.erase("reason"); }), "reason");
}

BOOST_AUTO_TEST_CASE(schema_versions_must_match_and_be_known) {
  auto enc = encode(sg::saga_completed{5});
  enc.schema_version = 2;
  expect_error(enc, "schema_version");
  expect_error(with(sg::saga_completed{5}, [](json& j) { j["schema_version"] = 2; }),
               "schema_version");
  expect_error(with(sg::saga_completed{5}, [](json& j) { j.erase("schema_version"); }),
               "schema_version");
}

BOOST_AUTO_TEST_CASE(states_round_trip_through_snapshots_at_every_point_of_a_saga) {
  const auto def = sg::order_processing();
  sg::state s;
  std::vector<sg::input> inputs{
      sg::start{"s-1", "corr-1", sample_input()},
      sg::target_succeeded{0, sg::phase::forward, 1, 0},
      sg::target_failed{0, sg::phase::forward, 1, 1, "busy", true},
      sg::retry_due{0, sg::phase::forward, 1},
      sg::target_succeeded{0, sg::phase::forward, 2, 1},
      sg::target_failed{1, sg::phase::forward, 1, 0, "declined", false},
      sg::target_failed{0, sg::phase::compensation, 1, 0, "down", false},
      sg::target_succeeded{0, sg::phase::compensation, 1, 1},
      sg::manual_retry{},
      sg::target_succeeded{0, sg::phase::compensation, 1, 0},
      sg::target_succeeded{3, sg::phase::on_compensated, 1, 0},
  };
  saga::domain::timestamp now = 1000;
  int checked = 0;
  for (const auto& in : inputs) {
    auto res = sg::decide(def, s, in, now += 10, 0.3);
    BOOST_REQUIRE_MESSAGE(res.has_value(), (res ? "" : res.error().message));
    BOOST_REQUIRE(!res->events.empty());
    for (const auto& e : res->events) s = sg::evolve(s, e);
    const auto text = encode_state(s);
    const auto back = decode_saga_state(text);
    BOOST_REQUIRE_MESSAGE(back.has_value(),
                          (back ? "" : back.error().field + ": " + back.error().message));
    BOOST_TEST((back.value() == s));
    BOOST_TEST(encode_state(back.value()) == text);
    ++checked;
  }
  BOOST_TEST(checked == 11);
  BOOST_TEST((s.status_ == sg::status::compensated));
  const auto j = json::parse(encode_state(s));
  BOOST_TEST(j.at("schema_version") == 1);
  BOOST_TEST(j.at("status") == "COMPENSATED");
  BOOST_TEST(j.at("steps").at(0).at("status") == "COMPENSATED");
  BOOST_TEST(j.at("steps").at(0).at("forward").at(1) == "succeeded");
  BOOST_TEST(j.at("onCompensated").at("compensation").at(0) == "succeeded");
}

BOOST_AUTO_TEST_CASE(corrupt_snapshots_are_errors_naming_the_field) {
  sg::state s;
  s = sg::evolve(
      s,
      sg::saga_started{"s-1", "OrderProcessing", "c", sample_input(), {"a", "b"}, 1, std::nullopt});
  s = sg::evolve(s, sg::step_started{0, sg::phase::forward, 1, 2, {0, 1}, 1, 100});
  const auto good = json::parse(encode_state(s));
  auto check = [&](const std::function<void(json&)>& change, const std::string& field) {
    auto j = good;
    change(j);
    const auto res = decode_saga_state(j.dump());
    BOOST_REQUIRE_MESSAGE(!res.has_value(), "decoding " << j.dump() << " should fail");
    BOOST_TEST(res.error().field == field);
  };
  check([](json& j) { j["schema_version"] = 3; }, "schema_version");
  check([](json& j) { j["status"] = "SLEEPING"; }, "status");
  check([](json& j) { j["steps"][0]["forward"][1] = "maybe"; }, "steps[0].forward[1]");
  check([](json& j) { j["steps"][1]["startedAt"] = "x"; }, "steps[1].startedAt");
  check([](json& j) { j["steps"].erase(1); }, "steps");
  check([](json& j) { j["onCompensated"] = 1; }, "onCompensated");
  check([](json& j) { j["input"].erase("total"); }, "input.total");
  check([](json& j) { j.erase("awaitingRetry"); }, "awaitingRetry");
  check([](json& j) { j["version"] = -1; }, "version");
  BOOST_TEST(!decode_saga_state("").has_value());
  BOOST_TEST(!decode_saga_state("42").has_value());
}

BOOST_AUTO_TEST_CASE(encoding_never_throws_even_on_invalid_text) {
  const sg::event e = sg::compensation_started{std::string("bad \xff byte", 10), 1, std::nullopt};
  const auto enc = encode(e);
  const auto dec = decode_saga_event(enc);
  BOOST_REQUIRE(dec.has_value());
  BOOST_TEST(std::get<sg::compensation_started>(dec.value()).reason.find("bad ") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

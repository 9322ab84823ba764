// Request validation shared by every store: the JSON payload rules (so a bad payload fails
// alone instead of failing a whole batch in the database), ids, metadata encoding, new_uuid.
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "persistence/event_store.hpp"
#include "tests/persistence/support.hpp"

namespace sp = saga::persistence;

BOOST_AUTO_TEST_SUITE(validation)

BOOST_AUTO_TEST_CASE(storable_json_objects_are_accepted) {
  for (const std::string ok : {
           R"({})",
           " \t\r\n{ } \n",
           R"({"a":1,"b":-0.5e-3,"c":[true,false,null],"d":{"e":"f"}})",
           R"({"esc":"\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"})",
           "{\"utf8\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
           R"({"big":123456789012345678901234567890,"exp":1e308,"tiny":1e-300,"zero":0})",
           R"({"dup":1,"dup":2})",
           R"({"nested":[[[[[[[[[[1]]]]]]]]]]})",
       }) {
    BOOST_TEST(sp::is_storable_json_object(ok), ok);
    // Whatever we accept, a real JSON parser accepts too.
    BOOST_TEST(nlohmann::json::accept(ok), ok);
  }
  std::string deep = "{\"a\":";
  for (std::size_t i = 1; i < sp::max_json_depth; ++i) deep += "[";
  deep += "1";
  for (std::size_t i = 1; i < sp::max_json_depth; ++i) deep += "]";
  deep += "}";
  BOOST_TEST(sp::is_storable_json_object(deep));
}

BOOST_AUTO_TEST_CASE(anything_else_is_rejected) {
  for (const std::string& bad : {
           std::string(""),
           std::string("   "),
           std::string("[]"),
           std::string("\"text\""),
           std::string("42"),
           std::string("null"),
           std::string("{"),
           std::string("{}}"),
           std::string("{} {}"),
           std::string(R"({"a":1,})"),
           std::string(R"({"a" 1})"),
           std::string(R"({a:1})"),
           std::string(R"({'a':1})"),
           std::string(R"({"a":[1,]})"),
           std::string(R"({"a":01})"),
           std::string(R"({"a":1.})"),
           std::string(R"({"a":.5})"),
           std::string(R"({"a":+1})"),
           std::string(R"({"a":-})"),
           std::string(R"({"a":1e})"),
           std::string(R"({"a":NaN})"),
           std::string(R"({"a":Infinity})"),
           std::string(R"({"a":tru})"),
           std::string(R"({"a":1e309})"),
           std::string(R"({"a":1e1000000})"),
           std::string(R"({"a":"\u0000"})"),
           std::string(R"({"a":"\ud800"})"),
           std::string(R"({"a":"\udc00"})"),
           std::string(R"({"a":"\ud800\u0041"})"),
           std::string(R"({"a":"\x"})"),
           std::string(R"({"a":"\u12"})"),
           std::string("{\"a\":\"tab\there\"}"),
           std::string("{\"a\":\"nul\0\"}", 11),
           std::string("{\"a\":\"\xc0\xaf\"}"),          // overlong
           std::string("{\"a\":\"\xed\xa0\x80\"}"),      // encoded surrogate
           std::string("{\"a\":\"\xf4\x90\x80\x80\"}"),  // past U+10FFFF
           std::string("{\"a\":\"\xe2\x82\"}"),          // truncated
           std::string("{\"a\":\"unterminated}"),
       }) {
    BOOST_TEST(!sp::is_storable_json_object(bad), bad);
  }
  std::string deep = "{\"a\":";
  for (std::size_t i = 0; i < sp::max_json_depth; ++i) deep += "[";
  for (std::size_t i = 0; i < sp::max_json_depth; ++i) deep += "]";
  deep += "}";
  BOOST_TEST(!sp::is_storable_json_object(deep));  // one level too deep
}

BOOST_AUTO_TEST_CASE(event_ids_are_case_insensitive_and_normalized) {
  auto r = saga::persistence::test::make_request("s", 0, 2);
  r.events[0].event_id = "ABCDEF01-2345-4789-ABCD-EF0123456789";
  BOOST_TEST(!sp::validate_append(r).has_value());
  BOOST_TEST(sp::normalize_event_ids(r));
  BOOST_TEST(r.events[0].event_id == "abcdef01-2345-4789-abcd-ef0123456789");
  BOOST_TEST(!sp::normalize_event_ids(r));
  // The same id in two cases is the same id.
  r.events[1].event_id = "ABCDEF01-2345-4789-ABCD-EF0123456789";
  const auto e = sp::validate_append(r);
  BOOST_REQUIRE(e.has_value());
  BOOST_TEST(e->code == sp::store_errc::invalid_request);
}

BOOST_AUTO_TEST_CASE(limits_are_enforced) {
  auto r = saga::persistence::test::make_request("s", 0, 1);
  r.stream_id = std::string(sp::max_stream_id_bytes + 1, 'x');
  BOOST_TEST(sp::validate_append(r).has_value());
  r.stream_id = std::string(sp::max_stream_id_bytes, 'x');
  BOOST_TEST(!sp::validate_append(r).has_value());
  r.events[0].event_type = std::string(sp::max_type_bytes + 1, 't');
  BOOST_TEST(sp::validate_append(r).has_value());
  r.events[0].event_type = "T";
  r.events[0].payload = "{\"p\":\"" + std::string(sp::max_payload_bytes, 'x') + "\"}";
  BOOST_TEST(sp::validate_append(r).has_value());
}

BOOST_AUTO_TEST_CASE(metadata_round_trips_through_json) {
  sp::event_metadata m;
  m.correlation_id = "c \"quoted\" \\ back\tslash \x01";
  m.causation_id = "h\xc3\xa9";
  m.user_id = "u";
  const auto json = sp::metadata_to_json(m);
  BOOST_TEST(sp::is_storable_json_object(json));
  const auto parsed = nlohmann::json::parse(json);
  BOOST_TEST(parsed.size() == 3u);  // empty fields are left out
  BOOST_TEST(!parsed.contains("node_id"));
  const auto back = sp::metadata_from_json(json);
  BOOST_TEST(back.correlation_id == m.correlation_id);
  BOOST_TEST(back.causation_id == m.causation_id);
  BOOST_TEST(back.user_id == "u");
  BOOST_TEST(back.command_id.empty());
  BOOST_TEST(sp::metadata_to_json({}) == "{}");
  BOOST_TEST(sp::metadata_from_json("not json").correlation_id.empty());
}

BOOST_AUTO_TEST_CASE(new_uuid_is_a_version_7_uuid_that_sorts_by_its_time) {
  const auto unix_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const auto before = unix_ms();
  std::set<std::string> seen;
  int malformed = 0;
  for (int i = 0; i < 10000; ++i) {
    const auto id = sp::new_uuid();
    bool ok =
        id.size() == 36 && id[14] == '7' && std::string("89ab").find(id[19]) != std::string::npos;
    for (std::size_t k = 0; ok && k < id.size(); ++k) {
      const bool dash = k == 8 || k == 13 || k == 18 || k == 23;
      ok = dash ? id[k] == '-' : std::string("0123456789abcdef").find(id[k]) != std::string::npos;
    }
    if (!ok) ++malformed;
    seen.insert(id);
  }
  BOOST_TEST(malformed == 0);
  BOOST_TEST(seen.size() == 10000u);  // the random bits keep ids of one millisecond apart

  // The first 48 bits are the Unix time in milliseconds, so an id made in a later millisecond
  // sorts after one made earlier, as text and as PostgreSQL's uuid.
  const auto first = sp::new_uuid();
  const auto stamp = std::stoll(first.substr(0, 8) + first.substr(9, 4), nullptr, 16);
  BOOST_TEST(stamp >= before);
  BOOST_TEST(stamp <= unix_ms());
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  BOOST_TEST(sp::new_uuid() > first);
}

BOOST_AUTO_TEST_SUITE_END()

// Problem details specs: the JSON shape, the status of every rejection and failure code, and
// that internal failure text never reaches a client.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "http/problem.hpp"

namespace h = saga::http;
using rc = saga::domain::rejection_code;
using fc = saga::actors::failure_code;
using json = nlohmann::json;

BOOST_AUTO_TEST_SUITE(problem)

BOOST_AUTO_TEST_CASE(problem_json_has_the_rfc7807_members_and_correlation_id) {
  const auto p = h::make_problem(404, "order o-1 not found");
  const json j = json::parse(h::problem_json(p, "corr-42"));
  BOOST_TEST(j.at("type") == "about:blank");
  BOOST_TEST(j.at("title") == "Not Found");
  BOOST_TEST(j.at("status") == 404);
  BOOST_TEST(j.at("detail") == "order o-1 not found");
  BOOST_TEST(j.at("correlationId") == "corr-42");
  BOOST_TEST(!j.contains("errors"));
}

BOOST_AUTO_TEST_CASE(validation_problem_lists_field_errors) {
  auto p = h::validation_problem("items[1].quantity", "must be between 1 and 1000");
  p.errors.emplace_back("shippingAddress", "is required");
  const json j = json::parse(h::problem_json(p, "c"));
  BOOST_TEST(j.at("status") == 422);
  BOOST_TEST(j.at("detail") == "items[1].quantity: must be between 1 and 1000");
  BOOST_REQUIRE(j.at("errors").size() == 2u);
  BOOST_TEST(j["errors"][0].at("field") == "items[1].quantity");
  BOOST_TEST(j["errors"][0].at("message") == "must be between 1 and 1000");
  BOOST_TEST(j["errors"][1].at("field") == "shippingAddress");
}

BOOST_AUTO_TEST_CASE(problem_json_escapes_and_survives_invalid_utf8) {
  const auto p = h::make_problem(400, "quote \" backslash \\ newline \n 한글 bad \xFF end");
  const std::string text = h::problem_json(p, "c\"1");
  const json j = json::parse(text);  // would throw if the output were not valid JSON
  BOOST_TEST(j.at("correlationId") == "c\"1");
  const std::string detail = j.at("detail");
  BOOST_TEST(detail.find("quote \" backslash \\ newline \n 한글 bad ") == 0u);
  BOOST_TEST(detail.find("\xFF") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(reason_phrases) {
  BOOST_TEST(h::reason_phrase(202) == "Accepted");  // status lines of success answers too
  BOOST_TEST(h::reason_phrase(413) == "Payload Too Large");
  BOOST_TEST(h::reason_phrase(415) == "Unsupported Media Type");
  BOOST_TEST(h::reason_phrase(429) == "Too Many Requests");
  BOOST_TEST(h::reason_phrase(799) == "Error");
}

BOOST_AUTO_TEST_CASE(rejections_map_to_404_409_422) {
  BOOST_TEST(h::problem_for(rc::not_found, "x").status == 404);
  for (auto code :
       {rc::already_exists, rc::already_cancelled, rc::already_confirmed, rc::already_processed,
        rc::already_refunded, rc::invalid_state, rc::insufficient_stock})
    BOOST_TEST(h::problem_for(code, "x").status == 409, saga::domain::to_string(code));
  for (auto code :
       {rc::invalid_argument, rc::invalid_quantity, rc::invalid_price, rc::too_many_items,
        rc::money_overflow, rc::unknown_product, rc::not_paid, rc::idempotency_mismatch})
    BOOST_TEST(h::problem_for(code, "x").status == 422, saga::domain::to_string(code));
}

BOOST_AUTO_TEST_CASE(rejection_keeps_its_message_and_names_its_code_in_the_type) {
  const auto p = h::problem_for(rc::insufficient_stock, "only 2 of product-1 available");
  BOOST_TEST(p.detail == "only 2 of product-1 available");
  BOOST_TEST(p.type == "urn:saga:rejection:insufficient_stock");
  BOOST_TEST(p.title == "Conflict");
}

BOOST_AUTO_TEST_CASE(transient_failures_are_503) {
  for (auto code : {fc::timeout, fc::overloaded, fc::journal_unavailable, fc::actor_unavailable,
                    fc::gateway_unavailable, fc::version_conflict})
    BOOST_TEST(h::problem_for(code, "x").status == 503, saga::actors::to_string(code));
}

BOOST_AUTO_TEST_CASE(bugs_are_500) {
  for (auto code : {fc::journal_error, fc::poison_command, fc::none})
    BOOST_TEST(h::problem_for(code, "x").status == 500, saga::actors::to_string(code));
}

BOOST_AUTO_TEST_CASE(failure_details_never_leak_internal_text) {
  const std::string internal =
      "ERROR: duplicate key value violates unique constraint \"events_pkey\" "
      "INSERT INTO events (stream_id) VALUES ('o-1')";
  for (auto code : {fc::journal_error, fc::poison_command, fc::journal_unavailable, fc::timeout,
                    fc::overloaded, fc::none}) {
    const auto p = h::problem_for(code, internal);
    const std::string body = h::problem_json(p, "c");
    BOOST_TEST(body.find("INSERT") == std::string::npos, saga::actors::to_string(code));
    BOOST_TEST(body.find("events_pkey") == std::string::npos);
    BOOST_TEST(!p.detail.empty());
  }
  BOOST_TEST(h::problem_for(fc::journal_error, internal).detail.find("internal error") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

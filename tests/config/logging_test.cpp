// Log lines: JSON mode writes one valid JSON object per line whatever the message holds (quotes,
// newlines, control characters, invalid UTF-8), with node, level, logger and correlation id as
// fields; text mode keeps one line per message; the level filters.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "config/logging.hpp"

namespace sc = saga::config;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// Routes the default logger into a string for the test's duration, then back to stderr.
struct captured_log {
  explicit captured_log(sc::log_settings settings, const std::string& node = "node-7") {
    sc::setup_logging(settings, node, out);
  }
  ~captured_log() { sc::setup_logging(sc::log_settings{}, "test"); }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
  std::ostringstream out;
};

const std::string nasty =
    "quote \" backslash \\ newline \n tab \t cr \r ctrl \x01 del \x7f "
    "braces {} 서울 🚚";

}  // namespace

BOOST_AUTO_TEST_SUITE(logging)

BOOST_AUTO_TEST_CASE(json_lines_are_valid_json_with_every_field) {
  captured_log log({sc::log_level::info, sc::log_format::json});
  sc::log(sc::log_level::info, "plain message");
  sc::log_with_correlation(sc::log_level::warn, "corr-\"1\"", nasty);
  sc::log(sc::log_level::error, "after the correlated one");
  sc::log(sc::log_level::debug, "below the level");
  const auto lines = lines_of(log.out.str());
  BOOST_REQUIRE_EQUAL(lines.size(), 3u);
  std::vector<nlohmann::json> parsed;
  for (const auto& line : lines) {
    BOOST_TEST_CONTEXT(line) {
      BOOST_REQUIRE(nlohmann::json::accept(line));
      parsed.push_back(nlohmann::json::parse(line));
    }
  }
  const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  for (const auto& j : parsed) {
    BOOST_CHECK(std::regex_match(j.at("ts").get<std::string>(), iso));
    BOOST_CHECK_EQUAL(j.at("node").get<std::string>(), "node-7");
    BOOST_CHECK_EQUAL(j.at("logger").get<std::string>(), std::string(sc::default_logger_name));
  }
  BOOST_CHECK_EQUAL(parsed[0].at("level").get<std::string>(), "info");
  BOOST_CHECK_EQUAL(parsed[0].at("msg").get<std::string>(), "plain message");
  BOOST_CHECK(!parsed[0].contains("correlation_id"));
  BOOST_CHECK_EQUAL(parsed[1].at("level").get<std::string>(), "warn");
  BOOST_CHECK_EQUAL(parsed[1].at("msg").get<std::string>(), nasty);
  BOOST_CHECK_EQUAL(parsed[1].at("correlation_id").get<std::string>(), "corr-\"1\"");
  BOOST_CHECK_EQUAL(parsed[2].at("level").get<std::string>(), "error");
  BOOST_CHECK(!parsed[2].contains("correlation_id"));  // the id does not leak to later lines
}

BOOST_AUTO_TEST_CASE(invalid_utf8_becomes_replacement_characters) {
  captured_log log({sc::log_level::info, sc::log_format::json}, "node-\xff");
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate.
  sc::log(sc::log_level::info,
          "a\x80"
          "b\xe4\xb8"
          "c\xc0\xaf"
          "d\xed\xa0\x80"
          "e");
  const auto lines = lines_of(log.out.str());
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  BOOST_REQUIRE(nlohmann::json::accept(lines[0]));
  const auto j = nlohmann::json::parse(lines[0]);
  const std::string r = "\xef\xbf\xbd";  // U+FFFD
  BOOST_CHECK_EQUAL(j.at("msg").get<std::string>(),
                    "a" + r + "b" + r + r + "c" + r + r + "d" + r + r + r + "e");
  BOOST_CHECK_EQUAL(j.at("node").get<std::string>(), "node-" + r);
}

BOOST_AUTO_TEST_CASE(json_lines_from_many_threads_do_not_interleave) {
  captured_log log({sc::log_level::info, sc::log_format::json});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        sc::log_with_correlation(sc::log_level::info, "c" + std::to_string(t),
                                 "thread " + std::to_string(t) + " line " + std::to_string(i));
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto lines = lines_of(log.out.str());
  BOOST_REQUIRE_EQUAL(lines.size(), 800u);
  for (const auto& line : lines) {
    BOOST_REQUIRE(nlohmann::json::accept(line));
    const auto j = nlohmann::json::parse(line);
    const auto msg = j.at("msg").get<std::string>();
    BOOST_CHECK_EQUAL("c" + msg.substr(7, 1), j.at("correlation_id").get<std::string>());
  }
}

BOOST_AUTO_TEST_CASE(text_lines_carry_node_level_and_correlation_on_one_line) {
  captured_log log({sc::log_level::debug, sc::log_format::text}, "node-3");
  sc::log(sc::log_level::debug, "first\nsecond");
  sc::log_with_correlation(sc::log_level::info, "abc-123", "placed");
  sc::log(sc::log_level::trace, "below the level");
  const auto lines = lines_of(log.out.str());
  BOOST_REQUIRE_EQUAL(lines.size(), 2u);
  const std::regex shape(
      R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (debug|info) \[node-3\] saga-node: .*)");
  for (const auto& line : lines) BOOST_CHECK_MESSAGE(std::regex_match(line, shape), line);
  BOOST_CHECK(lines[0].find("first\\nsecond") != std::string::npos);
  BOOST_CHECK(lines[1].find("placed [correlation_id=abc-123]") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_spdlog_loggers_and_format_calls_share_the_line_format) {
  // Like saga_actors' "actors" logger: made through spdlog's factory, before or after set-up.
  std::ostringstream before_out;
  std::ostringstream after_out;
  auto before = spdlog::synchronous_factory::create<spdlog::sinks::ostream_sink_mt>("before-setup",
                                                                                    before_out);
  {
    captured_log log({sc::log_level::warn, sc::log_format::json});
    auto after = spdlog::synchronous_factory::create<spdlog::sinks::ostream_sink_mt>("after-setup",
                                                                                     after_out);
    before->warn("from {} \"logger\"", "the early");
    after->error("{} items", 3);
    after->info("below the level");
    spdlog::warn("default {}", "logger");
    const auto early = lines_of(before_out.str());
    const auto late = lines_of(after_out.str());
    const auto main = lines_of(log.out.str());
    BOOST_REQUIRE_EQUAL(early.size(), 1u);
    BOOST_REQUIRE_EQUAL(late.size(), 1u);
    BOOST_REQUIRE_EQUAL(main.size(), 1u);
    const auto e = nlohmann::json::parse(early[0]);
    BOOST_CHECK_EQUAL(e.at("logger").get<std::string>(), "before-setup");
    BOOST_CHECK_EQUAL(e.at("msg").get<std::string>(), "from the early \"logger\"");
    BOOST_CHECK_EQUAL(e.at("node").get<std::string>(), "node-7");
    const auto l = nlohmann::json::parse(late[0]);
    BOOST_CHECK_EQUAL(l.at("logger").get<std::string>(), "after-setup");
    BOOST_CHECK_EQUAL(l.at("level").get<std::string>(), "error");
    BOOST_CHECK_EQUAL(l.at("msg").get<std::string>(), "3 items");
    BOOST_CHECK_EQUAL(nlohmann::json::parse(main[0]).at("msg").get<std::string>(),
                      "default logger");
  }
  spdlog::drop("before-setup");
  spdlog::drop("after-setup");
}

BOOST_AUTO_TEST_CASE(level_off_logs_nothing) {
  captured_log log({sc::log_level::off, sc::log_format::json});
  sc::log(sc::log_level::critical, "nothing");
  sc::log_with_correlation(sc::log_level::error, "x", "nothing either");
  BOOST_CHECK(log.out.str().empty());
}

BOOST_AUTO_TEST_CASE(append_json_string_escapes_what_json_requires) {
  std::string out;
  sc::append_json_string(out, "a\"b\\c\nd\x1f");
  BOOST_CHECK_EQUAL(out, "\"a\\\"b\\\\c\\nd\\u001f\"");
  BOOST_CHECK_EQUAL(nlohmann::json::parse(out).get<std::string>(), std::string("a\"b\\c\nd\x1f"));
}

BOOST_AUTO_TEST_SUITE_END()

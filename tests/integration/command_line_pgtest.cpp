// saga-node's start-up failures as a process sees them: bad arguments end with exit status 2
// and a one-line error naming the problem, an unusable database with exit status 1 and a clear
// message; neither crashes nor hangs.
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/integration/support.hpp"

namespace si = saga::integration;
using namespace std::chrono_literals;

namespace {

/// Waits (bounded) for `node` to end and returns how it ended.
si::exit_status run_to_end(si::node_process& node) {
  const auto exit = node.wait_exit(30s);
  BOOST_REQUIRE_MESSAGE(exit.has_value(), "saga-node did not end within 30 s");
  return *exit;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

/// A prefix for log files of tests that need no database.
std::string no_db_prefix() {
  const auto test = boost::unit_test::framework::current_test_case().p_name.get();
  return std::string(SAGA_IT_LOG_DIR) + "/" + test + "-";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(command_line)

BOOST_AUTO_TEST_CASE(bad_arguments_exit_2_with_a_one_line_error) {
  struct bad_case {
    std::vector<std::string> args;
    std::string names;  ///< the error line must mention this
  };
  // A URL is given so that only the argument under test is wrong (port 1: nothing listens).
  const std::vector<bad_case> cases = {
      {{"--load", "abc"}, "--load"},
      {{"--load", "-3"}, "--load"},
      {{"--load-concurrency", "0"}, "--load-concurrency"},
      {{"--load-concurrency", "5000"}, "--load-concurrency"},
      {{"--payment-failure-rate", "1.5"}, "--payment-failure-rate"},
      {{"--payment-latency-ms", "70000"}, "--payment-latency-ms"},
      {{"--payment-decline-above", "-5"}, "--payment-decline-above"},
      {{"--no-such-flag"}, "--no-such-flag"},
      {{"stray-positional"}, "stray-positional"},
      {{"--load"}, "--load"},
  };
  int n = 0;
  for (const auto& c : cases) {
    std::vector<std::string> args{"--database-url", "postgresql://postgres@127.0.0.1:1/none"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    si::node_process node("bad-args-" + std::to_string(n++), args, no_db_prefix());
    const auto exit = run_to_end(node);
    const auto err = node.err();
    BOOST_TEST_CONTEXT("saga-node " << c.args.front() << (c.args.size() > 1 ? " " : "")
                                    << (c.args.size() > 1 ? c.args[1] : "") << ", stderr:\n"
                                    << err) {
      BOOST_CHECK_MESSAGE(exit.exited && exit.code == 2, exit.describe());
      const auto lines = lines_of(err);
      BOOST_REQUIRE(!lines.empty());
      BOOST_CHECK(lines[0].find(c.names) != std::string::npos);
      // The error is one line; CLI11 may add its "Run with --help" hint on a second one.
      BOOST_CHECK_LE(lines.size(), 2u);
      if (lines.size() == 2) BOOST_CHECK(lines[1].find("--help") != std::string::npos);
      BOOST_CHECK(node.out().find("saga-node: ready") == std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(no_database_configured_exits_2) {
  si::node_process node("no-database", {}, no_db_prefix());  // DATABASE_URL is not passed on
  const auto exit = run_to_end(node);
  BOOST_CHECK_MESSAGE(exit.exited && exit.code == 2, exit.describe());
  const auto lines = lines_of(node.err());
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  BOOST_CHECK_EQUAL(lines[0], "saga-node: no database: set DATABASE_URL or --database-url");
}

BOOST_AUTO_TEST_CASE(help_exits_0) {
  si::node_process node("help", {"--help"}, no_db_prefix());
  const auto exit = run_to_end(node);
  BOOST_CHECK_MESSAGE(exit.exited && exit.code == 0, exit.describe());
  BOOST_CHECK(node.out().find("--payment-decline-above") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unreachable_database_exits_1_with_a_clear_message) {
  struct db_case {
    std::string url;
    std::string mentions;  ///< the message must carry this detail of the cause
  };
  const char* server = std::getenv("DATABASE_URL");
  BOOST_REQUIRE_MESSAGE(server != nullptr && *server != '\0', "DATABASE_URL is not set");
  const std::vector<db_case> cases = {
      {"postgresql://postgres@127.0.0.1:1/none", "Connection refused"},
      {si::with_database(server, "saga_it_no_such_database"), "does not exist"},
      {"not a url", "connection info"},
  };
  int n = 0;
  for (const auto& c : cases) {
    si::node_process node("unreachable-" + std::to_string(n++), {"--database-url", c.url},
                          no_db_prefix());
    const auto exit = run_to_end(node);
    const auto err = node.err();
    BOOST_TEST_CONTEXT("saga-node --database-url '" << c.url << "', stderr:\n" << err) {
      BOOST_CHECK_MESSAGE(exit.exited && exit.code == 1, exit.describe());
      BOOST_CHECK(err.rfind("saga-node: migrations failed: ", 0) == 0);
      BOOST_CHECK(err.find(c.mentions) != std::string::npos);
      BOOST_CHECK(node.out().find("saga-node: ready") == std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

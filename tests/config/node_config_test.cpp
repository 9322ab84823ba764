// saga-node's configuration: defaults < TOML file < environment < flags, every validation error
// a single line naming the key with exit status 2, unknown keys refused, --help complete, the
// example JWT secret refused outside dev mode, and the shipped example file equal to the defaults.
#include <unistd.h>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "actors/options.hpp"
#include "actors/read_side.hpp"
#include "actors/runtime.hpp"
#include "config/node_config.hpp"
#include "persistence/group_commit_writer.hpp"
#include "persistence/payment_gateway.hpp"

namespace sc = saga::config;

namespace {

using env_vars = std::map<std::string, std::string>;

const std::string test_url = "postgresql://postgres@127.0.0.1:5432/test";
const std::string test_secret = "a-test-secret-of-enough-bytes";

/// DATABASE_URL and a usable secret, so only the value under test can be wrong.
env_vars base_env() { return {{"DATABASE_URL", test_url}, {"SAGA_JWT_SECRET", test_secret}}; }

sc::load_result run(std::vector<std::string> args, const env_vars& env = base_env()) {
  args.insert(args.begin(), "saga-node");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  return sc::load(static_cast<int>(args.size()), argv.data(),
                  [env](const std::string& name) -> std::optional<std::string> {
                    const auto it = env.find(name);
                    if (it == env.end()) return std::nullopt;
                    return it->second;
                  });
}

sc::node_config run_ok(std::vector<std::string> args, const env_vars& env = base_env()) {
  auto r = run(std::move(args), env);
  BOOST_REQUIRE_MESSAGE(r.config.has_value(), "load failed: " << r.message);
  return *r.config;
}

/// A TOML file that is removed again at scope end.
class temp_file {
 public:
  explicit temp_file(const std::string& text) {
    char name[] = "/tmp/saga-config-test-XXXXXX";
    const int fd = mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~temp_file() { std::remove(path_.c_str()); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Key names ("http.port") in to_toml's order.
std::vector<std::string> all_keys() {
  std::vector<std::string> keys;
  std::istringstream in(sc::to_toml(sc::node_config{}));
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.front() == '[') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto key = line.substr(0, line.find(" = "));
    keys.push_back(section.empty() ? key : section + "." + key);
  }
  return keys;
}

std::string upper_env(const std::string& key) {
  std::string env = "SAGA_";
  for (char ch : key) env += ch == '.' ? '_' : static_cast<char>(std::toupper(ch));
  return env;
}

std::string dashed_flag(const std::string& key) {
  std::string flag = "--";
  for (char ch : key) flag += (ch == '.' || ch == '_') ? '-' : ch;
  return flag;
}

void check_one_line_error(const sc::load_result& r, const std::string& prefix) {
  BOOST_CHECK(!r.config.has_value());
  BOOST_CHECK_EQUAL(r.exit_status, 2);
  BOOST_CHECK_MESSAGE(r.message.rfind(prefix, 0) == 0,
                      "message '" << r.message << "' should start with '" << prefix << "'");
  BOOST_CHECK_MESSAGE(r.message.find('\n') == std::string::npos,
                      "message is not one line: " << r.message);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_config)

BOOST_AUTO_TEST_CASE(without_file_env_or_flags_every_value_is_the_default) {
  const auto c = run_ok({}, {{"DATABASE_URL", test_url}, {"SAGA_DEV", "true"}});
  sc::node_config expected;
  expected.database_url = test_url;
  expected.auth.dev = true;
  BOOST_CHECK_EQUAL(sc::to_toml(c), sc::to_toml(expected));
  BOOST_CHECK_EQUAL(c.http.port, 8080);
  BOOST_CHECK_EQUAL(c.http.max_body_bytes, 1u << 20);
  BOOST_CHECK_EQUAL(c.auth.jwt_issuer, "saga-engine");
  BOOST_CHECK_EQUAL(c.auth.jwt_audience, "saga-api");
  BOOST_CHECK_EQUAL(c.auth.token_ttl_s, 3600);
  BOOST_CHECK_EQUAL(c.payment.decline_above, 10'000'000);
  BOOST_CHECK(c.config_file.empty());
}

BOOST_AUTO_TEST_CASE(defaults_agree_with_the_runtime_options) {
  const sc::node_config c;
  const saga::actors::region_options regions;
  const saga::actors::runtime_options runtime;
  const saga::persistence::writer_options writer;
  const saga::persistence::gateway_options gateway;
  BOOST_CHECK_EQUAL(c.actors.passivate_after_ms, regions.passivate_after.count());
  BOOST_CHECK_EQUAL(c.actors.passivation_check_ms, regions.passivation_check.count());
  BOOST_CHECK_EQUAL(c.actors.snapshot_every, regions.snapshot_every);
  BOOST_CHECK_EQUAL(c.actors.command_timeout_ms, regions.command_timeout.count());
  BOOST_CHECK_EQUAL(c.actors.journal_timeout_ms, regions.journal_timeout.count());
  BOOST_CHECK_EQUAL(c.actors.gateway_timeout_ms, regions.gateway_timeout.count());
  BOOST_CHECK_EQUAL(c.actors.recovery_timeout_ms, regions.recovery_timeout.count());
  BOOST_CHECK_EQUAL(c.actors.restart_backoff_ms, regions.restart_backoff.count());
  BOOST_CHECK_EQUAL(c.actors.max_restart_backoff_ms, regions.max_restart_backoff.count());
  BOOST_CHECK_EQUAL(c.actors.max_restarts, regions.max_restarts);
  BOOST_CHECK_EQUAL(c.actors.max_command_attempts, regions.max_command_attempts);
  BOOST_CHECK_EQUAL(c.actors.max_buffered, regions.max_buffered);
  BOOST_CHECK_EQUAL(c.actors.max_in_flight, regions.max_in_flight);
  BOOST_CHECK_EQUAL(c.actors.ask_timeout_ms, runtime.ask_timeout.count());
  BOOST_CHECK_EQUAL(c.actors.scheduler_threads, runtime.scheduler_threads);
  BOOST_CHECK(runtime.scheduler == saga::actors::scheduler_policy::sharing);
  BOOST_CHECK(c.actors.scheduler == sc::scheduler_kind::sharing);
  BOOST_CHECK_EQUAL(c.journal.readers, runtime.readers);
  BOOST_CHECK_EQUAL(c.journal.writer_lanes, writer.lanes);
  BOOST_CHECK_EQUAL(c.projection_batch_interval_ms,
                    saga::actors::read_side_options{}.batch_interval.count());
  BOOST_CHECK_EQUAL(c.journal.linger_us, writer.linger.count());
  BOOST_CHECK_EQUAL(c.journal.max_batch_events, writer.max_batch_events);
  BOOST_CHECK_EQUAL(c.journal.max_batch_requests, writer.max_batch_requests);
  BOOST_CHECK_EQUAL(c.payment.decline_above, gateway.decline_above);
  BOOST_CHECK_EQUAL(c.payment.failure_rate, gateway.failure_rate);
  BOOST_CHECK_EQUAL(c.payment.latency_ms, gateway.latency_ms);
}

BOOST_AUTO_TEST_CASE(flags_beat_environment_beats_file_beats_default) {
  struct layered {
    std::string section, key;      // TOML
    std::string file_value;        // TOML literal
    std::string env, env_value;    // environment
    std::string flag, flag_value;  // command line
    std::function<std::string(const sc::node_config&)> read;
    std::string default_value, file_result;
  };
  const std::vector<layered> cases = {
      {"http", "port", "9001", "SAGA_HTTP_PORT", "9002", "--http-port", "9003",
       [](const sc::node_config& c) { return std::to_string(c.http.port); }, "8080", "9001"},
      {"payment", "failure_rate", "0.25", "SAGA_PAYMENT_FAILURE_RATE", "0.5",
       "--payment-failure-rate", "0.75",
       [](const sc::node_config& c) { return std::to_string(c.payment.failure_rate); },
       std::to_string(0.0), std::to_string(0.25)},
      {"", "node_id", "\"from-file\"", "SAGA_NODE_ID", "from-env", "--node-id", "from-flag",
       [](const sc::node_config& c) { return c.node_id; }, "node-1", "from-file"},
      {"log", "level", "\"warn\"", "SAGA_LOG_LEVEL", "error", "--log-level", "debug",
       [](const sc::node_config& c) { return std::string(sc::to_string(c.log.level)); }, "info",
       "warn"},
      {"journal", "linger_us", "100", "SAGA_JOURNAL_LINGER_US", "200", "--journal-linger-us", "300",
       [](const sc::node_config& c) { return std::to_string(c.journal.linger_us); }, "0", "100"},
      {"auth", "jwt_issuer", "\"file-iss\"", "SAGA_AUTH_JWT_ISSUER", "env-iss", "--jwt-issuer",
       "flag-iss", [](const sc::node_config& c) { return c.auth.jwt_issuer; }, "saga-engine",
       "file-iss"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.section << "." << c.key) {
      const std::string toml =
          (c.section.empty() ? "" : "[" + c.section + "]\n") + c.key + " = " + c.file_value + "\n";
      temp_file file(toml);
      auto env = base_env();
      BOOST_CHECK_EQUAL(c.read(run_ok({})), c.default_value);
      BOOST_CHECK_EQUAL(c.read(run_ok({"--config", file.path()})), c.file_result);
      env[c.env] = c.env_value;
      BOOST_CHECK_EQUAL(c.read(run_ok({"--config", file.path()}, env)),
                        c.read(run_ok({}, env)));  // the file does not matter any more
      const auto from_env = c.read(run_ok({"--config", file.path()}, env));
      BOOST_CHECK_NE(from_env, c.file_result);
      BOOST_CHECK_NE(from_env, c.default_value);
      const auto from_flag = c.read(run_ok({"--config", file.path(), c.flag, c.flag_value}, env));
      BOOST_CHECK_NE(from_flag, from_env);
      BOOST_CHECK_EQUAL(from_flag, c.read(run_ok({c.flag, c.flag_value})));
    }
  }
}

BOOST_AUTO_TEST_CASE(the_file_comes_from_saga_config_unless_a_flag_names_one) {
  temp_file env_file("[http]\nport = 7001\n");
  temp_file flag_file("[http]\nport = 7002\n");
  auto env = base_env();
  env["SAGA_CONFIG"] = env_file.path();
  const auto from_env = run_ok({}, env);
  BOOST_CHECK_EQUAL(from_env.http.port, 7001);
  BOOST_CHECK_EQUAL(from_env.config_file, env_file.path());
  BOOST_CHECK_EQUAL(run_ok({"--config", flag_file.path()}, env).http.port, 7002);
}

BOOST_AUTO_TEST_CASE(aliases_and_systematic_environment_names) {
  auto env = env_vars{{"DATABASE_URL", "postgresql://a"}, {"SAGA_JWT_SECRET", test_secret}};
  BOOST_CHECK_EQUAL(run_ok({}, env).database_url, "postgresql://a");
  env["SAGA_DATABASE_URL"] = "postgresql://b";  // the systematic name wins over the alias
  BOOST_CHECK_EQUAL(run_ok({}, env).database_url, "postgresql://b");
  env["SAGA_AUTH_JWT_SECRET"] = "another-secret-long-enough";
  BOOST_CHECK_EQUAL(run_ok({}, env).auth.jwt_secret, "another-secret-long-enough");
  env["SAGA_ADMIN_EMAIL"] = "admin@example.com";
  env["SAGA_ADMIN_PASSWORD"] = "admin-password";
  const auto c = run_ok({}, env);
  BOOST_CHECK_EQUAL(c.auth.admin_email, "admin@example.com");
  BOOST_CHECK_EQUAL(c.auth.admin_password, "admin-password");
  env["SAGA_PAYMENT_DECLINE_ABOVE"] = "42";
  env["SAGA_ACTORS_SNAPSHOT_EVERY"] = "7";
  env["SAGA_RATE_LIMIT_ORDERS_BURST"] = "3.5";
  env["SAGA_ACTORS_SCHEDULER"] = "stealing";
  env["SAGA_LOAD"] = "12";
  env["SAGA_HTTP_HOST"] = "";  // empty counts as unset
  const auto d = run_ok({}, env);
  BOOST_CHECK_EQUAL(d.payment.decline_above, 42);
  BOOST_CHECK_EQUAL(d.actors.snapshot_every, 7);
  BOOST_CHECK_EQUAL(d.rate_limit.orders_burst, 3.5);
  BOOST_CHECK(d.actors.scheduler == sc::scheduler_kind::stealing);
  BOOST_CHECK_EQUAL(d.load, 12u);
  BOOST_CHECK_EQUAL(d.http.host, "0.0.0.0");
}

BOOST_AUTO_TEST_CASE(boolean_keys_from_each_layer) {
  BOOST_CHECK(run_ok({}).projections);
  BOOST_CHECK(!run_ok({"--no-projections"}).projections);
  auto env = base_env();
  env["SAGA_PROJECTIONS"] = "off";
  BOOST_CHECK(!run_ok({}, env).projections);
  temp_file file("projections = false\ndemo_catalog = true\n");
  const auto c = run_ok({"--config", file.path()});
  BOOST_CHECK(!c.projections);
  BOOST_CHECK(c.demo_catalog);
  env = base_env();
  env["SAGA_DEMO_CATALOG"] = "YES";
  BOOST_CHECK(run_ok({}, env).demo_catalog);
  BOOST_CHECK(run_ok({"--demo-catalog"}).demo_catalog);
  BOOST_CHECK(!run_ok({}).demo_catalog);
}

BOOST_AUTO_TEST_CASE(the_env_error_of_the_brief_reads_exactly) {
  auto env = base_env();
  env["SAGA_HTTP_PORT"] = "70000";
  const auto r = run({}, env);
  check_one_line_error(r, "saga-node: http.port:");
  BOOST_CHECK_EQUAL(r.message,
                    "saga-node: http.port: must be an integer in 0..65535 (got \"70000\" from "
                    "SAGA_HTTP_PORT)");
}

BOOST_AUTO_TEST_CASE(every_invalid_value_names_its_key_and_exits_2) {
  struct bad {
    std::vector<std::string> args;
    env_vars extra_env;
    std::string file;  ///< TOML text, when not empty
    std::string key;
    std::string mentions;
  };
  const std::vector<bad> cases = {
      {{"--http-port", "-1"}, {}, "", "http.port", "from --http-port"},
      {{"--http-port", "80x"}, {}, "", "http.port", "\"80x\""},
      {{}, {}, "[http]\nport = \"80\"\n", "http.port", "must be an integer"},
      {{}, {}, "[http]\nport = 8080.5\n", "http.port", "got 8080.5 at "},
      {{"--http-max-body-bytes", "0"}, {}, "", "http.max_body_bytes", "1..1073741824"},
      {{"--http-threads", "-1"}, {}, "", "http.threads", "from --http-threads"},
      {{"--http-threads", "257"}, {}, "", "http.threads", "0..256"},
      {{"--http-request-timeout-ms", "0"}, {}, "", "http.request_timeout_ms", "0"},
      {{"--http-host", ""}, {}, "", "http.host", "must not be empty"},
      {{"--payment-failure-rate", "1.5"}, {}, "", "payment.failure_rate", "--payment-failure-rate"},
      {{}, {{"SAGA_PAYMENT_FAILURE_RATE", "nan"}}, "", "payment.failure_rate", "nan"},
      {{}, {}, "[payment]\nfailure_rate = -0.1\n", "payment.failure_rate", ":2)"},
      {{"--payment-decline-above", "-5"}, {}, "", "payment.decline_above", "-5"},
      {{"--payment-latency-ms", "70000"}, {}, "", "payment.latency_ms", "0..60000"},
      {{"--load", "abc"}, {}, "", "load", "--load"},
      {{"--load", "-3"}, {}, "", "load", "--load"},
      {{"--load-concurrency", "0"}, {}, "", "load_concurrency", "--load-concurrency"},
      {{"--load-concurrency", "5000"}, {}, "", "load_concurrency", "1..4096"},
      {{"--log-format", "xml"}, {}, "", "log.format", "must be one of text or json"},
      {{}, {{"SAGA_LOG_LEVEL", "loud"}}, "", "log.level", "SAGA_LOG_LEVEL"},
      {{}, {{"SAGA_DEMO_CATALOG", "maybe"}}, "", "demo_catalog", "must be true or false"},
      {{}, {}, "projections = 1\n", "projections", "must be true or false"},
      {{"--node-id", "bad id"}, {}, "", "node_id", "\"bad id\""},
      {{"--node-id", std::string(49, 'n')}, {}, "", "node_id", "1..48"},
      {{"--admin-email", "nope"}, {}, "", "auth.admin_email", "email"},
      {{"--admin-email", "a@b.c", "--admin-password", "short"},
       {},
       "",
       "auth.admin_password",
       "8..1024"},
      {{"--admin-email", "a@b.c"}, {}, "", "auth.admin_password", "together"},
      {{}, {{"SAGA_ADMIN_PASSWORD", "long-enough-password"}}, "", "auth.admin_email", "together"},
      {{"--token-ttl-s", "0"}, {}, "", "auth.token_ttl_s", "--token-ttl-s"},
      {{"--jwt-issuer", "a\tb"}, {}, "", "auth.jwt_issuer", "control"},
      {{"--rate-limit-orders-per-second", "0"}, {}, "", "rate_limit.orders_per_second", "> 0"},
      {{},
       {{"SAGA_RATE_LIMIT_LOGIN_PER_MINUTE", "1e999"}},
       "",
       "rate_limit.login_per_minute",
       "SAGA_RATE_LIMIT_LOGIN_PER_MINUTE"},
      {{"--rate-limit-orders-burst", "0.5"}, {}, "", "rate_limit.orders_burst", ">= 1"},
      {{"--actors-scheduler", "fifo"}, {}, "", "actors.scheduler", "sharing or stealing"},
      {{"--actors-max-restarts", "0"}, {}, "", "actors.max_restarts", "1..1000"},
      {{"--actors-restart-backoff-ms", "500", "--actors-max-restart-backoff-ms", "100"},
       {},
       "",
       "actors.max_restart_backoff_ms",
       "100 < 500"},
      {{"--journal-readers", "0"}, {}, "", "journal.readers", "1..64"},
      {{"--journal-writer-lanes", "65"}, {}, "", "journal.writer_lanes", "1..64"},
      {{"--journal-max-batch-events", "0"}, {}, "", "journal.max_batch_events", "1..1000000"},
      {{}, {}, "[journal]\nlinger_us = [1, 2]\n", "journal.linger_us", "another type"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.key << " " << (c.args.empty() ? std::string() : c.args.back())) {
      auto env = base_env();
      for (const auto& [name, value] : c.extra_env) env[name] = value;
      auto args = c.args;
      std::unique_ptr<temp_file> file;
      if (!c.file.empty()) {
        file = std::make_unique<temp_file>(c.file);
        args.insert(args.begin(), {"--config", file->path()});
      }
      const auto r = run(args, env);
      check_one_line_error(r, "saga-node: " + c.key + ":");
      BOOST_CHECK_MESSAGE(r.message.find(c.mentions) != std::string::npos,
                          "'" << r.message << "' should mention '" << c.mentions << "'");
      if (file) BOOST_CHECK(r.message.find(file->path()) != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(secrets_are_never_echoed) {
  const auto r = run({"--jwt-secret", "tiny-secret"});
  check_one_line_error(r, "saga-node: auth.jwt_secret: must be at least 16 bytes");
  BOOST_CHECK(r.message.find("tiny-secret") == std::string::npos);
  BOOST_CHECK(r.message.find("--jwt-secret") != std::string::npos);
  const auto p = run({"--admin-email", "a@b.c", "--admin-password", "short"});
  BOOST_CHECK(p.message.find("short\"") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_keys_and_sections_are_errors_naming_them) {
  struct bad {
    std::string toml;
    std::string message;  ///< prefix; the file path follows
  };
  const std::vector<bad> cases = {
      {"[http]\nport = 8080\nprot = 1\n", "saga-node: http.prot: unknown key (at "},
      {"[htp]\nport = 1\n", "saga-node: htp: unknown section (at "},
      {"databse_url = \"x\"\n", "saga-node: databse_url: unknown key (at "},
      {"http = 1\n", "saga-node: http: must be a table [http] (at "},
      {"[http.port]\nx = 1\n", "saga-node: http.port: must be an integer in 0..65535 (got a "},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.toml) {
      temp_file file(c.toml);
      const auto r = run({"--config", file.path()});
      check_one_line_error(r, c.message);
      BOOST_CHECK(r.message.find(file.path()) != std::string::npos);
    }
  }
  temp_file unknown("[http]\n\nprot = 1\n");
  BOOST_CHECK_EQUAL(run({"--config", unknown.path()}).message,
                    "saga-node: http.prot: unknown key (at " + unknown.path() + ":3)");
}

BOOST_AUTO_TEST_CASE(unreadable_or_malformed_files_exit_2) {
  const auto missing = run({"--config", "/nonexistent/saga.toml"});
  check_one_line_error(missing, "saga-node: --config: cannot read \"/nonexistent/saga.toml\"");
  BOOST_CHECK(missing.message.find("No such file") != std::string::npos);
  temp_file broken("[http\nport = 1\n");
  const auto r = run({"--config", broken.path()});
  check_one_line_error(r, "saga-node: " + broken.path() + ":1:");
  temp_file twice("[http]\nport = 1\nport = 2\n");
  check_one_line_error(run({"--config", twice.path()}), "saga-node: " + twice.path() + ":3:");
}

BOOST_AUTO_TEST_CASE(command_line_syntax_errors_exit_2) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--no-such-flag"}, {"stray-positional"}, {"--load"}}) {
    const auto r = run(args);
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_CHECK(!r.config);
      BOOST_CHECK_EQUAL(r.exit_status, 2);
      BOOST_CHECK(r.message.rfind("saga-node: ", 0) == 0);
      const auto first_line = r.message.substr(0, r.message.find('\n'));
      BOOST_CHECK(first_line.find(args.front()) != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(help_lists_every_flag_environment_name_and_key) {
  const auto r = run({"--help"}, {});
  BOOST_CHECK(!r.config);
  BOOST_CHECK_EQUAL(r.exit_status, 0);
  const auto& help = r.message;
  for (const std::string extra :
       {"--config", "$SAGA_CONFIG", "--dev", "--jwt-secret", "$DATABASE_URL", "--database-url",
        "--no-projections", "--payment-decline-above", "--log-format", "$SAGA_JWT_SECRET",
        "$SAGA_ADMIN_EMAIL", "$SAGA_ADMIN_PASSWORD", "--admin-email"}) {
    BOOST_CHECK_MESSAGE(help.find(extra) != std::string::npos, "--help lacks " << extra);
  }
  const auto keys = all_keys();
  BOOST_CHECK_GE(keys.size(), 45u);
  for (const auto& key : keys) {
    BOOST_TEST_CONTEXT(key) {
      BOOST_CHECK(help.find("[" + key + ";") != std::string::npos);
      BOOST_CHECK(help.find("$" + upper_env(key)) != std::string::npos);
      // The auth flags are short (--jwt-secret); projections is turned off by --no-projections.
      if (key.rfind("auth.", 0) != 0 && key != "projections") {
        BOOST_CHECK(help.find(dashed_flag(key) + " ") != std::string::npos);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(the_example_secret_is_refused_unless_dev) {
  const env_vars no_secret{{"DATABASE_URL", test_url}};
  const auto r = run({}, no_secret);
  check_one_line_error(r, "saga-node: auth.jwt_secret: the example secret is refused");
  BOOST_CHECK(r.message.find("--dev") != std::string::npos);
  BOOST_CHECK(r.message.find("SAGA_JWT_SECRET") != std::string::npos);
  auto given = no_secret;
  given["SAGA_JWT_SECRET"] = std::string(sc::example_jwt_secret);
  check_one_line_error(run({}, given), "saga-node: auth.jwt_secret: the example secret");
  check_one_line_error(run({"--jwt-secret", std::string(sc::example_jwt_secret)}, no_secret),
                       "saga-node: auth.jwt_secret: the example secret");

  const auto dev = run_ok({"--dev"}, no_secret);
  BOOST_CHECK_EQUAL(dev.auth.jwt_secret, sc::example_jwt_secret);
  BOOST_CHECK(dev.auth.dev);
  auto dev_env = no_secret;
  dev_env["SAGA_DEV"] = "1";
  BOOST_CHECK(run_ok({}, dev_env).auth.dev);
  // Without an HTTP server no token is issued or checked.
  BOOST_CHECK_EQUAL(run_ok({"--http-port", "0"}, no_secret).auth.jwt_secret,
                    sc::example_jwt_secret);
}

BOOST_AUTO_TEST_CASE(an_empty_secret_is_refused_unless_dev_which_uses_the_example) {
  temp_file empty("[auth]\njwt_secret = \"\"\n");
  const env_vars no_secret{{"DATABASE_URL", test_url}};
  check_one_line_error(run({"--config", empty.path()}, no_secret),
                       "saga-node: auth.jwt_secret: must not be empty");
  const auto dev = run_ok({"--config", empty.path(), "--dev"}, no_secret);
  BOOST_CHECK_EQUAL(dev.auth.jwt_secret, sc::example_jwt_secret);
  // A real secret is kept in dev mode too.
  BOOST_CHECK_EQUAL(run_ok({"--dev"}).auth.jwt_secret, test_secret);
}

BOOST_AUTO_TEST_CASE(no_database_url_is_the_known_one_line_error) {
  const auto r = run({"--dev"}, {});
  BOOST_CHECK_EQUAL(r.exit_status, 2);
  BOOST_CHECK_EQUAL(r.message, "saga-node: no database: set DATABASE_URL or --database-url");
  BOOST_CHECK_EQUAL(
      run_ok({"--database-url", "postgresql://flag"}, {{"SAGA_DEV", "true"}}).database_url,
      "postgresql://flag");
}

BOOST_AUTO_TEST_CASE(the_shipped_file_parses_and_equals_the_defaults) {
  const std::string path = std::string(SAGA_SOURCE_DIR) + "/config/saga-node.toml";
  const auto c = run_ok({"--config", path, "--dev"}, {{"DATABASE_URL", test_url}});
  sc::node_config expected;
  expected.database_url = test_url;
  expected.auth.dev = true;
  BOOST_CHECK_EQUAL(sc::to_toml(c), sc::to_toml(expected));
  BOOST_CHECK_EQUAL(c.config_file, path);
  BOOST_CHECK_EQUAL(c.auth.jwt_secret, sc::example_jwt_secret);

  // Every key is written out, each preceded by a comment or by a key of the same comment group.
  std::ifstream in(path);
  BOOST_REQUIRE(in);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  for (const auto& key : all_keys()) {
    const auto bare = key.substr(key.find('.') == std::string::npos ? 0 : key.find('.') + 1);
    BOOST_TEST_CONTEXT(key) {
      bool found = false;
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].rfind(bare + " = ", 0) != 0) continue;
        found = true;
        std::size_t j = i;
        while (j > 0 && !lines[j - 1].empty() && lines[j - 1][0] != '#' && lines[j - 1][0] != '[') {
          --j;
        }
        BOOST_CHECK_MESSAGE(j > 0 && lines[j - 1].rfind("# ", 0) == 0, "no comment above");
      }
      BOOST_CHECK(found);
    }
  }
}

BOOST_AUTO_TEST_CASE(to_toml_round_trips_a_configuration_through_a_file) {
  const auto c = run_ok({"--http-host",
                         "127.0.0.1",
                         "--http-port",
                         "0",
                         "--node-id",
                         "n.2",
                         "--payment-failure-rate",
                         "0.1",
                         "--rate-limit-orders-burst",
                         "12.5",
                         "--log-level",
                         "debug",
                         "--log-format",
                         "json",
                         "--actors-scheduler",
                         "stealing",
                         "--no-projections",
                         "--demo-catalog",
                         "--jwt-issuer",
                         "iss \"quoted\" 서울",
                         "--load",
                         "17"});
  temp_file file(sc::to_toml(c));
  const auto back = run_ok({"--config", file.path()}, {});
  BOOST_CHECK_EQUAL(sc::to_toml(back), sc::to_toml(c));
  BOOST_CHECK_EQUAL(back.auth.jwt_issuer, "iss \"quoted\" 서울");
  BOOST_CHECK_EQUAL(back.payment.failure_rate, 0.1);
  BOOST_CHECK(back.log.level == sc::log_level::debug);
}

BOOST_AUTO_TEST_SUITE_END()

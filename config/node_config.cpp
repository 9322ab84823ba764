// One table of keys drives everything: each key knows its TOML name, environment names, flag,
// help text, parser/validator and how to print itself, so the file, the environment, the flags,
// --help and to_toml() cannot drift apart.
#include "config/node_config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

namespace saga::config {

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::trace:
      return "trace";
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
    case log_level::critical:
      return "critical";
    case log_level::off:
      return "off";
  }
  return "info";
}

std::string_view to_string(log_format format) noexcept {
  return format == log_format::json ? "json" : "text";
}

std::string_view to_string(scheduler_kind kind) noexcept {
  return kind == scheduler_kind::stealing ? "stealing" : "sharing";
}

namespace {

/// A TOML string: unlike text from the environment or a flag it is not parsed as a number or
/// boolean (`port = "80"` is a type error).
struct toml_string {
  std::string value;
};

/// A value before validation: text from the environment or a flag, typed from TOML;
/// monostate for TOML types no key takes (arrays, dates, tables).
using raw_value =
    std::variant<std::monostate, std::string, toml_string, std::int64_t, double, bool>;

/// The text of a string value (from any layer).
const std::string* text_of(const raw_value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return s;
  if (const auto* t = std::get_if<toml_string>(&v)) return &t->value;
  return nullptr;
}

/// Returns an error text ("must be …"), or nullopt when the value was stored.
using setter = std::function<std::optional<std::string>(node_config&, const raw_value&)>;

struct key_def {
  std::string name;              ///< "http.port"; no dot: a top-level key
  std::string flag;              ///< "--http-port"
  std::vector<std::string> env;  ///< when several are set the last one wins
  std::string help;
  std::string type_name;  ///< shown by --help
  bool boolean = false;   ///< a flag without value
  bool flag_sets = true;  ///< boolean flags: the value the flag sets (--no-projections: false)
  bool secret = false;    ///< never echoed in messages
  setter set;
  std::function<std::string(const node_config&)> show;  ///< the TOML literal
};

std::string section_of(const std::string& name) {
  const auto dot = name.find('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

std::string systematic_env(const std::string& name) {
  std::string env = "SAGA_";
  for (char ch : name) {
    env += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return env;
}

std::string systematic_flag(const std::string& name) {
  std::string flag = "--";
  for (char ch : name) flag += (ch == '.' || ch == '_') ? '-' : ch;
  return flag;
}

/// A TOML (and JSON-compatible) basic string literal.
std::string literal(std::string_view text) {
  std::string out = "\"";
  for (unsigned char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out + "\"";
}

std::string number_text(double value) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  if (std::strtod(buf, nullptr) != value) std::snprintf(buf, sizeof buf, "%.17g", value);
  std::string text = buf;
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string describe(const raw_value& v) {
  struct visitor {
    std::string operator()(std::monostate) const { return "a value of another type"; }
    std::string operator()(const std::string& s) const { return literal(s); }
    std::string operator()(const toml_string& s) const { return literal(s.value); }
    std::string operator()(std::int64_t n) const { return std::to_string(n); }
    std::string operator()(double d) const { return number_text(d); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
  };
  return std::visit(visitor{}, v);
}

std::optional<std::int64_t> as_integer(const raw_value& v) {
  if (const auto* n = std::get_if<std::int64_t>(&v)) return *n;
  const auto* s = std::get_if<std::string>(&v);
  if (s == nullptr || s->empty()) return std::nullopt;
  std::int64_t n = 0;
  const auto* end = s->data() + s->size();
  const auto [ptr, ec] = std::from_chars(s->data(), end, n);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return n;
}

std::optional<double> as_number(const raw_value& v) {
  if (const auto* d = std::get_if<double>(&v))
    return std::isfinite(*d) ? std::optional(*d) : std::nullopt;
  if (const auto* n = std::get_if<std::int64_t>(&v)) return static_cast<double>(*n);
  const auto* s = std::get_if<std::string>(&v);
  if (s == nullptr || s->empty() || std::isspace(static_cast<unsigned char>(s->front()))) {
    return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const double d = std::strtod(s->c_str(), &end);
  if (errno != 0 || end != s->c_str() + s->size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<bool> as_bool(const raw_value& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  const auto* s = std::get_if<std::string>(&v);
  if (s == nullptr) return std::nullopt;
  std::string lower;
  for (char ch : *s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

/// Accessor: a generic lambda `[](auto& c) -> auto& { return c.x.y; }`, so one works for the
/// const (show) and the mutable (set) side.
template <class Field>
key_def integer_key(std::string name, std::string help, std::int64_t lo, std::int64_t hi,
                    Field field) {
  key_def k;
  k.name = std::move(name);
  k.help = std::move(help);
  k.type_name = "INT";
  const std::string problem =
      "must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
  k.set = [=](node_config& c, const raw_value& v) -> std::optional<std::string> {
    const auto n = as_integer(v);
    if (!n || *n < lo || *n > hi) return problem;
    using target = std::remove_reference_t<decltype(field(c))>;
    field(c) = static_cast<target>(*n);
    return std::nullopt;
  };
  k.show = [=](const node_config& c) { return std::to_string(field(c)); };
  return k;
}

/// A number in [lo, hi], or in (lo, hi] when `lo_open`.
template <class Field>
key_def number_key(std::string name, std::string help, double lo, bool lo_open, double hi,
                   Field field) {
  key_def k;
  k.name = std::move(name);
  k.help = std::move(help);
  k.type_name = "NUM";
  const std::string problem = "must be a number " + std::string(lo_open ? "> " : ">= ") +
                              number_text(lo) + " and <= " + number_text(hi);
  k.set = [=](node_config& c, const raw_value& v) -> std::optional<std::string> {
    const auto d = as_number(v);
    if (!d || *d > hi || *d < lo || (lo_open && *d == lo)) return problem;
    field(c) = *d;
    return std::nullopt;
  };
  k.show = [=](const node_config& c) { return number_text(field(c)); };
  return k;
}

template <class Field>
key_def bool_key(std::string name, std::string help, Field field) {
  key_def k;
  k.name = std::move(name);
  k.help = std::move(help);
  k.type_name = "BOOL";
  k.boolean = true;
  k.set = [=](node_config& c, const raw_value& v) -> std::optional<std::string> {
    const auto b = as_bool(v);
    if (!b) return std::string("must be true or false");
    field(c) = *b;
    return std::nullopt;
  };
  k.show = [=](const node_config& c) { return std::string(field(c) ? "true" : "false"); };
  return k;
}

/// `check` returns a problem text for a bad value.
template <class Field>
key_def text_key(std::string name, std::string help,
                 std::function<std::optional<std::string>(const std::string&)> check, Field field) {
  key_def k;
  k.name = std::move(name);
  k.help = std::move(help);
  k.type_name = "TEXT";
  k.set = [=](node_config& c, const raw_value& v) -> std::optional<std::string> {
    const auto* s = text_of(v);
    if (s == nullptr) return std::string("must be a string");
    if (check) {
      if (auto problem = check(*s)) return problem;
    }
    field(c) = *s;
    return std::nullopt;
  };
  k.show = [=](const node_config& c) { return literal(field(c)); };
  return k;
}

template <class Enum, class Field>
key_def choice_key(std::string name, std::string help, std::vector<Enum> choices, Field field) {
  key_def k;
  k.name = std::move(name);
  k.help = std::move(help);
  std::string names;
  for (auto e : choices) names += (names.empty() ? "" : "|") + std::string(to_string(e));
  k.type_name = names;
  k.set = [=](node_config& c, const raw_value& v) -> std::optional<std::string> {
    if (const auto* s = text_of(v)) {
      for (auto e : choices) {
        if (*s == to_string(e)) {
          field(c) = e;
          return std::nullopt;
        }
      }
    }
    std::string problem = "must be one of ";
    for (std::size_t i = 0; i < choices.size(); ++i) {
      problem += (i == 0 ? "" : (i + 1 == choices.size() ? " or " : ", "));
      problem += to_string(choices[i]);
    }
    return problem;
  };
  k.show = [=](const node_config& c) { return literal(to_string(field(c))); };
  return k;
}

std::optional<std::string> node_id_shape(const std::string& s) {
  const bool ok = !s.empty() && s.size() <= 48 && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
  if (!ok) return std::string("must be 1..48 characters of A-Z a-z 0-9 . _ -");
  return std::nullopt;
}

std::optional<std::string> email_shape(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const auto at = s.find('@');
  const bool ok = s.size() <= 254 && at != std::string::npos && at > 0 && at + 1 < s.size() &&
                  s.find('@', at + 1) == std::string::npos &&
                  std::none_of(s.begin(), s.end(), [](char ch) {
                    return std::isspace(static_cast<unsigned char>(ch)) != 0;
                  });
  if (!ok) return std::string("must be an email address (name@domain) or empty");
  return std::nullopt;
}

std::optional<std::string> password_shape(const std::string& s) {
  if (!s.empty() && (s.size() < 8 || s.size() > 1024)) {
    return std::string("must be 8..1024 bytes or empty");
  }
  return std::nullopt;
}

std::optional<std::string> printable_text(const std::string& s) {
  if (s.empty()) return std::string("must not be empty");
  if (s.size() > 256) return std::string("must be at most 256 bytes");
  for (unsigned char ch : s) {
    if (ch < 0x20 || ch == 0x7f) return std::string("must not contain control characters");
  }
  return std::nullopt;
}

constexpr std::int64_t hour_ms = 3'600'000;

/// Every key, top-level keys first, then the sections in file order.
const std::vector<key_def>& keys() {
  static const std::vector<key_def> table = [] {
    std::vector<key_def> t;
    // Top level.
    t.push_back(text_key(
        "database_url", "PostgreSQL connection URL of the journal", nullptr,
        [](auto& c) -> auto& { return c.database_url; }));
    t.back().env = {"DATABASE_URL", "SAGA_DATABASE_URL"};
    t.back().secret = true;  // may carry a password
    t.push_back(text_key(
        "node_id", "node id written into event metadata", node_id_shape,
        [](auto& c) -> auto& { return c.node_id; }));
    t.push_back(bool_key(
        "projections", "run the read-model projections (the flag: do not)",
        [](auto& c) -> auto& { return c.projections; }));
    t.back().flag = "--no-projections";
    t.back().flag_sets = false;
    t.push_back(integer_key(
        "projection_batch_interval_ms",
        "pause before the next projection batch after one that did not fill up; 0 = none", 0,
        10'000, [](auto& c) -> auto& { return c.projection_batch_interval_ms; }));
    t.push_back(bool_key(
        "demo_catalog", "register the demo products at start-up",
        [](auto& c) -> auto& { return c.demo_catalog; }));
    t.push_back(integer_key(
        "load", "place this many demo orders after start-up", 0, 100'000'000,
        [](auto& c) -> auto& { return c.load; }));
    t.push_back(integer_key(
        "load_concurrency", "orders placed at once by load", 1, 4096,
        [](auto& c) -> auto& { return c.load_concurrency; }));
    // [http]
    t.push_back(text_key(
        "http.host", "address the HTTP server binds", printable_text,
        [](auto& c) -> auto& { return c.http.host; }));
    t.push_back(integer_key(
        "http.port", "HTTP port; 0 = no HTTP server", 0, 65535,
        [](auto& c) -> auto& { return c.http.port; }));
    t.push_back(integer_key(
        "http.max_body_bytes", "larger request bodies are answered 413", 1, std::int64_t{1} << 30,
        [](auto& c) -> auto& { return c.http.max_body_bytes; }));
    t.push_back(integer_key(
        "http.request_timeout_ms", "a request not answered by then gets a 503 problem", 1, hour_ms,
        [](auto& c) -> auto& { return c.http.request_timeout_ms; }));
    t.push_back(integer_key(
        "http.threads", "HTTP server threads; 0 = half the cores, at least one", 0, 256,
        [](auto& c) -> auto& { return c.http.threads; }));
    // [auth]
    t.push_back(text_key(
        "auth.jwt_secret", "HS256 signing secret (at least 16 bytes); prefer the environment",
        nullptr, [](auto& c) -> auto& { return c.auth.jwt_secret; }));
    t.back().env = {"SAGA_JWT_SECRET", "SAGA_AUTH_JWT_SECRET"};
    t.back().flag = "--jwt-secret";
    t.back().secret = true;
    t.push_back(text_key(
        "auth.jwt_issuer", "`iss` of issued tokens, checked on every request", printable_text,
        [](auto& c) -> auto& { return c.auth.jwt_issuer; }));
    t.back().flag = "--jwt-issuer";
    t.push_back(text_key(
        "auth.jwt_audience", "`aud` of issued tokens, checked on every request", printable_text,
        [](auto& c) -> auto& { return c.auth.jwt_audience; }));
    t.back().flag = "--jwt-audience";
    t.push_back(integer_key(
        "auth.token_ttl_s", "lifetime of issued tokens", 1, 30 * 86'400,
        [](auto& c) -> auto& { return c.auth.token_ttl_s; }));
    t.back().flag = "--token-ttl-s";
    t.push_back(text_key(
        "auth.admin_email",
        "bootstrap admin created at start-up (with admin_password); empty: none", email_shape,
        [](auto& c) -> auto& { return c.auth.admin_email; }));
    t.back().env = {"SAGA_ADMIN_EMAIL", "SAGA_AUTH_ADMIN_EMAIL"};
    t.back().flag = "--admin-email";
    t.push_back(text_key(
        "auth.admin_password", "password of the bootstrap admin (8..1024 bytes)", password_shape,
        [](auto& c) -> auto& { return c.auth.admin_password; }));
    t.back().env = {"SAGA_ADMIN_PASSWORD", "SAGA_AUTH_ADMIN_PASSWORD"};
    t.back().flag = "--admin-password";
    t.back().secret = true;
    t.push_back(bool_key(
        "auth.dev", "development mode: allows the example JWT secret",
        [](auto& c) -> auto& { return c.auth.dev; }));
    t.back().env = {"SAGA_DEV", "SAGA_AUTH_DEV"};
    t.back().flag = "--dev";
    // [rate_limit]
    t.push_back(number_key(
        "rate_limit.login_per_minute", "login attempts per minute per email and per client address",
        0, true, 1e6, [](auto& c) -> auto& { return c.rate_limit.login_per_minute; }));
    t.push_back(number_key(
        "rate_limit.orders_per_second",
        "order creations per second per user and per client address", 0, true, 1e6,
        [](auto& c) -> auto& { return c.rate_limit.orders_per_second; }));
    t.push_back(number_key(
        "rate_limit.orders_burst", "order creations allowed in a burst", 1, false, 1e6,
        [](auto& c) -> auto& { return c.rate_limit.orders_burst; }));
    // [payment]
    t.push_back(integer_key(
        "payment.decline_above", "simulated gateway declines charges above this (minor units)", 0,
        1'000'000'000'000'000'000, [](auto& c) -> auto& { return c.payment.decline_above; }));
    t.push_back(number_key(
        "payment.failure_rate", "simulated gateway transient failure probability", 0, false, 1,
        [](auto& c) -> auto& { return c.payment.failure_rate; }));
    t.push_back(integer_key(
        "payment.latency_ms", "simulated gateway latency per batch", 0, 60'000,
        [](auto& c) -> auto& { return c.payment.latency_ms; }));
    // [actors]
    t.push_back(integer_key(
        "actors.passivate_after_ms", "an idle aggregate actor is stopped after this; 0 = never", 0,
        24 * hour_ms, [](auto& c) -> auto& { return c.actors.passivate_after_ms; }));
    t.push_back(integer_key(
        "actors.passivation_check_ms", "how often regions look for idle actors", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.passivation_check_ms; }));
    t.push_back(integer_key(
        "actors.snapshot_every", "events between snapshots (more for a big state); 0 = none", 0,
        1'000'000'000, [](auto& c) -> auto& { return c.actors.snapshot_every; }));
    t.push_back(integer_key(
        "actors.command_timeout_ms", "region to actor: one command", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.command_timeout_ms; }));
    t.push_back(integer_key(
        "actors.journal_timeout_ms", "actor to journal: one read or append", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.journal_timeout_ms; }));
    t.push_back(integer_key(
        "actors.gateway_timeout_ms", "payment actor to gateway: one charge or refund", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.gateway_timeout_ms; }));
    t.push_back(integer_key(
        "actors.recovery_timeout_ms", "recovery of one actor after a start", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.recovery_timeout_ms; }));
    t.push_back(integer_key(
        "actors.ask_timeout_ms", "default wait of one request to the runtime", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.ask_timeout_ms; }));
    t.push_back(integer_key(
        "actors.restart_backoff_ms", "first restart delay after a crash, doubled per crash", 1,
        hour_ms, [](auto& c) -> auto& { return c.actors.restart_backoff_ms; }));
    t.push_back(integer_key(
        "actors.max_restart_backoff_ms", "cap of the restart delay", 1, hour_ms,
        [](auto& c) -> auto& { return c.actors.max_restart_backoff_ms; }));
    t.push_back(integer_key(
        "actors.max_restarts", "consecutive crashes before a region gives up on an actor", 1, 1000,
        [](auto& c) -> auto& { return c.actors.max_restarts; }));
    t.push_back(integer_key(
        "actors.max_command_attempts",
        "crashes one command may cause before it is dropped as poison", 1, 100,
        [](auto& c) -> auto& { return c.actors.max_command_attempts; }));
    t.push_back(integer_key(
        "actors.max_buffered", "messages buffered per actor before answering overloaded", 1,
        10'000'000, [](auto& c) -> auto& { return c.actors.max_buffered; }));
    t.push_back(integer_key(
        "actors.max_in_flight",
        "commands sent to one actor at a time (those behind an append are decided together and "
        "appended behind it)",
        1, 1024, [](auto& c) -> auto& { return c.actors.max_in_flight; }));
    t.push_back(integer_key(
        "actors.scheduler_threads", "CAF scheduler threads; 0 = one per core", 0, 1024,
        [](auto& c) -> auto& { return c.actors.scheduler_threads; }));
    t.push_back(choice_key(
        "actors.scheduler", "sharing (idle threads sleep) or stealing (idle threads poll)",
        std::vector<scheduler_kind>{scheduler_kind::sharing, scheduler_kind::stealing},
        [](auto& c) -> auto& { return c.actors.scheduler; }));
    // [journal]
    t.push_back(integer_key(
        "journal.linger_us", "extra wait for more appends before writing a batch; 0 = none", 0,
        1'000'000, [](auto& c) -> auto& { return c.journal.linger_us; }));
    t.push_back(integer_key(
        "journal.max_batch_events", "events per group commit", 1, 1'000'000,
        [](auto& c) -> auto& { return c.journal.max_batch_events; }));
    t.push_back(integer_key(
        "journal.max_batch_requests", "append requests per group commit", 1, 1'000'000,
        [](auto& c) -> auto& { return c.journal.max_batch_requests; }));
    t.push_back(integer_key(
        "journal.writer_lanes",
        "group-commit writers (one connection each) the streams are spread over", 1, 64,
        [](auto& c) -> auto& { return c.journal.writer_lanes; }));
    t.push_back(integer_key(
        "journal.readers", "journal reader actors (one connection each)", 1, 64,
        [](auto& c) -> auto& { return c.journal.readers; }));
    // [log]
    t.push_back(choice_key(
        "log.level", "lowest level logged",
        std::vector<log_level>{log_level::trace, log_level::debug, log_level::info, log_level::warn,
                               log_level::error, log_level::critical, log_level::off},
        [](auto& c) -> auto& { return c.log.level; }));
    t.push_back(choice_key(
        "log.format", "text lines, or one JSON object per line",
        std::vector<log_format>{log_format::text, log_format::json},
        [](auto& c) -> auto& { return c.log.format; }));
    for (auto& k : t) {
      if (k.env.empty()) k.env = {systematic_env(k.name)};
      if (k.flag.empty()) k.flag = systematic_flag(k.name);
    }
    return t;
  }();
  return table;
}

/// A validation failure: "saga-node: <key>: <problem> (got <value> <origin>)".
std::string key_error(const key_def& k, const std::string& problem, const raw_value& v,
                      const std::string& origin) {
  std::string text = "saga-node: " + k.name + ": " + problem + " (";
  if (!k.secret) text += "got " + describe(v) + " ";
  return text + origin + ")";
}

std::string trim_end(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string one_line(std::string text) {
  text = trim_end(std::move(text));
  for (auto& ch : text) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return text;
}

load_result fail(std::string message) { return load_result{std::nullopt, 2, one_line(message)}; }

raw_value from_toml(const toml::node& node) {
  if (const auto* s = node.as_string()) return toml_string{s->get()};
  if (const auto* n = node.as_integer()) return n->get();
  if (const auto* d = node.as_floating_point()) return d->get();
  if (const auto* b = node.as_boolean()) return b->get();
  return std::monostate{};
}

std::string toml_origin(const std::string& path, const toml::node& node) {
  return "at " + path + ":" + std::to_string(node.source().begin.line);
}

/// Applies the file's keys; an error text when a key is unknown or a value is bad.
std::optional<std::string> apply_file(node_config& c, const std::string& path,
                                      std::vector<std::string>& origins) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return "saga-node: --config: cannot read \"" + path + "\": " + std::strerror(errno);
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return "saga-node: " + path + ":" + std::to_string(e.source().begin.line) + ":" +
           std::to_string(e.source().begin.column) + ": " + std::string(e.description());
  }
  const auto& table = keys();
  auto apply = [&](const std::string& name, const toml::node& node) -> std::optional<std::string> {
    const auto it =
        std::find_if(table.begin(), table.end(), [&](const key_def& k) { return k.name == name; });
    if (it == table.end()) {
      return "saga-node: " + name + ": unknown key (" + toml_origin(path, node) + ")";
    }
    const auto v = from_toml(node);
    if (auto problem = it->set(c, v)) return key_error(*it, *problem, v, toml_origin(path, node));
    origins[static_cast<std::size_t>(it - table.begin())] = toml_origin(path, node);
    return std::nullopt;
  };
  auto is_section = [&](const std::string& name) {
    return std::any_of(table.begin(), table.end(),
                       [&](const key_def& k) { return section_of(k.name) == name; });
  };
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (const auto* section = node.as_table()) {
      if (!is_section(name)) {
        return "saga-node: " + name + ": unknown section (" + toml_origin(path, node) + ")";
      }
      for (const auto& [sub_key, sub_node] : *section) {
        if (auto error = apply(name + "." + std::string(sub_key.str()), sub_node)) return error;
      }
    } else if (is_section(name)) {
      return "saga-node: " + name + ": must be a table [" + name + "] (" + toml_origin(path, node) +
             ")";
    } else if (auto error = apply(name, node)) {
      return error;
    }
  }
  return std::nullopt;
}

std::string help_text(const key_def& k) {
  std::string envs;
  for (const auto& e : k.env) envs += (envs.empty() ? "$" : ", $") + e;
  static const node_config defaults;
  std::string text = k.help + " [" + k.name + "; " + envs;
  if (!k.secret || k.name == "auth.jwt_secret") text += "; default " + k.show(defaults);
  return text + "]";
}

/// Cross-key rules, checked once every layer is applied.
std::optional<std::string> check_whole(node_config& c, const std::vector<std::string>& origins) {
  const auto& table = keys();
  auto origin_of = [&](const std::string& name) {
    for (std::size_t i = 0; i < table.size(); ++i) {
      if (table[i].name == name) return origins[i];
    }
    return std::string("the default");
  };
  if (c.database_url.empty()) return "saga-node: no database: set DATABASE_URL or --database-url";
  if (c.auth.dev && c.auth.jwt_secret.empty()) c.auth.jwt_secret = std::string(example_jwt_secret);
  // Without an HTTP server no token is issued or checked, so the secret does not matter then.
  if (c.http.port != 0 && !c.auth.dev) {
    const std::string how =
        " (" + origin_of("auth.jwt_secret") +
        "); set $SAGA_JWT_SECRET, --jwt-secret or auth.jwt_secret, or use --dev";
    if (c.auth.jwt_secret == example_jwt_secret) {
      return "saga-node: auth.jwt_secret: the example secret is refused outside --dev" + how;
    }
    if (c.auth.jwt_secret.empty()) return "saga-node: auth.jwt_secret: must not be empty" + how;
    if (c.auth.jwt_secret.size() < 16) {
      return "saga-node: auth.jwt_secret: must be at least 16 bytes" + how;
    }
  }
  if (c.auth.admin_email.empty() != c.auth.admin_password.empty()) {
    const bool email_missing = c.auth.admin_email.empty();
    return std::string("saga-node: ") +
           (email_missing ? "auth.admin_email: must be set together with auth.admin_password ("
                          : "auth.admin_password: must be set together with auth.admin_email (") +
           origin_of(email_missing ? "auth.admin_password" : "auth.admin_email") + ")";
  }
  if (c.actors.max_restart_backoff_ms < c.actors.restart_backoff_ms) {
    return "saga-node: actors.max_restart_backoff_ms: must be >= actors.restart_backoff_ms (" +
           std::to_string(c.actors.max_restart_backoff_ms) + " < " +
           std::to_string(c.actors.restart_backoff_ms) + ")";
  }
  return std::nullopt;
}

}  // namespace

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

load_result load(int argc, const char* const* argv, const env_lookup& getenv) {
  const auto& table = keys();
  CLI::App app{"saga-node: the saga engine server (actor runtime, journal, read side, HTTP API)",
               "saga-node"};
  app.footer(
      "Each setting comes from, in rising precedence: its default, the TOML file (--config PATH,\n"
      "else $SAGA_CONFIG; see config/saga-node.toml), the environment, the flag. Empty\n"
      "environment variables count as unset. Booleans in the environment: true/false/1/0/yes/no.");
  app.get_formatter()->column_width(42);
  std::string config_path;
  auto* config_option = app.add_option("--config", config_path, "TOML settings file [$SAGA_CONFIG]")
                            ->type_name("PATH");
  std::vector<std::string> flag_values(table.size());
  const auto flag_bools = std::make_unique<bool[]>(table.size());
  std::vector<CLI::Option*> options(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& k = table[i];
    if (k.boolean) {
      options[i] = app.add_flag(k.flag, flag_bools[i], help_text(k));
    } else {
      options[i] = app.add_option(k.flag, flag_values[i], help_text(k))->type_name(k.type_name);
    }
    const auto section = section_of(k.name);
    options[i]->group(section.empty() ? "Node" : "[" + section + "]");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out;
    std::ostringstream err;
    const int status = app.exit(e, out, err);
    if (status == 0) return load_result{std::nullopt, 0, trim_end(out.str())};
    // CLI11's message, then its "Run with --help" hint on a second line.
    return load_result{std::nullopt, 2, "saga-node: " + trim_end(err.str())};
  }

  node_config c;
  std::vector<std::string> origins(table.size(), "the default");
  if (config_option->count() == 0) {
    if (auto env = getenv("SAGA_CONFIG"); env && !env->empty()) config_path = *env;
  }
  if (!config_path.empty()) {
    if (auto error = apply_file(c, config_path, origins)) return fail(*error);
    c.config_file = config_path;
  }
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& k = table[i];
    for (const auto& name : k.env) {
      const auto value = getenv(name);
      if (!value || value->empty()) continue;
      const raw_value v = *value;
      if (auto problem = k.set(c, v)) return fail(key_error(k, *problem, v, "from " + name));
      origins[i] = "from " + name;
    }
  }
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& k = table[i];
    if (options[i]->count() == 0) continue;
    // A negative flag (--no-projections) stores the opposite of what it was given.
    const raw_value v =
        k.boolean ? raw_value(flag_bools[i] == k.flag_sets) : raw_value(flag_values[i]);
    if (auto problem = k.set(c, v)) return fail(key_error(k, *problem, v, "from " + k.flag));
    origins[i] = "from " + k.flag;
  }
  if (auto error = check_whole(c, origins)) return fail(*error);
  return load_result{std::move(c), 0, {}};
}

std::string to_toml(const node_config& c) {
  std::string text;
  std::string section;
  for (const auto& k : keys()) {
    const auto s = section_of(k.name);
    if (s != section) {
      section = s;
      text += "\n[" + section + "]\n";
    }
    text += k.name.substr(s.empty() ? 0 : s.size() + 1) + " = " + k.show(c) + "\n";
  }
  return text;
}

}  // namespace saga::config

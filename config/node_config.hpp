// saga-node's settings: every knob of the node in one plain struct whose defaults are the
// documented ones (config/saga-node.toml), loaded from defaults < TOML file < environment <
// command-line flags. Plain values only (no toml++/CLI11 types); load() keeps no state, so it is
// safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace saga::config {

/// The secret shipped in the example file; refused unless `auth.dev` is set.
inline constexpr std::string_view example_jwt_secret = "change-me-example-secret";

enum class log_level { trace, debug, info, warn, error, critical, off };
enum class log_format { text, json };

[[nodiscard]] std::string_view to_string(log_level level) noexcept;
[[nodiscard]] std::string_view to_string(log_format format) noexcept;

struct http_settings {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;  ///< 0: no HTTP server
  std::size_t max_body_bytes = 1 << 20;
  std::int64_t request_timeout_ms = 10'000;
  std::size_t threads = 0;  ///< 0: half the cores, at least one
};

struct auth_settings {
  std::string jwt_secret{example_jwt_secret};
  std::string jwt_issuer = "saga-engine";
  std::string jwt_audience = "saga-api";
  std::int64_t token_ttl_s = 3600;
  /// Bootstrap admin created at start-up when both are set.
  std::string admin_email;
  std::string admin_password;
  /// Development mode: the example secret is allowed.
  bool dev = false;
};

struct rate_limit_settings {
  double login_per_minute = 10;   ///< per email and per client address
  double orders_per_second = 50;  ///< per user and per client address
  double orders_burst = 100;
};

/// The simulated payment gateway.
struct payment_settings {
  std::int64_t decline_above = 10'000'000;  ///< minor units
  double failure_rate = 0.0;                ///< probability of a transient failure
  std::int64_t latency_ms = 0;              ///< per batch of calls
};

enum class scheduler_kind { sharing, stealing };
[[nodiscard]] std::string_view to_string(scheduler_kind kind) noexcept;

/// Mirrors actors::region_options / runtime_options (same defaults; a test checks that).
struct actor_settings {
  std::int64_t passivate_after_ms = 120'000;  ///< 0: never passivate
  std::int64_t passivation_check_ms = 1'000;
  std::int64_t snapshot_every = 500;  ///< 0: no snapshots
  std::int64_t command_timeout_ms = 10'000;
  std::int64_t journal_timeout_ms = 5'000;
  std::int64_t gateway_timeout_ms = 30'000;
  std::int64_t recovery_timeout_ms = 30'000;
  std::int64_t ask_timeout_ms = 15'000;
  std::int64_t restart_backoff_ms = 10;
  std::int64_t max_restart_backoff_ms = 2'000;
  int max_restarts = 5;
  int max_command_attempts = 3;
  std::size_t max_buffered = 10'000;
  std::size_t max_in_flight = 32;
  std::size_t scheduler_threads = 0;  ///< 0: one per core
  scheduler_kind scheduler = scheduler_kind::sharing;
};

/// Mirrors persistence::writer_options and runtime_options::readers.
struct journal_settings {
  std::int64_t linger_us = 0;
  std::size_t max_batch_events = 2000;
  std::size_t max_batch_requests = 2000;
  std::size_t writer_lanes = 1;
  std::size_t readers = 2;
};

struct log_settings {
  log_level level = log_level::info;
  log_format format = log_format::text;
};

struct node_config {
  std::string database_url;
  std::string node_id = "node-1";
  http_settings http;
  auth_settings auth;
  rate_limit_settings rate_limit;
  payment_settings payment;
  actor_settings actors;
  journal_settings journal;
  bool projections = true;  ///< run the read-model projections
  /// Pause before the next projection batch after one that did not fill up (coalescing).
  std::int64_t projection_batch_interval_ms = 100;
  log_settings log;
  bool demo_catalog = false;  ///< register the demo products at start-up
  std::size_t load = 0;       ///< demo orders to place after start-up
  std::size_t load_concurrency = 64;
  /// The TOML file that was read (empty: none).
  std::string config_file;
};

/// What load() decided: run with `config`, or exit now with `exit_status` after printing
/// `message` (to stdout when the status is 0, e.g. --help; to stderr otherwise).
struct load_result {
  std::optional<node_config> config;
  int exit_status = 0;
  std::string message;
};

/// Looks an environment variable up; nullopt when it is not set.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// The process environment (std::getenv).
[[nodiscard]] env_lookup process_environment();

/// Builds the configuration from defaults, the TOML file (`--config PATH`, else $SAGA_CONFIG),
/// the environment and the flags in `argv`, validating every value. Bad input gives status 2 and
/// a one-line message naming the key, the offending value and where it came from.
[[nodiscard]] load_result load(int argc, const char* const* argv, const env_lookup& getenv);

/// The TOML text of `c` in the layout of config/saga-node.toml (without comments; secrets
/// included, so only for tests and diagnostics).
[[nodiscard]] std::string to_toml(const node_config& c);

}  // namespace saga::config

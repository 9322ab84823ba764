// Process-wide logging: spdlog's default logger writing to stderr, as text lines or one JSON
// object per line, each carrying the node id. Call setup_logging once at start-up, before other
// threads log; the log functions are thread-safe afterwards (the logger is synchronous, so a
// line is complete on stderr when the call returns). No spdlog types in this header.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "config/node_config.hpp"

namespace saga::config {

/// Name of the default logger (the `logger` field of JSON lines).
inline constexpr std::string_view default_logger_name = "saga-node";

/// Replaces spdlog's default logger by one writing to stderr in `settings.format` at
/// `settings.level`; every line names `node_id`.
void setup_logging(const log_settings& settings, const std::string& node_id);

/// The same, writing to `sink` instead of stderr (tests); `sink` must outlive the logger, i.e.
/// until setup_logging is called again.
void setup_logging(const log_settings& settings, const std::string& node_id, std::ostream& sink);

/// Logs `message` through the default logger.
void log(log_level level, std::string_view message);

/// Logs `message` with a correlation id: its own `correlation_id` field in JSON lines,
/// `[correlation_id=…]` in text lines.
void log_with_correlation(log_level level, std::string_view correlation_id,
                          std::string_view message);

/// Appends `text` to `out` as a JSON string literal (quotes, escapes, control characters;
/// invalid UTF-8 bytes become U+FFFD, so the result always parses).
void append_json_string(std::string& out, std::string_view text);

}  // namespace saga::config

// One formatter for both formats, so the text and JSON lines carry the same fields. The
// correlation id travels from log_with_correlation to the formatter in a thread-local: the
// logger is synchronous, so the formatter runs on the logging thread within that call.
#include "config/logging.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <utility>

#include <spdlog/formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace saga::config {

namespace {

thread_local const std::string_view* current_correlation = nullptr;

spdlog::level::level_enum to_spdlog(log_level level) {
  switch (level) {
    case log_level::trace:
      return spdlog::level::trace;
    case log_level::debug:
      return spdlog::level::debug;
    case log_level::info:
      return spdlog::level::info;
    case log_level::warn:
      return spdlog::level::warn;
    case log_level::error:
      return spdlog::level::err;
    case log_level::critical:
      return spdlog::level::critical;
    case log_level::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

/// UTC, millisecond precision: 2026-11-21T16:33:51.123Z.
std::string iso_time(spdlog::log_clock::time_point time) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  auto seconds = static_cast<std::time_t>(ms / 1000);
  auto millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

/// Text lines stay one line per message: control characters are escaped as in JSON.
void append_text(std::string& out, std::string_view text) {
  std::string quoted;
  append_json_string(quoted, text);
  // Drop the quotes; keep the escapes of control characters and quotes as they are.
  out.append(quoted, 1, quoted.size() - 2);
}

class line_formatter final : public spdlog::formatter {
 public:
  line_formatter(log_format format, std::string node_id)
      : format_(format), node_id_(std::move(node_id)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    std::string line;
    line.reserve(payload.size() + 128);
    if (format_ == log_format::json) {
      line += "{\"ts\":\"" + iso_time(msg.time) + "\",\"level\":\"";
      line += level_name(msg.level);
      line += "\",\"node\":";
      append_json_string(line, node_id_);
      line += ",\"logger\":";
      append_json_string(line, logger);
      line += ",\"msg\":";
      append_json_string(line, payload);
      if (current_correlation != nullptr) {
        line += ",\"correlation_id\":";
        append_json_string(line, *current_correlation);
      }
      line += "}\n";
    } else {
      line += iso_time(msg.time);
      line += ' ';
      line += level_name(msg.level);
      line += " [";
      append_text(line, node_id_);
      line += "] ";
      append_text(line, logger);
      line += ": ";
      append_text(line, payload);
      if (current_correlation != nullptr) {
        line += " [correlation_id=";
        append_text(line, *current_correlation);
        line += ']';
      }
      line += '\n';
    }
    dest.append(line.data(), line.data() + line.size());
  }

  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<line_formatter>(format_, node_id_);
  }

 private:
  log_format format_;
  std::string node_id_;
};

/// The formatter and level also become spdlog's global ones, so the loggers other units create
/// through spdlog's factories (e.g. saga_actors' "actors" logger) write the same line format,
/// with their own name as `logger`.
void install(const log_settings& settings, const std::string& node_id, spdlog::sink_ptr sink) {
  line_formatter formatter(settings.format, node_id);
  spdlog::set_formatter(formatter.clone());
  spdlog::set_level(to_spdlog(settings.level));
  spdlog::flush_on(spdlog::level::trace);
  sink->set_formatter(formatter.clone());
  auto logger = std::make_shared<spdlog::logger>(std::string(default_logger_name), std::move(sink));
  logger->set_level(to_spdlog(settings.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

/// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not valid
/// (truncated, overlong, surrogate or above U+10FFFF).
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  std::size_t length = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const auto ch = static_cast<unsigned char>(text[i]);
    if (ch >= 0x80) {
      const auto length = utf8_length(text, i);
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text, i, length);
        i += length;
      }
      continue;
    }
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
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
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
    ++i;
  }
  out += '"';
}

void setup_logging(const log_settings& settings, const std::string& node_id) {
  install(settings, node_id, std::make_shared<spdlog::sinks::stderr_sink_mt>());
}

void setup_logging(const log_settings& settings, const std::string& node_id, std::ostream& sink) {
  install(settings, node_id, std::make_shared<spdlog::sinks::ostream_sink_mt>(sink, true));
}

void log(log_level level, std::string_view message) {
  spdlog::default_logger_raw()->log(to_spdlog(level),
                                    spdlog::string_view_t(message.data(), message.size()));
}

void log_with_correlation(log_level level, std::string_view correlation_id,
                          std::string_view message) {
  // Restored even if a sink throws, so a later line does not pick up a stale id.
  struct scope {
    explicit scope(const std::string_view* id) : previous(current_correlation) {
      current_correlation = id;
    }
    ~scope() { current_correlation = previous; }
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    const std::string_view* previous;
  } guard(&correlation_id);
  log(level, message);
}

}  // namespace saga::config

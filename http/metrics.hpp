// Prometheus text exposition (format 0.0.4): counters, gauges and histograms with labels, and the
// HTTP request metrics. Thread-safe: series are found under a shared lock and updated with
// atomics, so the per-request hot path does not serialize the HTTP threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace saga::http {

/// Label name → value pairs, in the order they are rendered.
using labels = std::vector<std::pair<std::string, std::string>>;

/// Buckets (upper bounds, seconds) of saga_http_request_duration_seconds.
[[nodiscard]] const std::vector<double>& http_latency_buckets();

/// A label value escaped for the text format (backslash, double quote, newline).
[[nodiscard]] std::string escape_label_value(std::string_view value);

class metrics_registry {
 public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  /// One served HTTP request: saga_http_requests_total{route,method,status} and
  /// saga_http_request_duration_seconds{route,method}. `route` is the pattern, not the raw path.
  void count_request(std::string_view route, std::string_view method, int status, double seconds);

  // set_gauge/add_counter/observe throw std::invalid_argument for an invalid metric or label
  // name or a name already registered as another kind: programming errors, caught by tests.

  /// Sets a gauge series (creates the family and series on first use).
  void set_gauge(std::string_view name, std::string_view help, const labels& l, double value);
  /// Adds `delta` (>= 0; negative deltas are ignored) to a counter series.
  void add_counter(std::string_view name, std::string_view help, const labels& l, double delta);
  /// Records one observation in a histogram series; `buckets` (ascending upper bounds, +Inf
  /// implied) are fixed by the first call for a family.
  void observe(std::string_view name, std::string_view help, const labels& l, double value,
               const std::vector<double>& buckets);

  /// The whole registry in text format 0.0.4, families sorted by name, series by labels.
  [[nodiscard]] std::string render() const;

  /// Content-Type of render()'s output.
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  /// Current value of a counter or gauge series (0 when absent), for tests and health checks.
  [[nodiscard]] double value(std::string_view name, const labels& l) const;

 private:
  struct family;
  struct series;
  /// Finds or creates a family; throws std::invalid_argument for an invalid name, a name already
  /// used with another kind, or histogram buckets that are not finite and strictly ascending.
  family& family_for(std::string_view name, std::string_view help, int kind,
                     const std::vector<double>* buckets);
  static series& series_for(family& f, const std::string& key);
  static void observe_in(family& f, series& s, double value);

  family* requests_ = nullptr;   // saga_http_requests_total, created by the constructor
  family* durations_ = nullptr;  // saga_http_request_duration_seconds

  mutable std::shared_mutex mutex_;  // guards the family map; series values are atomics
  std::map<std::string, std::unique_ptr<family>, std::less<>> families_;
};

}  // namespace saga::http

// Shared plumbing of the saga-bench modes: option parsing, a scratch schema that is migrated on
// creation and dropped afterwards, number formatting, percentiles and the process RSS. Used on
// the calling thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace saga::bench {

/// Bad command-line arguments (exit status 2).
struct bad_args : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// `--key value`, `--key=value` and bare `--flag` options, checked against the known keys.
class options {
 public:
  /// Throws bad_args for an unknown key, a missing value or a repeated key.
  options(const std::vector<std::string>& args, const std::vector<std::string>& value_keys,
          const std::vector<std::string>& flag_keys = {});

  [[nodiscard]] bool has(const std::string& key) const { return values_.count(key) > 0; }
  [[nodiscard]] std::string text(const std::string& key, const std::string& fallback) const;
  /// A whole number >= min (bad_args otherwise).
  [[nodiscard]] std::size_t count(const std::string& key, std::size_t fallback,
                                  std::size_t min = 0) const;
  /// A number in [min, max] (bad_args otherwise).
  [[nodiscard]] double number(const std::string& key, double fallback, double min,
                              double max) const;

 private:
  std::map<std::string, std::string> values_;
};

/// A whole number >= min parsed from `value` (bad_args naming `key` otherwise).
[[nodiscard]] std::size_t parse_count(const std::string& key, const std::string& value,
                                      std::size_t min);

/// $DATABASE_URL, or --database-url; bad_args when neither is set.
[[nodiscard]] std::string database_url(const options& opts);

/// A schema for one run: `name` (kept) or a fresh scratch one (dropped by the destructor
/// unless `keep`). Migrated on construction; throws std::runtime_error when that fails.
class bench_schema {
 public:
  bench_schema(std::string database_url, std::string name, bool keep);
  ~bench_schema();
  bench_schema(const bench_schema&) = delete;
  bench_schema& operator=(const bench_schema&) = delete;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  std::string url_;
  std::string name_;
  bool drop_ = false;
};

/// A random tag for names of this run.
[[nodiscard]] std::string run_tag();

[[nodiscard]] std::string fixed(double v, int digits);
[[nodiscard]] double seconds_since(std::chrono::steady_clock::time_point start);
/// The p-quantile (0..1) of `values` (sorted in place); 0 when empty.
[[nodiscard]] double percentile(std::vector<double>& values, double p);
/// Resident set size of this process in bytes (from /proc/self/statm); 0 if unknown.
[[nodiscard]] std::uint64_t rss_bytes();
/// The median of the values; 0 when empty.
[[nodiscard]] double median(std::vector<double> values);

}  // namespace saga::bench

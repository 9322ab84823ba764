#include "apps/saga_bench/common.hpp"

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include "persistence/migrations.hpp"
#include "persistence/pg_admin.hpp"

namespace saga::bench {

namespace sp = saga::persistence;

options::options(const std::vector<std::string>& args, const std::vector<std::string>& value_keys,
                 const std::vector<std::string>& flag_keys) {
  const auto known = [](const std::vector<std::string>& keys, const std::string& key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string key = args[i];
    std::string value;
    const auto eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      if (!known(value_keys, key)) throw bad_args("unknown option " + key);
    } else if (known(flag_keys, key)) {
      value = "1";
    } else if (!known(value_keys, key)) {
      throw bad_args("unknown option " + key);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw bad_args(key + " needs a value");
    }
    if (!values_.emplace(key, value).second) throw bad_args(key + " given twice");
  }
}

std::string options::text(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

std::size_t options::count(const std::string& key, std::size_t fallback, std::size_t min) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : parse_count(key, it->second, min);
}

double options::number(const std::string& key, double fallback, double min, double max) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(it->second, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != it->second.size() || it->second.empty() || !std::isfinite(v) || v < min || v > max) {
    throw bad_args(key + " needs a number in [" + fixed(min, 2) + ", " + fixed(max, 2) +
                   "], got '" + it->second + "'");
  }
  return v;
}

std::size_t parse_count(const std::string& key, const std::string& value, std::size_t min) {
  std::size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(value, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != value.size() || value.empty() || value[0] == '-' || n < min) {
    throw bad_args(key + " needs a whole number >= " + std::to_string(min) + ", got '" + value +
                   "'");
  }
  return static_cast<std::size_t>(n);
}

std::string database_url(const options& opts) {
  std::string url;
  if (const char* env = std::getenv("DATABASE_URL")) url = env;
  url = opts.text("--database-url", url);
  if (url.empty()) throw bad_args("set DATABASE_URL or pass --database-url");
  return url;
}

bench_schema::bench_schema(std::string database_url, std::string name, bool keep)
    : url_(std::move(database_url)), name_(std::move(name)) {
  if (name_.empty()) {
    name_ = "saga_bench_" + run_tag();
    drop_ = !keep;
  }
  auto migrated = sp::apply_migrations(url_, sp::migration_options{name_});
  if (!migrated) {
    if (drop_) (void)sp::run_sql(url_, "DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    throw std::runtime_error("migrating schema " + name_ + " failed: " + migrated.error().message);
  }
}

bench_schema::~bench_schema() {
  if (!drop_) return;
  auto dropped = sp::run_sql(url_, "DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
  if (!dropped) {
    std::cerr << "saga-bench: could not drop schema " << name_ << ": " << dropped.error().message
              << "\n";
  }
}

std::string run_tag() {
  static const std::string tag = [] {
    std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(rng() % 1000000000ULL);
  }();
  return tag;
}

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double median(std::vector<double> values) { return percentile(values, 0.5); }

std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace saga::bench

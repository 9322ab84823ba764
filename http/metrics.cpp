#include "http/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace saga::http {

namespace {

enum kind : int { counter_kind = 0, gauge_kind = 1, histogram_kind = 2 };

std::string_view kind_name(int k) {
  switch (k) {
    case counter_kind:
      return "counter";
    case gauge_kind:
      return "gauge";
    default:
      return "histogram";
  }
}

void atomic_add(std::atomic<double>& target, double delta) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
}

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) {
  if (n.empty() || n.find(':') != std::string_view::npos) return false;
  if (n.size() >= 2 && n[0] == '_' && n[1] == '_') return false;  // reserved by Prometheus
  return valid_metric_name(n);
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

/// Shortest text that reads back as the same double; Prometheus spellings for the specials.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";
  char buf[40];
  if (std::fabs(v) < 1e15 && std::floor(v) == v) {  // integers in full, never "1e+01"
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

const std::vector<double>& http_latency_buckets() {
  static const std::vector<double> buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10};
  return buckets;
}

struct metrics_registry::series {
  explicit series(std::size_t bucket_count)
      : buckets(bucket_count == 0 ? nullptr : new std::atomic<std::uint64_t>[bucket_count]) {
    for (std::size_t i = 0; i < bucket_count; ++i) buckets[i].store(0, std::memory_order_relaxed);
  }
  std::atomic<double> value{0};  // counter or gauge
  // Histogram: observations per bucket (not cumulative; +Inf last) and their sum.
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;
  std::atomic<double> sum{0};
};

struct metrics_registry::family {
  std::string name;
  std::string help;
  int kind = counter_kind;
  std::vector<double> bounds;
  mutable std::shared_mutex mutex;  // guards `by_labels`; the series themselves are atomics
  std::map<std::string, std::unique_ptr<series>, std::less<>> by_labels;  // key: rendered labels
};

metrics_registry::metrics_registry() {
  requests_ = &family_for("saga_http_requests_total",
                          "HTTP requests served, by route pattern, method and status", counter_kind,
                          nullptr);
  durations_ = &family_for("saga_http_request_duration_seconds",
                           "HTTP request latency in seconds, by route pattern and method",
                           histogram_kind, &http_latency_buckets());
}

metrics_registry::~metrics_registry() = default;

metrics_registry::family& metrics_registry::family_for(std::string_view name, std::string_view help,
                                                       int kind,
                                                       const std::vector<double>* buckets) {
  {
    std::shared_lock lock(mutex_);
    const auto it = families_.find(name);
    if (it != families_.end()) {
      if (it->second->kind != kind)
        throw std::invalid_argument("metric " + std::string(name) + " is a " +
                                    std::string(kind_name(it->second->kind)) + ", not a " +
                                    std::string(kind_name(kind)));
      return *it->second;
    }
  }
  if (!valid_metric_name(name))
    throw std::invalid_argument("invalid metric name '" + std::string(name) + "'");
  auto f = std::make_unique<family>();
  f->name = std::string(name);
  f->help = std::string(help);
  f->kind = kind;
  if (kind == histogram_kind) {
    if (buckets == nullptr || buckets->empty())
      throw std::invalid_argument("histogram " + f->name + " needs at least one bucket");
    for (std::size_t i = 0; i < buckets->size(); ++i) {
      const double b = (*buckets)[i];
      if (!std::isfinite(b) || (i > 0 && b <= (*buckets)[i - 1]))
        throw std::invalid_argument("histogram " + f->name +
                                    ": buckets must be finite and strictly ascending");
    }
    f->bounds = *buckets;
  }
  std::unique_lock lock(mutex_);
  auto [it, inserted] = families_.emplace(f->name, std::move(f));
  if (!inserted && it->second->kind != kind)  // another thread created it meanwhile
    throw std::invalid_argument("metric " + std::string(name) + " is a " +
                                std::string(kind_name(it->second->kind)) + ", not a " +
                                std::string(kind_name(kind)));
  return *it->second;
}

namespace {

template <class Pairs>
std::string label_key(const Pairs& pairs, bool histogram) {
  std::string key;
  for (const auto& [name, value] : pairs) {
    if (!valid_label_name(name) || (histogram && name == "le"))
      throw std::invalid_argument("invalid label name '" + std::string(name) + "'");
    if (!key.empty()) key.push_back(',');
    key.append(name);
    key += "=\"";
    key += escape_label_value(value);
    key.push_back('"');
  }
  return key;
}

}  // namespace

metrics_registry::series& metrics_registry::series_for(family& f, const std::string& key) {
  {
    std::shared_lock lock(f.mutex);
    const auto it = f.by_labels.find(key);
    if (it != f.by_labels.end()) return *it->second;
  }
  std::unique_lock lock(f.mutex);
  auto& slot = f.by_labels[key];
  if (!slot) slot = std::make_unique<series>(f.kind == histogram_kind ? f.bounds.size() + 1 : 0);
  return *slot;
}

void metrics_registry::observe_in(family& f, series& s, double value) {
  if (std::isnan(value)) return;
  std::size_t i = 0;
  while (i < f.bounds.size() && value > f.bounds[i]) ++i;  // le: value <= bound
  s.buckets[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(s.sum, value);
}

void metrics_registry::count_request(std::string_view route, std::string_view method, int status,
                                     double seconds) {
  const std::pair<std::string_view, std::string_view> common[] = {{"route", route},
                                                                  {"method", method}};
  std::string key = label_key(common, false);
  observe_in(*durations_, series_for(*durations_, key), seconds);
  key += ",status=\"";
  key += std::to_string(status);
  key.push_back('"');
  atomic_add(series_for(*requests_, key).value, 1.0);
}

void metrics_registry::set_gauge(std::string_view name, std::string_view help, const labels& l,
                                 double value) {
  family& f = family_for(name, help, gauge_kind, nullptr);
  series_for(f, label_key(l, false)).value.store(value, std::memory_order_relaxed);
}

void metrics_registry::add_counter(std::string_view name, std::string_view help, const labels& l,
                                   double delta) {
  family& f = family_for(name, help, counter_kind, nullptr);
  series& s = series_for(f, label_key(l, false));
  if (delta > 0) atomic_add(s.value, delta);  // counters never go down; NaN is dropped too
}

void metrics_registry::observe(std::string_view name, std::string_view help, const labels& l,
                               double value, const std::vector<double>& buckets) {
  family& f = family_for(name, help, histogram_kind, &buckets);
  observe_in(f, series_for(f, label_key(l, true)), value);
}

double metrics_registry::value(std::string_view name, const labels& l) const {
  std::shared_lock lock(mutex_);
  const auto it = families_.find(name);
  if (it == families_.end() || it->second->kind == histogram_kind) return 0;
  const family& f = *it->second;
  const std::string key = label_key(l, false);
  std::shared_lock series_lock(f.mutex);
  const auto s = f.by_labels.find(key);
  return s == f.by_labels.end() ? 0 : s->second->value.load(std::memory_order_relaxed);
}

std::string metrics_registry::render() const {
  std::string out;
  std::shared_lock lock(mutex_);
  for (const auto& [name, fp] : families_) {
    const family& f = *fp;
    out += "# HELP " + name + ' ' + escape_help(f.help) + '\n';
    out += "# TYPE " + name + ' ' + std::string(kind_name(f.kind)) + '\n';
    std::shared_lock series_lock(f.mutex);
    for (const auto& [key, sp] : f.by_labels) {
      const series& s = *sp;
      if (f.kind != histogram_kind) {
        out += name;
        if (!key.empty()) out += '{' + key + '}';
        out += ' ' + format_value(s.value.load(std::memory_order_relaxed)) + '\n';
        continue;
      }
      const std::string prefix = key.empty() ? std::string() : key + ',';
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= f.bounds.size(); ++i) {
        cumulative += s.buckets[i].load(std::memory_order_relaxed);
        const std::string le = i < f.bounds.size() ? format_value(f.bounds[i]) : "+Inf";
        out +=
            name + "_bucket{" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + '\n';
      }
      const std::string braces = key.empty() ? std::string() : '{' + key + '}';
      out +=
          name + "_sum" + braces + ' ' + format_value(s.sum.load(std::memory_order_relaxed)) + '\n';
      // _count is the +Inf bucket, so the two always agree even while observations arrive.
      out += name + "_count" + braces + ' ' + std::to_string(cumulative) + '\n';
    }
  }
  return out;
}

}  // namespace saga::http

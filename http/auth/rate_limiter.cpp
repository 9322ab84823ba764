#include "http/auth/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace saga::http::auth {

namespace {

constexpr std::size_t max_shards = 16;
// Small limiters keep one shard, so their LRU order is exact; big ones spread the lock.
constexpr std::size_t min_keys_per_shard = 1024;
// Float noise must not turn a whole token into 0.9999999 (or a 6 s wait into 7 s).
constexpr double slack = 1e-6;
// Retry-After is capped at a day; a rate so small that the wait exceeds it is a config mistake.
constexpr double max_wait_s = 86400;

}  // namespace

rate_limiter::rate_limiter(double tokens_per_second, double burst, std::size_t max_keys)
    : rate_limiter(tokens_per_second, burst, max_keys,
                   [] { return std::chrono::steady_clock::now(); }) {}

rate_limiter::rate_limiter(double tokens_per_second, double burst, std::size_t max_keys,
                           clock_fn now)
    : rate_(tokens_per_second), burst_(burst), now_(std::move(now)) {
  // Written as negations so that NaN fails too.
  if (!(tokens_per_second > 0) || !std::isfinite(tokens_per_second))
    throw std::invalid_argument("rate limit: tokens per second must be a positive number");
  if (!(burst >= 1) || !std::isfinite(burst))
    throw std::invalid_argument("rate limit: burst must be at least 1");
  if (max_keys == 0) throw std::invalid_argument("rate limit: max_keys must be at least 1");
  if (!now_) throw std::invalid_argument("rate limit: clock must be callable");
  // The capacities add up to exactly max_keys, so the bound holds over all shards.
  const std::size_t count = std::clamp<std::size_t>(max_keys / min_keys_per_shard, 1, max_shards);
  shards_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto s = std::make_unique<shard>();
    s->capacity = max_keys / count + (i < max_keys % count ? 1 : 0);
    shards_.push_back(std::move(s));
  }
}

rate_limiter::~rate_limiter() = default;

rate_limiter::shard& rate_limiter::shard_for(const std::string& key) {
  return *shards_[std::hash<std::string>{}(key) % shards_.size()];
}

std::optional<std::chrono::seconds> rate_limiter::acquire(const std::string& key) {
  auto& s = shard_for(key);
  const auto now = now_();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.buckets.find(key);
  if (it == s.buckets.end()) {
    // Forgetting the least recently used key hands it a fresh bucket should it come back; with
    // keys touched in LRU order that is the one most likely to be full again anyway.
    if (s.buckets.size() >= s.capacity) {
      s.buckets.erase(s.lru.front());
      s.lru.pop_front();
    }
    s.lru.push_back(key);
    it = s.buckets.emplace(key, bucket{burst_, now, std::prev(s.lru.end())}).first;
  } else {
    s.lru.splice(s.lru.end(), s.lru, it->second.lru_position);
    auto& b = it->second;
    if (now > b.updated) {
      const double elapsed = std::chrono::duration<double>(now - b.updated).count();
      b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
      b.updated = now;
    }
  }
  auto& b = it->second;
  if (b.tokens >= 1.0 - slack) {
    b.tokens = std::max(0.0, b.tokens - 1.0);
    return std::nullopt;
  }
  // A refused request costs nothing, so the wait is exactly until the next whole token.
  const double wait = std::min(max_wait_s, std::ceil((1.0 - b.tokens) / rate_ - slack));
  return std::chrono::seconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(wait)));
}

std::size_t rate_limiter::tracked_keys() const {
  std::size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mutex);
    total += s->buckets.size();
  }
  return total;
}

}  // namespace saga::http::auth

// Token-bucket rate limiting per key (a user id, an e-mail, a client address). Thread-safe:
// keys are spread over shards (one per 1,024 keys of capacity, 1 to 16), each behind its own
// mutex. Memory is bounded by max_keys: a full shard forgets its least recently used key.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace saga::http::auth {

class rate_limiter {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

  /// Each key may spend `burst` requests at once and regains `tokens_per_second`; throws
  /// std::invalid_argument unless tokens_per_second > 0, burst >= 1 and max_keys >= 1.
  rate_limiter(double tokens_per_second, double burst, std::size_t max_keys = 100000);
  /// Same, reading time from `now` (tests pass a fake clock).
  rate_limiter(double tokens_per_second, double burst, std::size_t max_keys, clock_fn now);
  ~rate_limiter();
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  /// Takes one token for `key`: nullopt when allowed, otherwise how long to wait before a
  /// token is available (the Retry-After value: whole seconds, rounded up, at least 1 s).
  [[nodiscard]] std::optional<std::chrono::seconds> acquire(const std::string& key);

  /// How many keys are tracked now (never more than max_keys).
  [[nodiscard]] std::size_t tracked_keys() const;

 private:
  struct bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
    std::list<std::string>::iterator lru_position;
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, bucket> buckets;
    std::list<std::string> lru;  ///< least recently used key first
    std::size_t capacity = 0;
  };

  shard& shard_for(const std::string& key);

  double rate_;
  double burst_;
  clock_fn now_;
  std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace saga::http::auth

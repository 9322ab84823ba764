// Observers of finished sagas (COMPLETED, COMPENSATED, FAILED): tests, the benchmark and metrics
// subscribe; saga actors notify after the final event is committed. Thread-safe (one mutex);
// callbacks run on the notifying actor's thread, outside the lock, and must be quick.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "domain/saga.hpp"

namespace saga::actors {

class saga_observers {
 public:
  using callback = std::function<void(const domain::sagas::state&)>;

  /// Adds `cb`; returns a token for remove(). An empty callback is ignored (token 0).
  std::uint64_t add(callback cb) {
    if (!cb) return 0;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto token = ++last_token_;
    callbacks_.emplace(token, std::move(cb));
    return token;
  }

  /// Removes the callback of `token` (unknown tokens are ignored). A notification already
  /// running may still call it once.
  void remove(std::uint64_t token) {
    std::lock_guard<std::mutex> lock(mutex_);
    callbacks_.erase(token);
  }

  /// Calls every callback with the finished saga's state.
  void notify(const domain::sagas::state& finished) const {
    std::vector<callback> copy;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      copy.reserve(callbacks_.size());
      for (const auto& entry : callbacks_) copy.push_back(entry.second);
    }
    for (const auto& cb : copy) cb(finished);
  }

 private:
  mutable std::mutex mutex_;
  std::uint64_t last_token_ = 0;
  std::map<std::uint64_t, callback> callbacks_;
};

}  // namespace saga::actors

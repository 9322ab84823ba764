// Test-only crash injection: makes an aggregate actor throw at a chosen point while handling the
// command with a given idempotency key, so supervision can be exercised. Thread-safe (one mutex);
// shared by every actor of a runtime. Never armed in production.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace saga::actors {

/// Where in command handling an injected crash happens.
enum class fault_point : std::uint8_t {
  before_decide,  ///< nothing written yet
  after_append,   ///< the events are committed but not yet applied or answered
};

/// The exception an injected crash throws.
struct injected_crash : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class fault_injector {
 public:
  /// Arms `times` crashes at `point` for commands carrying `idempotency_key`.
  void crash_on(fault_point point, const std::string& idempotency_key, int times = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_[{point, idempotency_key}] += times;
  }

  /// Throws injected_crash if a crash is armed here for this key (using one up).
  void check(fault_point point, const std::string& idempotency_key) {
    if (idempotency_key.empty()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = armed_.find({point, idempotency_key});
    if (it == armed_.end() || it->second <= 0) return;
    --it->second;
    ++fired_;
    throw injected_crash("injected crash for idempotency key " + idempotency_key);
  }

  /// Crashes injected so far.
  [[nodiscard]] std::uint64_t fired() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fired_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<fault_point, std::string>, int> armed_;
  std::uint64_t fired_ = 0;
};

}  // namespace saga::actors

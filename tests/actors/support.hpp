// Helpers for the actor runtime tests: a shared in-memory journal that every runtime thread
// reaches through its own handle, a fault switch on appends, fast runtime options, command
// builders and polling. Test threads only.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "actors/runtime.hpp"
#include "domain/aggregate_codec.hpp"
#include "persistence/memory_event_store.hpp"

namespace saga::domain {
inline std::ostream& operator<<(std::ostream& out, rejection_code code) {
  return out << to_string(code);
}
}  // namespace saga::domain
namespace saga::domain::order {
inline std::ostream& operator<<(std::ostream& out, status s) { return out << to_string(s); }
}  // namespace saga::domain::order
namespace saga::domain::payment {
inline std::ostream& operator<<(std::ostream& out, status s) { return out << to_string(s); }
}  // namespace saga::domain::payment

namespace saga::actors {
inline std::ostream& operator<<(std::ostream& out, reply_kind kind) {
  return out << to_string(kind);
}
inline std::ostream& operator<<(std::ostream& out, failure_code code) {
  return out << to_string(code);
}
}  // namespace saga::actors

namespace saga::actors::test {

namespace sp = saga::persistence;
namespace inv = saga::domain::inventory;
using namespace std::chrono_literals;

/// Faults applied to appends of every journal handle, and what the handles read.
struct journal_probe {
  /// The next n batches fail with `retryable` without writing anything.
  std::atomic<int> fail_before_write{0};
  /// The next n batches are written, then reported as `retryable` (the ambiguous case).
  std::atomic<int> fail_after_write{0};
  /// from_version of the last read_stream and the number of events it returned.
  std::atomic<std::int64_t> last_read_from{0};
  std::atomic<std::uint64_t> last_read_events{0};
};

/// One store handle of a journal (each runtime thread gets its own), with the probe applied.
class journal_handle final : public sp::event_store {
 public:
  journal_handle(std::shared_ptr<sp::event_store> target, std::shared_ptr<journal_probe> faults)
      : target_(std::move(target)), faults_(std::move(faults)) {}

  std::vector<sp::append_result> append_batch(const std::vector<sp::append_request>& r) override {
    if (take(faults_->fail_before_write)) return failure(r.size());
    auto results = target_->append_batch(r);
    if (take(faults_->fail_after_write)) return failure(r.size());
    return results;
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_stream(
      const std::string& s, std::int64_t from, std::size_t limit) override {
    auto read = target_->read_stream(s, from, limit);
    faults_->last_read_from = from;
    faults_->last_read_events = read ? read->size() : 0;
    return read;
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_all(std::int64_t after,
                                                                      std::size_t limit) override {
    return target_->read_all(after, limit);
  }
  expected<bool, sp::store_error> save_snapshot(const sp::snapshot& s) override {
    return target_->save_snapshot(s);
  }
  expected<std::optional<sp::snapshot>, sp::store_error> load_snapshot(
      const std::string& s) override {
    return target_->load_snapshot(s);
  }

 private:
  static bool take(std::atomic<int>& counter) {
    int n = counter.load();
    while (n > 0) {
      if (counter.compare_exchange_weak(n, n - 1)) return true;
    }
    return false;
  }
  static std::vector<sp::append_result> failure(std::size_t n) {
    return std::vector<sp::append_result>(
        n, sp::append_result{unexpected{
               sp::store_error{sp::store_errc::retryable, "injected journal failure", -1}}});
  }

  std::shared_ptr<sp::event_store> target_;
  std::shared_ptr<journal_probe> faults_;
};

/// A shared in-memory journal and the factory a runtime opens handles with.
struct shared_journal {
  std::shared_ptr<sp::memory_event_store> store = std::make_shared<sp::memory_event_store>();
  std::shared_ptr<journal_probe> faults = std::make_shared<journal_probe>();

  runtime::store_factory factory() const {
    return [store = store, faults = faults]() -> std::unique_ptr<sp::event_store> {
      return std::make_unique<journal_handle>(store, faults);
    };
  }

  std::vector<sp::recorded_event> events(const std::string& stream) const {
    auto read = store->read_stream(stream);
    BOOST_REQUIRE_MESSAGE(read.has_value(), "read_stream failed");
    return *read;
  }
};

/// Options with short timings so supervision and passivation tests run fast.
inline runtime_options fast_options() {
  runtime_options o;
  o.regions.passivate_after = 0ms;  // tests that need it turn it on
  o.regions.passivation_check = 10ms;
  o.regions.restart_backoff = 5ms;
  o.regions.max_restart_backoff = 50ms;
  o.regions.command_timeout = 5s;
  o.regions.journal_timeout = 3s;
  o.regions.recovery_timeout = 5s;
  o.regions.snapshot_every = 0;
  o.regions.node_id = "test-node";
  o.regions.faults = std::make_shared<fault_injector>();
  o.writer.max_attempts = 1;  // injected journal failures reach the actor
  o.readers = 2;
  o.scheduler_threads = 2;
  o.ask_timeout = 10s;
  return o;
}

inline inv::register_product register_product(const std::string& id, std::int64_t stock,
                                              const std::string& key) {
  return inv::register_product{id, "Widget " + id, 1500, stock, 1'700'000'000'000, key};
}
inline inv::restock restock(std::int64_t quantity, const std::string& key) {
  return inv::restock{quantity, 1'700'000'000'100, key};
}
inline inv::reserve reserve(const std::string& order_id, std::int64_t quantity,
                            const std::string& key) {
  return inv::reserve{order_id, quantity, 1'700'000'000'200, key};
}

/// Polls `condition` every 5 ms for up to `limit`.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = 3000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

/// How many events of alternative E a reply carries.
template <class E, class Reply>
std::size_t count_of(const Reply& reply) {
  std::size_t n = 0;
  for (const auto& e : reply.events) n += std::holds_alternative<E>(e) ? 1 : 0;
  return n;
}

}  // namespace saga::actors::test

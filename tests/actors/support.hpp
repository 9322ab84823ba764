// Helpers for the actor runtime tests: a shared in-memory journal that every runtime thread
// reaches through its own handle, a fault switch on appends, fast runtime options, command
// builders and polling; for sagas, a payment gateway with fault switches and a waiter for
// finished sagas. Test threads only (the gateway runs on the gateway actor's thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "actors/runtime.hpp"
#include "domain/aggregate_codec.hpp"
#include "domain/saga.hpp"
#include "persistence/memory_event_store.hpp"
#include "persistence/payment_gateway.hpp"

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
namespace saga::domain::sagas {
inline std::ostream& operator<<(std::ostream& out, status s) { return out << to_string(s); }
inline std::ostream& operator<<(std::ostream& out, step_status s) { return out << to_string(s); }
}  // namespace saga::domain::sagas

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
  /// read_stream calls so far.
  std::atomic<std::uint64_t> reads{0};
  /// The next n batches wait stall_ms before writing (a journal that answers late).
  std::atomic<int> stall_next{0};
  std::atomic<int> stall_ms{0};
  /// The next n stream reads wait stall_ms first (a journal read that hangs).
  std::atomic<int> stall_reads{0};
  /// Riders (sagas' step outcomes written with the step's events) written so far.
  std::atomic<int> riders_written{0};
  /// Every rider is left out, as a store does that cannot vouch for its stream.
  std::atomic<bool> drop_riders{false};
  /// In the next n batches in which a rider is written, the requests that wrote one are
  /// reported as `retryable` afterwards; only once more than `spare_riders` riders were written.
  std::atomic<int> fail_after_rider{0};
  std::atomic<int> spare_riders{0};
  /// save_snapshot calls so far.
  std::atomic<int> snapshots_saved{0};
  /// The first batch with an event of this type (set before the runtime starts; empty: none)
  /// waits in the journal, `holding`, until `release`; then it is written, or with `fail_held`
  /// fails as `retryable` without writing anything.
  std::string hold_event_type;
  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
  std::atomic<bool> fail_held{false};
  std::atomic<bool> held{false};
};

/// One store handle of a journal (each runtime thread gets its own), with the probe applied.
class journal_handle final : public sp::event_store {
 public:
  journal_handle(std::shared_ptr<sp::event_store> target, std::shared_ptr<journal_probe> faults)
      : target_(std::move(target)), faults_(std::move(faults)) {}

  std::vector<sp::append_result> append_batch(const std::vector<sp::append_request>& r) override {
    if (take(faults_->fail_before_write)) return failure(r.size());
    if (holds(r)) {
      faults_->holding = true;
      for (int i = 0; i < 10000 && !faults_->release.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      faults_->holding = false;
      if (faults_->fail_held) return failure(r.size());
    }
    if (take(faults_->stall_next))
      std::this_thread::sleep_for(std::chrono::milliseconds(faults_->stall_ms.load()));
    auto results = faults_->drop_riders ? without_riders(r) : target_->append_batch(r);
    int riders = 0;
    for (const auto& result : results) {
      if (result)
        riders += static_cast<int>(
            std::count(result->riders_written.begin(), result->riders_written.end(), 1));
    }
    faults_->riders_written += riders;
    if (take(faults_->fail_after_write)) return failure(r.size());
    if (riders > 0 && faults_->riders_written.load() > faults_->spare_riders.load() &&
        take(faults_->fail_after_rider)) {
      for (auto& result : results) {
        if (result && std::count(result->riders_written.begin(), result->riders_written.end(), 1))
          result = failure(1).front();
      }
    }
    return results;
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_stream(
      const std::string& s, std::int64_t from, std::size_t limit) override {
    if (take(faults_->stall_reads))
      std::this_thread::sleep_for(std::chrono::milliseconds(faults_->stall_ms.load()));
    auto read = target_->read_stream(s, from, limit);
    faults_->last_read_from = from;
    faults_->last_read_events = read ? read->size() : 0;
    ++faults_->reads;
    return read;
  }
  expected<std::vector<sp::recorded_event>, sp::store_error> read_all(std::int64_t after,
                                                                      std::size_t limit) override {
    return target_->read_all(after, limit);
  }
  expected<bool, sp::store_error> save_snapshot(const sp::snapshot& s) override {
    faults_->snapshots_saved.fetch_add(1);
    return target_->save_snapshot(s);
  }
  expected<std::optional<sp::snapshot>, sp::store_error> load_snapshot(
      const std::string& s) override {
    return target_->load_snapshot(s);
  }

 private:
  bool holds(const std::vector<sp::append_request>& requests) {
    if (faults_->hold_event_type.empty() || faults_->held.load()) return false;
    for (const auto& request : requests) {
      for (const auto& e : request.events) {
        if (e.event_type == faults_->hold_event_type) return !faults_->held.exchange(true);
      }
    }
    return false;
  }
  static bool take(std::atomic<int>& counter) {
    int n = counter.load();
    while (n > 0) {
      if (counter.compare_exchange_weak(n, n - 1)) return true;
    }
    return false;
  }
  std::vector<sp::append_result> without_riders(std::vector<sp::append_request> requests) {
    std::vector<std::size_t> riders;
    for (auto& request : requests) {
      riders.push_back(request.riders.size());
      request.riders.clear();
    }
    auto results = target_->append_batch(requests);
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i]) results[i]->riders_written.assign(riders[i], 0);
    }
    return results;
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

// ---- sagas ----

namespace sg = saga::domain::sagas;

/// Fast runtime options for saga tests: steps time out after a second and retry after ~10 ms.
inline runtime_options saga_fast_options() {
  auto o = fast_options();
  o.saga_steps.step_timeout_ms = 1000;
  o.saga_steps.retry = sg::retry_policy{3, 10, 2.0, 50, 0.2};
  o.saga_steps.compensation_retry = sg::retry_policy{5, 10, 2.0, 50, 0.2};
  o.regions.gateway_timeout = 5s;
  return o;
}

/// Fault switches of a controlled_gateway, per operation.
struct gateway_control {
  enum mode : int {
    pass,  ///< to the simulator (and its ledger)
    fail,  ///< answered !ok at once; nothing recorded
    hang,  ///< answered !ok after hang_ms; nothing recorded (a gateway that never answers in time)
    slow,  ///< to the simulator after hang_ms (recorded, but late)
  };
  std::atomic<int> charges{pass};
  std::atomic<int> refunds{pass};
  std::atomic<int> hang_ms{300};
  std::atomic<int> charge_calls{0};  ///< charge requests that reached the gateway
  std::atomic<int> refund_calls{0};
};

/// The simulated gateway behind fault switches.
class controlled_gateway final : public sp::payment_gateway {
 public:
  controlled_gateway(std::unique_ptr<sp::payment_gateway> inner,
                     std::shared_ptr<gateway_control> control)
      : inner_(std::move(inner)), control_(std::move(control)) {}

  std::vector<sp::gateway_result> execute(const std::vector<sp::gateway_request>& r) override {
    std::vector<sp::gateway_result> out(r.size());
    std::vector<sp::gateway_request> passed;
    std::vector<std::size_t> owners;
    bool wait = false;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const bool charge = r[i].operation == sp::gateway_operation::charge;
      ++(charge ? control_->charge_calls : control_->refund_calls);
      const int mode = (charge ? control_->charges : control_->refunds).load();
      if (mode == gateway_control::pass || mode == gateway_control::slow) {
        wait = wait || mode == gateway_control::slow;
        passed.push_back(r[i]);
        owners.push_back(i);
      } else {
        wait = wait || mode == gateway_control::hang;
        out[i].error = mode == gateway_control::hang ? "gateway did not answer (injected)"
                                                     : "gateway failure (injected)";
      }
    }
    if (wait) std::this_thread::sleep_for(std::chrono::milliseconds(control_->hang_ms.load()));
    if (!passed.empty()) {
      auto results = inner_->execute(passed);
      for (std::size_t k = 0; k < owners.size() && k < results.size(); ++k)
        out[owners[k]] = std::move(results[k]);
    }
    return out;
  }

 private:
  std::unique_ptr<sp::payment_gateway> inner_;
  std::shared_ptr<gateway_control> control_;
};

/// What a saga test runs on: a journal, a ledger and a controlled gateway; runtimes made from
/// it share all three (so a second runtime continues the first one's work).
struct saga_setup {
  shared_journal journal;
  std::shared_ptr<sp::payment_ledger> ledger = sp::make_memory_ledger();
  std::shared_ptr<gateway_control> control = std::make_shared<gateway_control>();
  sp::gateway_options gateway;
  runtime_options options = saga_fast_options();

  runtime_options runtime_settings() const {
    auto o = options;
    o.gateway = [ledger = ledger, control = control, settings = gateway]() {
      return std::unique_ptr<sp::payment_gateway>(std::make_unique<controlled_gateway>(
          sp::make_simulated_gateway(ledger, settings), control));
    };
    return o;
  }
  std::unique_ptr<runtime> start() const {
    return std::make_unique<runtime>(runtime_settings(), journal.factory());
  }
};

/// Collects the final states of finished sagas (latest per saga) and waits for them.
class saga_waiter {
 public:
  explicit saga_waiter(runtime& rt) : rt_(rt), shared_(std::make_shared<shared>()) {
    token_ = rt_.subscribe_finished_sagas([s = shared_](const sg::state& finished) {
      std::lock_guard<std::mutex> lock(s->mutex);
      s->latest[finished.saga_id] = finished;
      ++s->notifications;
      s->changed.notify_all();
    });
  }
  ~saga_waiter() { rt_.unsubscribe_finished_sagas(token_); }
  saga_waiter(const saga_waiter&) = delete;
  saga_waiter& operator=(const saga_waiter&) = delete;

  /// The saga's state once it finished with `status`, or nullopt after `limit`.
  std::optional<sg::state> wait(const std::string& saga_id, sg::status status,
                                std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    std::optional<sg::state> out;
    shared_->changed.wait_for(lock, limit, [&] {
      auto it = shared_->latest.find(saga_id);
      if (it == shared_->latest.end() || it->second.status_ != status) return false;
      out = it->second;
      return true;
    });
    return out;
  }

  /// Waits until `n` sagas finished (in any way); returns their latest states.
  std::map<std::string, sg::state> wait_count(std::size_t n,
                                              std::chrono::milliseconds limit = 20s) {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->changed.wait_for(lock, limit, [&] { return shared_->latest.size() >= n; });
    return shared_->latest;
  }

  std::size_t notifications() const {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return shared_->notifications;
  }

 private:
  struct shared {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::map<std::string, sg::state> latest;
    std::size_t notifications = 0;
  };
  runtime& rt_;
  std::shared_ptr<shared> shared_;
  std::uint64_t token_ = 0;
};

/// An order of `quantity` units of `product` at the catalog price of register_product().
inline order_request order_of(const std::string& product, std::int64_t quantity,
                              const std::string& key = {}) {
  order_request r;
  r.customer_id = "customer-1";
  r.items = {saga::domain::order::line_item{product, "Widget " + product, quantity, 1500}};
  r.shipping_address = "1 Main St";
  r.idempotency_key = key;
  return r;
}

/// Approved charges and refunds the ledger holds for an order.
struct ledger_counts {
  int approved_charges = 0;
  int declined_charges = 0;
  int refunds = 0;
};
inline ledger_counts count_ledger(sp::payment_ledger& ledger, const std::string& order_id) {
  auto entries = ledger.entries_of_order(order_id);
  BOOST_REQUIRE_MESSAGE(entries.has_value(), "ledger read failed");
  ledger_counts c;
  for (const auto& e : *entries) {
    if (e.operation == sp::gateway_operation::charge) {
      ++(e.approved ? c.approved_charges : c.declined_charges);
    } else if (e.approved) {
      ++c.refunds;
    }
  }
  return c;
}

}  // namespace saga::actors::test

#include "actors/quiet_clock.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>

namespace saga::actors {

namespace {

/// CAF's clock bookkeeping (simple_actor_clock) behind a mutex, with a thread that is woken
/// only when the next due time moves earlier. Derives from thread_safe_actor_clock only because
/// coordinator::clock() returns that type; none of that class's own machinery (its ring buffer
/// and its dispatch loop) is used: every operation is overridden.
class quiet_clock final : public caf::detail::thread_safe_actor_clock {
 public:
  using base = caf::detail::simple_actor_clock;

  quiet_clock() = default;
  quiet_clock(const quiet_clock&) = delete;
  quiet_clock& operator=(const quiet_clock&) = delete;
  /// Normally stopped by the coordinator; this covers a system whose start-up failed.
  ~quiet_clock() override {
    if (thread_.joinable()) stop();
  }

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            std::uint64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::set_ordinary_timeout(t, self, type, id);
    wake_if_earliest();
  }

  void set_request_timeout(time_point t, caf::abstract_actor* self, caf::message_id id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::set_request_timeout(t, self, id);
    wake_if_earliest();
  }

  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         std::uint64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::set_multi_timeout(t, self, type, id);
    wake_if_earliest();
  }

  void cancel_ordinary_timeout(caf::abstract_actor* self, caf::atom_value type) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::cancel_ordinary_timeout(self, type);
  }

  void cancel_request_timeout(caf::abstract_actor* self, caf::message_id id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::cancel_request_timeout(self, id);
  }

  void cancel_timeouts(caf::abstract_actor* self) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::cancel_timeouts(self);
  }

  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::schedule_message(t, std::move(receiver), std::move(content));
    wake_if_earliest();
  }

  void schedule_message(time_point t, caf::group target, caf::strong_actor_ptr sender,
                        caf::message content) override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::schedule_message(t, std::move(target), std::move(sender), std::move(content));
    wake_if_earliest();
  }

  void cancel_all() override {
    std::lock_guard<std::mutex> lock(mutex_);
    base::cancel_all();
  }

  void start() {
    thread_ = std::thread([this] {
      caf::detail::set_thread_name("saga.clock");
      run();
    });
  }

  /// Stops the thread and drops whatever is still scheduled (as CAF's clock does on shutdown).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    base::cancel_all();
  }

 private:
  // Ships what is due, then sleeps until the earliest entry is due or an earlier one arrives.
  // Delivery runs under the mutex: it only enqueues into mailboxes, which never calls back into
  // the clock.
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      trigger_expired_timeouts();
      if (schedule().empty()) {
        sleeping_until_ = time_point::max();
        wake_.wait(lock);
      } else {
        sleeping_until_ = schedule().begin()->first;
        wake_.wait_until(lock, sleeping_until_);
      }
    }
  }

  // Caller holds the mutex.
  void wake_if_earliest() {
    if (!schedule().empty() && schedule().begin()->first < sleeping_until_) {
      sleeping_until_ = schedule().begin()->first;
      wake_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  time_point sleeping_until_ = time_point::min();  // until the thread first sleeps: no wakes
  bool stopping_ = false;
  std::thread thread_;
};

template <class Policy>
class quiet_coordinator final : public caf::scheduler::coordinator<Policy> {
 public:
  using super = caf::scheduler::coordinator<Policy>;
  using super::super;

  quiet_clock& clock() noexcept override { return clock_; }

 protected:
  void start() override {
    clock_.start();
    super::start();
  }

  void stop() override {
    super::stop();  // workers and CAF's own (idle) clock thread first
    clock_.stop();
  }

 private:
  quiet_clock clock_;
};

}  // namespace

void use_quiet_clock(caf::actor_system_config& config, bool sharing) {
  if (sharing) {
    config.module_factories.push_back([](caf::actor_system& system) -> caf::actor_system::module* {
      return new quiet_coordinator<caf::policy::work_sharing>(system);
    });
  } else {
    config.module_factories.push_back([](caf::actor_system& system) -> caf::actor_system::module* {
      return new quiet_coordinator<caf::policy::work_stealing>(system);
    });
  }
}

}  // namespace saga::actors

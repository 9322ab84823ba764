// The projection actor: detached, so the blocking journal reads, view writes and LISTEN waits
// run on its own thread. It drives itself with `tick` messages: each tick drains the journal in
// batches (for at most max_drain), then waits up to idle_wait for a notification, then sends
// itself the next tick, so an exit message is handled between two ticks. A tick whose last
// batch applied events without filling up ends there instead, with the next tick due after
// batch_interval (coalescing: see projection_options).
#include "actors/projection.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/log.hpp"

namespace saga::actors {

// ---- monitor ----

projection_monitor::projection_monitor(std::string name) { status_.name = std::move(name); }

void projection_monitor::started() {
  std::lock_guard<std::mutex> lock(mutex_);
  status_.running = true;
}

void projection_monitor::stopped() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.running = false;
    stopped_ = true;
  }
  changed_.notify_all();
}

void projection_monitor::batch_done(const persistence::batch_result& result) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.busy = result.busy;
    status_.checkpoint = std::max(status_.checkpoint, result.checkpoint);
    if (!result.busy && result.events_read > 0) ++status_.batches;
    status_.events_applied += result.events_applied;
    status_.consecutive_failures = 0;
    status_.last_error.clear();
    status_.last_error_code.clear();
    status_.error_position = 0;
  }
  changed_.notify_all();
}

void projection_monitor::batch_failed(const persistence::projection_error& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++status_.failures;
  ++status_.consecutive_failures;
  status_.last_error = error.message;
  status_.last_error_code = std::string(persistence::to_string(error.code));
  status_.error_position = error.position;
}

projection_status projection_monitor::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

bool projection_monitor::wait_for(std::int64_t position,
                                  std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_until(lock, deadline, [&] { return status_.checkpoint >= position || stopped_; });
  return status_.checkpoint >= position;
}

// ---- actor ----

namespace {

using tick_atom = caf::atom_constant<caf::atom("proj_tick")>;

struct projection_state {
  projection_options options;
  std::shared_ptr<projection_monitor> monitor;
  std::unique_ptr<persistence::read_model_projector> projector;
  std::chrono::milliseconds backoff{0};
  bool busy_logged = false;
  static inline const char* name = "projection";
};

using projection_self = caf::stateful_actor<projection_state>*;

void failed(projection_self self, const persistence::projection_error& error) {
  auto& st = self->state;
  st.monitor->batch_failed(error);
  st.backoff = st.backoff.count() == 0 ? st.options.retry_backoff
                                       : std::min(st.backoff * 2, st.options.max_retry_backoff);
  st.backoff = std::max(st.backoff, std::chrono::milliseconds(1));
  const auto& name = st.options.projector.name;
  if (error.position > 0) {
    detail::log().error("projection {}: {} error at journal position {}: {}; retrying in {} ms",
                        name, persistence::to_string(error.code), error.position, error.message,
                        st.backoff.count());
  } else {
    detail::log().error("projection {}: {} error: {}; retrying in {} ms", name,
                        persistence::to_string(error.code), error.message, st.backoff.count());
  }
  self->delayed_send(self, st.backoff, tick_atom::value);
}

void succeeded(projection_self self, const persistence::batch_result& result) {
  auto& st = self->state;
  if (st.backoff.count() != 0) {
    detail::log().info("projection {}: recovered at checkpoint {}", st.options.projector.name,
                       result.checkpoint);
    st.backoff = std::chrono::milliseconds(0);
  }
  // Two instances of one name (two nodes) alternate all the time: say so once, not per batch.
  if (result.busy && !st.busy_logged) {
    detail::log().info("projection {}: another instance holds the checkpoint; sharing the work",
                       st.options.projector.name);
    st.busy_logged = true;
  }
  st.monitor->batch_done(result);
}

/// One tick: drain, then wait for the journal; schedules the next tick either way.
void tick(projection_self self) {
  auto& st = self->state;
  try {
    if (!st.projector) {
      st.projector = std::make_unique<persistence::read_model_projector>(st.options.projector);
    }
    const auto until = std::chrono::steady_clock::now() + st.options.max_drain;
    for (;;) {
      auto result = st.projector->run_batch();
      if (!result) return failed(self, result.error());
      succeeded(self, *result);
      if (!result->busy && !result->full && result->events_read > 0 &&
          st.options.batch_interval.count() > 0) {
        self->delayed_send(self, st.options.batch_interval, tick_atom::value);
        return;
      }
      if (result->busy || !result->full) break;
      if (std::chrono::steady_clock::now() >= until) {
        self->send(self, tick_atom::value);  // more to do, but let the mailbox in first
        return;
      }
    }
    auto woken = st.projector->wait_for_journal(st.options.idle_wait);
    if (!woken) return failed(self, woken.error());
    self->send(self, tick_atom::value);
  } catch (const std::exception& e) {
    // The projector reports errors as values; anything thrown here is unexpected, but a
    // projection must not die of it: drop the connection and retry like any failure.
    st.projector.reset();
    failed(self,
           persistence::projection_error{persistence::projection_errc::internal,
                                         std::string("unexpected exception: ") + e.what(), 0});
  } catch (...) {
    st.projector.reset();
    failed(self, persistence::projection_error{persistence::projection_errc::internal,
                                               "unexpected exception", 0});
  }
}

caf::behavior projection_actor(projection_self self, projection_options options,
                               std::shared_ptr<projection_monitor> monitor) {
  self->state.options = std::move(options);
  self->state.monitor = monitor;
  monitor->started();
  self->attach_functor([monitor](const caf::error&) { monitor->stopped(); });
  self->send(self, tick_atom::value);
  return {
      [=](tick_atom) { tick(self); },
  };
}

}  // namespace

caf::actor spawn_projection(caf::actor_system& system, projection_options options,
                            std::shared_ptr<projection_monitor> monitor) {
  return system.spawn<caf::detached>(projection_actor, std::move(options), std::move(monitor));
}

}  // namespace saga::actors

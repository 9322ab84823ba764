// Region implementation, generic over the aggregate traits. Commands and queries for one id are
// forwarded in order, up to region_options::max_in_flight at a time, so that an actor can decide
// queued commands together and answer queries while an append is in flight. After a crash the
// items that were in flight are re-sent one at a time (safe: idempotency keys), so the region
// knows which one crashed the actor: a command that crashes it max_command_attempts times is
// answered as poison. An actor that exits normally stopped itself while idle (self-passivation):
// it is dropped without counting a crash, and re-activated at once when items are waiting for it.
#include "actors/region.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <list>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/inspect.hpp"
#include "actors/log.hpp"
#include "actors/saga_inspect.hpp"

namespace saga::actors {
namespace {

using clock = std::chrono::steady_clock;

/// How often to look for idle actors (never a busy loop).
std::chrono::milliseconds check_interval(const region_options& options) {
  return std::max(options.passivation_check, std::chrono::milliseconds(1));
}

template <class Traits>
struct region_state {
  using command_answer = command_reply<typename Traits::event>;
  using query_answer = state_reply<typename Traits::state>;

  struct item {
    bool is_query = false;
    command_request<Traits> command;
    caf::typed_response_promise<command_answer> command_promise;
    caf::typed_response_promise<query_answer> query_promise;
    int attempts = 0;       // crashes this item caused (counted only when it was alone)
    std::uint32_t seq = 0;  // per entity: matches an answer to its item
    clock::time_point sent_at;
  };

  // One per id in the directory, so kept small: the flags share a word with `crashes`.
  struct entity {
    aggregate_actor<Traits> child;  // null while restarting
    std::list<item> queue;  // the first `in_flight` items are sent (no allocation when empty)
    std::uint64_t generation = 0;  // changes on every (re)start: stale answers are ignored
    clock::time_point last_active = clock::now();
    std::int32_t crashes = 0;    // consecutive, reset by a successful recovery
    std::uint32_t next_seq = 0;  // of the next item sent
    std::uint16_t in_flight = 0;
    // Items at the front that were in flight when the actor crashed: they go one at a time
    // until each has been answered, so a crash can be blamed on one of them.
    std::uint16_t suspects = 0;
    bool ready = false;  // recovered
    bool restarting = false;
  };

  std::shared_ptr<const aggregate_context> context;
  region_options options;  // this region's own settings (actors use context->options)
  std::unordered_map<std::string, entity> entities;
  // Child (by actor id: unique in the system, and an integer key keeps the node small) → its
  // id: the key of its entry in `entities` (nodes are stable; an entry of by_addr is always
  // erased before the entity it points into), so the id is not stored twice.
  std::unordered_map<caf::actor_id, const std::string*> by_addr;
  std::uint64_t generations = 0;
  region_stats stats;
  // Actors activated and not yet recovered, by deadline (recovery_timeout is the same for all,
  // so activation order is deadline order); entries of actors that recovered meanwhile are
  // dropped from the front as they are met. One timer runs while any entry is left.
  std::deque<std::pair<clock::time_point, caf::actor_id>> recovering;
  bool recovery_timer_armed = false;
  // Items are sent without a CAF request timeout (in CAF 0.17 each one is a round trip through
  // the clock thread, and stays there until it expires even when answered): one periodic check
  // runs while anything is in flight instead (check_timeouts).
  bool timeout_timer_armed = false;

  region_state() = default;
  region_state(const region_state&) = delete;
  region_state& operator=(const region_state&) = delete;
  ~region_state() {
    // Children are monitored, not linked: stop them with the region.
    for (auto& [id, e] : entities) {
      if (e.child) caf::anon_send_exit(e.child, caf::exit_reason::user_shutdown);
    }
  }

  static inline const char* name = "region";
};

template <class Traits>
using region_t = region_actor<Traits>;
template <class Traits>
using region_self = typename region_t<Traits>::template stateful_pointer<region_state<Traits>>;

template <class Traits>
class region_logic {
 public:
  using state = region_state<Traits>;
  using item = typename state::item;
  using entity = typename state::entity;
  using self_ptr = region_self<Traits>;

  static void fail(item& it, failure_code code, const std::string& message) {
    if (it.is_query) {
      typename state::query_answer r;
      r.failure = code;
      r.message = message;
      it.query_promise.deliver(std::move(r));
    } else {
      typename state::command_answer r;
      r.kind = reply_kind::failed;
      r.failure = code;
      r.message = message;
      it.command_promise.deliver(std::move(r));
    }
  }

  static void enqueue(self_ptr self, const std::string& id, item it) {
    auto& st = self->state;
    auto& e = st.entities[id];
    if (e.queue.size() >= st.options.max_buffered) {
      fail(it, failure_code::overloaded,
           std::string(Traits::stream_type) + " " + id + ": too many buffered commands");
      return;
    }
    // A new entity whose first item is a command for a stream its sender just created: the
    // actor may start without reading the journal (see command_request::fresh).
    const bool fresh =
        e.queue.empty() && !e.child && !e.restarting && !it.is_query && it.command.fresh;
    e.queue.push_back(std::move(it));
    if (!e.child && !e.restarting) activate(self, id, e, fresh);
    pump(self, id);
  }

  static void activate(self_ptr self, const std::string& id, entity& e, bool fresh = false) {
    auto& st = self->state;
    e.generation = ++st.generations;
    e.ready = false;
    e.in_flight = 0;
    e.restarting = false;
    e.child = spawn_aggregate<Traits>(self->system(), id, st.context);
    self->monitor(e.child);
    st.by_addr[e.child.id()] = &st.entities.find(id)->first;
    ++st.stats.spawned;
    if (fresh) {
      // The actor recovers lazily on its first message; the fresh command (sent next, by
      // pump) lets it skip the read, so there is no recovery to wait for.
      e.ready = true;
      e.last_active = clock::now();
      return;
    }
    // Answered only after recovery, so the answer (see on_ready) is the "recovered" signal.
    // A plain message, not a request: CAF 0.17 keeps a request's timeout in its clock until it
    // expires, answered or not, which costs ~100 bytes per activation for the whole timeout.
    // The region bounds the recovery itself (check_recoveries); a failed read stops the actor
    // (the down handler restarts it).
    self->send(e.child, ready_atom::value);
    e.last_active = clock::now();
    st.recovering.emplace_back(e.last_active + st.options.recovery_timeout, e.child.id());
    if (!st.recovery_timer_armed) {
      st.recovery_timer_armed = true;
      self->delayed_send(self, st.options.recovery_timeout, recovery_check_atom::value);
    }
  }

  /// The entity whose current child is `child` and has not recovered yet, if any.
  static entity* still_recovering(self_ptr self, caf::actor_id child) {
    auto& st = self->state;
    auto addr = st.by_addr.find(child);
    if (addr == st.by_addr.end()) return nullptr;
    auto found = st.entities.find(*addr->second);
    if (found == st.entities.end()) return nullptr;
    auto& e = found->second;
    if (!e.child || e.child.id() != child || e.ready) return nullptr;
    return &e;
  }

  /// Drops the leading entries of actors that are no longer recovering.
  static void drop_recovered(self_ptr self) {
    auto& recovering = self->state.recovering;
    while (!recovering.empty() && still_recovering(self, recovering.front().second) == nullptr)
      recovering.pop_front();
  }

  /// Stops the actors whose recovery is overdue, handling each as a crash (restart with backoff,
  /// within the budget), and re-arms the timer for the next deadline, if any.
  static void check_recoveries(self_ptr self) {
    auto& st = self->state;
    st.recovery_timer_armed = false;
    const auto now = clock::now();
    while (!st.recovering.empty() && st.recovering.front().first <= now) {
      const auto child = st.recovering.front().second;
      st.recovering.pop_front();
      if (auto* e = still_recovering(self, child)) {
        // Handled as a crash here rather than when the actor is down: an actor awaiting its
        // journal read handles nothing else, not even an exit message, until the read returns.
        // It only reads, so it may finish that read while its replacement starts.
        const auto id = *st.by_addr.find(child)->second;
        detail::log().warn("{} {}: recovery took longer than {} ms; restarting it",
                           Traits::stream_type, id, st.options.recovery_timeout.count());
        self->demonitor(e->child.address());
        st.by_addr.erase(child);
        self->send_exit(e->child, caf::exit_reason::kill);
        on_crashed(self, id, *e, caf::make_error(caf::sec::request_timeout));
      }
    }
    drop_recovered(self);
    if (st.recovering.empty()) return;
    st.recovery_timer_armed = true;
    self->delayed_send(
        self, std::chrono::ceil<std::chrono::milliseconds>(st.recovering.front().first - now),
        recovery_check_atom::value);
  }

  /// The answer to activate's ready message: the sender (if still the current child) recovered.
  static void on_ready(self_ptr self, const caf::strong_actor_ptr& sender) {
    auto& st = self->state;
    if (!sender) return;
    auto addr = st.by_addr.find(sender->id());
    if (addr == st.by_addr.end()) return;  // passivated or replaced meanwhile
    const auto& id = *addr->second;
    auto found = st.entities.find(id);
    if (found == st.entities.end() || found->second.child.id() != addr->first) return;
    auto& e = found->second;
    e.ready = true;
    e.crashes = 0;
    e.last_active = clock::now();
    drop_recovered(self);
    pump(self, id);
  }

  /// Sends buffered items to a ready actor, in order, while the window has room: one at a time
  /// while suspects of a crash are left, else up to max_in_flight.
  static void pump(self_ptr self, const std::string& id) {
    auto& st = self->state;
    auto found = st.entities.find(id);
    if (found == st.entities.end()) return;
    auto& e = found->second;
    if (!e.ready) return;
    const std::size_t window =
        e.suspects > 0 ? 1 : std::clamp<std::size_t>(st.options.max_in_flight, 1, 1024);
    if (e.in_flight >= window || e.in_flight >= e.queue.size()) return;
    auto next = std::next(e.queue.begin(), e.in_flight);
    const auto now = clock::now();
    e.last_active = now;
    const auto generation = e.generation;
    arm_timeout_check(self);
    for (; next != e.queue.end() && e.in_flight < window; ++next) {
      ++e.in_flight;
      next->sent_at = now;
      const auto seq = next->seq = e.next_seq++;
      auto on_error = [=](caf::error& err) { on_request_error(self, id, generation, seq, err); };
      if (next->is_query) {
        self->request(e.child, caf::infinite, state_query<Traits>{id})
            .then(
                [=](typename state::query_answer& answer) {
                  if (auto it = answered(self, id, generation, seq)) {
                    (*it)->query_promise.deliver(std::move(answer));
                    done(self, id, *it);
                  }
                },
                on_error);
      } else {
        self->request(e.child, caf::infinite, next->command)
            .then(
                [=](typename state::command_answer& answer) {
                  if (auto it = answered(self, id, generation, seq)) {
                    (*it)->command_promise.deliver(std::move(answer));
                    done(self, id, *it);
                  }
                },
                on_error);
      }
    }
  }

  using item_iterator = typename std::list<item>::iterator;

  /// How often check_timeouts runs while items are in flight: an unanswered item is failed
  /// between command_timeout and 1.25 × command_timeout after it was sent.
  static std::chrono::milliseconds timeout_check_interval(const region_options& options) {
    return std::max(options.command_timeout / 4, std::chrono::milliseconds(1));
  }

  static void arm_timeout_check(self_ptr self) {
    auto& st = self->state;
    if (st.timeout_timer_armed) return;
    st.timeout_timer_armed = true;
    self->delayed_send(self, timeout_check_interval(st.options), timeout_check_atom::value);
  }

  /// Fails the items sent longer than command_timeout ago (a late answer is then ignored) and
  /// moves on to the next items; keeps checking while anything is in flight.
  static void check_timeouts(self_ptr self) {
    auto& st = self->state;
    st.timeout_timer_armed = false;
    const auto now = clock::now();
    std::vector<std::tuple<std::string, std::uint64_t, std::uint32_t>> overdue;
    bool in_flight = false;
    for (auto& [id, e] : st.entities) {
      if (e.in_flight == 0) continue;
      in_flight = true;
      auto it = e.queue.begin();
      for (std::uint16_t k = 0; k < e.in_flight && it != e.queue.end(); ++k, ++it) {
        if (now - it->sent_at >= st.options.command_timeout)
          overdue.emplace_back(id, e.generation, it->seq);
      }
    }
    for (const auto& [id, generation, seq] : overdue) {
      if (auto it = answered(self, id, generation, seq)) {
        fail(**it, failure_code::timeout,
             std::string(Traits::stream_type) + " " + id + ": no answer in time");
        done(self, id, *it);
      }
    }
    if (in_flight) arm_timeout_check(self);
  }

  /// The in-flight item of `id` sent as `seq`, if an answer for `generation` still applies to it.
  static std::optional<item_iterator> answered(self_ptr self, const std::string& id,
                                               std::uint64_t generation, std::uint32_t seq) {
    auto found = self->state.entities.find(id);
    if (found == self->state.entities.end()) return std::nullopt;
    auto& e = found->second;
    if (e.generation != generation) return std::nullopt;
    auto it = e.queue.begin();
    for (std::uint16_t k = 0; k < e.in_flight && it != e.queue.end(); ++k, ++it) {
      if (it->seq == seq) return it;
    }
    return std::nullopt;
  }

  static void done(self_ptr self, const std::string& id, item_iterator it) {
    auto& e = self->state.entities[id];
    if (e.suspects > 0 && it == e.queue.begin()) --e.suspects;
    e.queue.erase(it);
    --e.in_flight;
    e.last_active = clock::now();
    pump(self, id);
  }

  static void on_request_error(self_ptr self, const std::string& id, std::uint64_t generation,
                               std::uint32_t seq, caf::error& err) {
    auto it = answered(self, id, generation, seq);
    if (!it) return;
    if (err == caf::sec::request_receiver_down) return;  // the down handler takes over
    // Items are sent untimed (check_timeouts fails overdue ones), so this is no timeout.
    fail(**it, failure_code::actor_unavailable, self->system().render(err));
    done(self, id, *it);
  }

  static void on_down(self_ptr self, caf::down_msg& dm) {
    auto& st = self->state;
    auto addr = st.by_addr.find(dm.source.id());
    if (addr == st.by_addr.end()) return;  // passivated
    const auto id = *addr->second;
    st.by_addr.erase(addr);
    auto found = st.entities.find(id);
    if (found == st.entities.end() || found->second.child.address() != dm.source) return;
    auto& e = found->second;
    if (!dm.reason || dm.reason == caf::exit_reason::normal) {
      on_stopped_itself(self, id, e);
      return;
    }
    on_crashed(self, id, e, dm.reason);
  }

  /// The child of `e` is gone (or given up on) abnormally: restart it with backoff, answer a
  /// poison command, or give up after the restart budget. The child is no longer in by_addr.
  static void on_crashed(self_ptr self, const std::string& id, entity& e,
                         const caf::error& reason) {
    auto& st = self->state;
    const auto& options = st.options;
    e.child = nullptr;
    e.ready = false;
    e.generation = ++st.generations;  // answers of the dead actor no longer apply
    ++st.stats.crashes;
    std::string correlation;
    if (e.in_flight > 0 && !e.queue.empty() && !e.queue.front().is_query) {
      correlation = e.queue.front().command.meta.correlation_id;
    }
    // The actor's exception handler already logged the crash with its cause; only exits it
    // could not log (a kill, a failed recovery) are logged here.
    if (reason != caf::sec::runtime_error) {
      detail::log().error("{} {} went down (correlation id '{}'): {}", Traits::stream_type, id,
                          correlation, self->system().render(reason));
    }
    // Only an item that was alone in flight is blamed; several become suspects, re-sent one by
    // one (see pump), so the one that crashes the actor again is then alone.
    const auto in_flight = e.in_flight;
    e.in_flight = 0;
    e.suspects = std::max(e.suspects, in_flight);
    if (in_flight == 1) {
      auto& front = e.queue.front();
      if (++front.attempts >= options.max_command_attempts) {
        detail::log().error("{} {}: poison command dropped after {} crashes (correlation id '{}')",
                            Traits::stream_type, id, front.attempts, correlation);
        ++st.stats.poison;
        fail(front, failure_code::poison_command,
             std::string(Traits::stream_type) + " " + id + ": the command crashed the actor " +
                 std::to_string(front.attempts) + " times");
        e.queue.pop_front();
        --e.suspects;
      }
    }
    if (++e.crashes > options.max_restarts) {
      detail::log().error("{} {}: restart budget exhausted after {} crashes; failing {} buffered",
                          Traits::stream_type, id, e.crashes - 1, e.queue.size());
      ++st.stats.gave_up;
      for (auto& it : e.queue) {
        fail(it, failure_code::actor_unavailable,
             std::string(Traits::stream_type) + " " + id + " keeps crashing on recovery");
      }
      st.entities.erase(id);
      return;
    }
    auto delay = options.restart_backoff;
    for (int i = 1; i < e.crashes && delay < options.max_restart_backoff; ++i) delay *= 2;
    delay = std::min(delay, options.max_restart_backoff);
    e.restarting = true;
    ++st.stats.restarts;
    self->delayed_send(self, delay, restart_atom::value, id, e.generation);
  }

  /// A normal exit: the actor stopped itself while idle. An item in flight hit the dying actor
  /// (it never handled it: it only stops with nothing left to do), so it is sent again to a
  /// fresh activation without counting an attempt.
  static void on_stopped_itself(self_ptr self, const std::string& id, entity& e) {
    auto& st = self->state;
    e.child = nullptr;
    e.ready = false;
    e.in_flight = 0;
    e.generation = ++st.generations;  // a late request_receiver_down no longer applies
    ++st.stats.passivations;
    if (e.queue.empty()) {
      st.entities.erase(id);
      return;
    }
    activate(self, id, e);
  }

  static void on_restart(self_ptr self, const std::string& id, std::uint64_t generation) {
    auto found = self->state.entities.find(id);
    if (found == self->state.entities.end()) return;
    auto& e = found->second;
    if (e.generation != generation || !e.restarting) return;
    activate(self, id, e);
  }

  static void passivate_idle(self_ptr self) {
    auto& st = self->state;
    const auto now = clock::now();
    const auto limit = st.options.passivate_after;
    for (auto it = st.entities.begin(); it != st.entities.end();) {
      auto& e = it->second;
      if (e.child && e.ready && e.in_flight == 0 && e.queue.empty() &&
          now - e.last_active >= limit) {
        self->demonitor(e.child.address());
        st.by_addr.erase(e.child.id());
        self->send_exit(e.child, caf::exit_reason::user_shutdown);
        ++st.stats.passivations;
        it = st.entities.erase(it);
      } else {
        ++it;
      }
    }
    self->delayed_send(self, check_interval(st.options), idle_atom::value);
  }
};

template <class Traits>
typename region_t<Traits>::behavior_type region_behavior(
    region_self<Traits> self, std::shared_ptr<const aggregate_context> context,
    region_options region_settings) {
  using L = region_logic<Traits>;
  self->state.context = std::move(context);
  self->state.options = std::move(region_settings);
  self->set_down_handler([=](caf::down_msg& dm) { L::on_down(self, dm); });
  const auto& options = self->state.options;
  if (options.passivate_after.count() > 0) {
    self->delayed_send(self, check_interval(options), idle_atom::value);
  }
  return {
      [=](command_request<Traits>& request) -> caf::result<command_reply<typename Traits::event>> {
        typename L::item it;
        it.command_promise =
            self->template make_response_promise<command_reply<typename Traits::event>>();
        auto promise = it.command_promise;
        const auto id = request.id;
        it.command = std::move(request);
        L::enqueue(self, id, std::move(it));
        return promise;
      },
      [=](state_query<Traits>& query) -> caf::result<state_reply<typename Traits::state>> {
        typename L::item it;
        it.is_query = true;
        it.query_promise =
            self->template make_response_promise<state_reply<typename Traits::state>>();
        auto promise = it.query_promise;
        L::enqueue(self, query.id, std::move(it));
        return promise;
      },
      [=](stats_atom) {
        auto stats = self->state.stats;
        stats.active = 0;
        stats.buffered = 0;
        for (const auto& [id, e] : self->state.entities) {
          if (e.child) ++stats.active;
          stats.buffered += e.queue.size();
        }
        return stats;
      },
      [=](idle_atom) { L::passivate_idle(self); },
      [=](ready_atom) { L::on_ready(self, self->current_sender()); },
      [=](recovery_check_atom) { L::check_recoveries(self); },
      [=](timeout_check_atom) { L::check_timeouts(self); },
      [=](restart_atom, const std::string& id, std::uint64_t generation) {
        L::on_restart(self, id, generation);
      },
  };
}

}  // namespace

template <class Traits>
region_actor<Traits> spawn_region(caf::actor_system& system,
                                  std::shared_ptr<const aggregate_context> context,
                                  region_options options) {
  return system.spawn(region_behavior<Traits>, std::move(context), std::move(options));
}

template <class Traits>
region_actor<Traits> spawn_region(caf::actor_system& system,
                                  std::shared_ptr<const aggregate_context> context) {
  auto options = context->options;
  return spawn_region<Traits>(system, std::move(context), std::move(options));
}

#define SAGA_INSTANTIATE_REGION(TRAITS)                                                         \
  template region_actor<TRAITS> spawn_region<TRAITS>(caf::actor_system&,                        \
                                                     std::shared_ptr<const aggregate_context>); \
  template region_actor<TRAITS> spawn_region<TRAITS>(                                           \
      caf::actor_system&, std::shared_ptr<const aggregate_context>, region_options);

SAGA_INSTANTIATE_REGION(order_traits)
SAGA_INSTANTIATE_REGION(payment_traits)
SAGA_INSTANTIATE_REGION(inventory_traits)
SAGA_INSTANTIATE_REGION(user_traits)
SAGA_INSTANTIATE_REGION(saga_traits)
#undef SAGA_INSTANTIATE_REGION

}  // namespace saga::actors

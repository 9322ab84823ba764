// Saga actors: the generic event-sourced actor running domain::sagas::decide with hooks that
// act on each committed transition — step commands go to the order, payment and inventory
// regions as requests bounded by the step's durable deadline timer (the next forward step's
// commands already while the transition that starts it is being written, when decide allows it: see
// send_commands::before_commit), their answers come back through the
// saga's own mailbox as ordinary inputs, timers are delayed messages to itself, and after a
// (re)start recover() re-sends what was pending and re-arms the durable timers. A saga that is
// no longer RUNNING or COMPENSATING stops itself once idle; the next message reactivates it.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "actors/aggregate_logic.hpp"
#include "actors/saga_inspect.hpp"
#include "actors/saga_rider.hpp"
#include "actors/services.hpp"

namespace saga::actors {
namespace {

namespace sg = domain::sagas;
using std::chrono::milliseconds;

/// Which answer an input quotes: one target of one attempt of one step phase.
struct step_ref {
  int step = 0;
  sg::phase phase = sg::phase::forward;
  int attempt = 1;
  int target = 0;
  sg::aggregate_kind kind = sg::aggregate_kind::order;
  std::string aggregate_id;
  std::string action;  ///< command_name(): "reserve", "refund", …
};

struct input_names {
  const char* operator()(const sg::start&) const { return "start"; }
  const char* operator()(const sg::target_succeeded&) const { return "target_succeeded"; }
  const char* operator()(const sg::target_failed&) const { return "target_failed"; }
  const char* operator()(const sg::deadline_reached&) const { return "deadline_reached"; }
  const char* operator()(const sg::retry_due&) const { return "retry_due"; }
  const char* operator()(const sg::manual_retry&) const { return "manual_retry"; }
  const char* operator()(const sg::manual_compensate&) const { return "manual_compensate"; }
  const char* operator()(const sg::cancel_requested&) const { return "cancel_requested"; }
};

std::string describe(const step_ref& ref) {
  return std::string(sg::to_string(ref.kind)) + " " + ref.aggregate_id;
}

sg::input succeeded(const step_ref& ref) {
  return sg::target_succeeded{ref.step, ref.phase, ref.attempt, ref.target};
}

sg::input failed_input(const step_ref& ref, std::string reason, bool retryable) {
  return sg::target_failed{ref.step,   ref.phase,         ref.attempt,
                           ref.target, std::move(reason), retryable};
}

/// A business outcome inside an accepted or replayed answer that fails the step for good.
std::optional<std::string> refusal_in(const std::vector<domain::order::event>&) {
  return std::nullopt;
}
std::optional<std::string> refusal_in(const std::vector<domain::payment::event>& events) {
  for (const auto& e : events)
    if (const auto* f = std::get_if<domain::payment::payment_failed>(&e))
      return "payment declined: " + f->reason;
  return std::nullopt;
}
std::optional<std::string> refusal_in(const std::vector<domain::inventory::event>& events) {
  for (const auto& e : events) {
    if (const auto* f = std::get_if<domain::inventory::inventory_reservation_failed>(&e)) {
      return "insufficient stock of product " + f->product_id + ": requested " +
             std::to_string(f->quantity) + ", available " + std::to_string(f->available);
    }
  }
  return std::nullopt;
}

/// A refusal that means the step's goal already holds: an undo with nothing (left) to undo, or
/// a confirmation of an order that is already confirmed (by an admin, say).
bool already_done(const step_ref& ref, domain::rejection_code code) {
  using rc = domain::rejection_code;
  if (ref.phase == sg::phase::forward)
    return ref.action == "confirm" && code == rc::already_confirmed;
  if (ref.action == "refund") return code == rc::not_paid || code == rc::already_refunded;
  if (ref.action == "release") return code == rc::unknown_product;
  if (ref.action == "cancel") return code == rc::already_cancelled;
  return false;
}

/// The input for an answer that carries `events` (accepted or replayed).
template <class Event>
sg::input input_for_events(const std::vector<Event>& events, const step_ref& ref) {
  if (auto refusal = refusal_in(events)) return failed_input(ref, *refusal, false);
  return succeeded(ref);
}

template <class Event>
sg::input input_for(const command_reply<Event>& reply, const step_ref& ref) {
  switch (reply.kind) {
    case reply_kind::accepted:
    case reply_kind::replayed:
      return input_for_events(reply.events, ref);
    case reply_kind::rejected:
      if (already_done(ref, reply.rejection)) return succeeded(ref);
      return failed_input(ref, describe(ref) + " refused " + ref.action + ": " + reply.message,
                          false);
    case reply_kind::failed:
      break;
  }
  const auto code = std::string(to_string(reply.failure));
  return failed_input(
      ref,
      describe(ref) + ": " +
          (reply.failure == failure_code::timeout ? "timed out (" + code + ")" : code) +
          (reply.message.empty() ? "" : ": " + reply.message),
      true);
}

/// The saga as it will be when a command's answer arrives if nothing else happens meanwhile:
/// what the command's rider decides on.
struct rider_base {
  const sg::saga_definition* def = nullptr;
  sg::state state;
  std::string stream_id;
  std::int64_t version = 0;   ///< the saga stream's version once `state` is committed
  std::string last_event_id;  ///< of the event at `version`
};

using detail::saga_receipt;

/// A step command's rider: given the events the target is about to append, the saga's answer
/// to them (decide on rider_base) goes into the same transaction, on top of exactly the saga
/// event the base ends with. The saga then only applies it (adopt) instead of appending it
/// after the answer, which saves a journal round per step. If anything else happened to the
/// saga meanwhile, the store refuses the rider and the answer is handled as usual.
///
/// Once the target hands that transaction to the writer, the rider tells the saga (an early
/// receipt), so the commands the answer's transition lets go out before its commit
/// (send_commands::before_commit) leave then, not one journal round later when the answer
/// comes back: the next step's append can then share the writer's next batch.
template <class Event>
class saga_rider final : public command_rider<Event> {
 public:
  saga_rider(std::shared_ptr<const rider_base> base, step_ref ref,
             std::shared_ptr<const aggregate_context> context, persistence::event_metadata meta,
             double random01, aggregate_actor<saga_traits> saga)
      : base_(std::move(base)),
        ref_(std::move(ref)),
        context_(std::move(context)),
        meta_(std::move(meta)),
        random01_(random01),
        saga_(std::move(saga)) {}

  std::optional<rider_write> ride(const std::vector<Event>& events) const override {
    return detail::saga_rider_write(*base_->def, base_->state, input_for_events(events, ref_),
                                    base_->stream_id, base_->version, base_->last_event_id, meta_,
                                    context_->services->now(), random01_);
  }

  void submitted(const std::shared_ptr<const rider_receipt>& receipt) const override {
    // Through the saga's mailbox: ahead of the answer, which the target sends after the commit.
    command_meta meta{meta_.correlation_id, meta_.causation_id, {}, {}};
    caf::anon_send(saga_, command_request<saga_traits>{
                              base_->state.saga_id,
                              saga_command{{}, succeeded(ref_), receipt, true}, std::move(meta)});
  }

 private:
  std::shared_ptr<const rider_base> base_;
  step_ref ref_;
  std::shared_ptr<const aggregate_context> context_;
  persistence::event_metadata meta_;
  double random01_;
  aggregate_actor<saga_traits> saga_;
};

}  // namespace

std::optional<rider_write> detail::saga_rider_write(
    const sg::saga_definition& def, const sg::state& state, const sg::input& in,
    const std::string& stream_id, std::int64_t version, const std::string& after_event_id,
    const persistence::event_metadata& meta, domain::timestamp now, double random01) {
  auto decided = sg::decide(def, state, in, now, random01);
  if (!decided || decided->events.empty()) return std::nullopt;
  rider_write out;
  auto& request = out.request;
  request.stream_id = stream_id;
  request.stream_type = saga_traits::stream_type;
  request.expected_version = version;
  request.after_event_id = after_event_id;
  for (const auto& e : decided->events) request.events.push_back(detail::encode_new_event(e, meta));
  auto receipt = std::make_shared<saga_receipt>();
  receipt->expected_version = version;
  receipt->events = std::move(decided->events);
  receipt->actions = std::move(decided->actions);
  receipt->last_event_id = request.events.back().event_id;
  out.receipt = std::move(receipt);
  return out;
}

template <>
struct hook_data<saga_traits> {
  std::vector<sg::action> actions;  ///< of the last decide; run once its events are committed
  bool resync_armed = false;
  milliseconds resync_backoff{0};
  /// Durable timers (deadlines, retries) not delivered yet. One CAF timer per saga serves them
  /// all (each CAF timer is a round trip through the clock thread): `wake_at` is when the
  /// earliest one armed fires (0: none).
  std::vector<sg::arm_timer> timers;
  domain::timestamp wake_at = 0;
  /// An anchored start being written; kept until it commits, so that a start whose append
  /// failed is tried again (its first step may have gone out already: see sg::start::anchored).
  std::optional<command_request<saga_traits>> unstarted;
  /// Pipelined sends of the job being decided (send_commands::before_commit): they go out
  /// once its append is queued (on_submitted), a single command with a rider built on it.
  std::vector<sg::send_commands> early;
  std::string early_correlation_id;
  std::optional<rider_base> early_base;
  /// The append in flight: the version it ends at and its last event's id.
  std::int64_t submitted_version = -1;
  std::string submitted_last_id;
  /// The saga's last committed event as far as this actor knows it (its own append, an adopted
  /// rider, or a read of the journal): riders of commands sent from that state build on it.
  std::int64_t last_version = -1;
  std::string last_event_id;
  /// The receipt whose pipelined sends went out early (saga_rider::submitted), sent while the
  /// saga was at `early_version`: when it is adopted, they are not sent again.
  std::shared_ptr<const rider_receipt> early_receipt;
  std::int64_t early_version = -1;
  /// Answers to those sends that came back before the receipt was adopted: decided on the
  /// state before it they would be stale inputs, so they wait until the state moves on.
  struct held_answer {
    sg::input in;
    std::string causation;
    std::shared_ptr<const rider_receipt> receipt;
  };
  std::vector<held_answer> held;
  /// The job being decided applies events a rider wrote (see saga_rider).
  bool adopting = false;
  std::string adopted_last_id;
  /// The version whose actions this actor has run. A re-read can bring in events a rider wrote
  /// whose answer never came as such (it timed out, say): then the saga resumes from its state.
  std::int64_t acted_version = 0;
  bool foreign = false;
};

template <>
struct actor_hooks<saga_traits> : default_hooks<saga_traits> {
  using L = detail::logic<saga_traits>;

  /// Events of a saga carry its correlation id even when the sender (an operator) did not.
  template <class Self, class Job, class Next>
  static void prepare(Self self, Job job, Next next) {
    auto& st = self->state;
    auto& meta = job.request.meta;
    const auto* begin = std::get_if<sg::start>(&job.request.command.input);
    if (meta.correlation_id.empty()) {
      if (st.aggregate.status_ != sg::status::none) {
        meta.correlation_id = st.aggregate.correlation_id;
      } else if (begin != nullptr) {
        meta.correlation_id = begin->correlation_id;
      }
    }
    if (st.aggregate.status_ == sg::status::none && begin != nullptr && begin->anchored)
      st.hooks.unstarted = job.request;
    next(std::move(job));
  }

  template <class Self>
  static domain::result<domain::decision<sg::event>> decide(Self self, const saga_command& c) {
    auto& st = self->state;
    auto& h = st.hooks;
    h.actions.clear();
    h.early.clear();
    h.early_base.reset();
    h.adopting = false;
    if (st.version != h.acted_version) h.foreign = true;
    if (c.receipt && c.early) {
      send_early(self, c.receipt);
      return domain::decision<sg::event>{};
    }
    if (c.receipt) return adopt(self, static_cast<const saga_receipt&>(*c.receipt));
    const auto* services = st.context->services.get();
    if (services == nullptr || !services->sagas)
      return domain::reject(domain::rejection_code::invalid_state,
                            "saga " + st.id + ": no saga catalog is configured");
    const sg::saga_definition* def = nullptr;
    std::optional<sg::input> adjusted;
    if (st.aggregate.status_ == sg::status::none) {
      const auto* begin = std::get_if<sg::start>(&c.input);
      if (begin == nullptr)
        return domain::reject(domain::rejection_code::not_found,
                              "saga " + st.id + " does not exist");
      def = services->sagas->find(c.saga_type);
      if (def == nullptr)
        return domain::reject(domain::rejection_code::invalid_argument,
                              "unknown saga type '" + c.saga_type + "'");
      if (begin->saga_id.empty()) {
        auto with_id = *begin;
        with_id.saga_id = st.id;
        adjusted = std::move(with_id);
      } else if (begin->saga_id != st.id) {
        return domain::reject(domain::rejection_code::invalid_argument,
                              "start of saga " + begin->saga_id + " sent to saga " + st.id);
      }
    } else {
      def = services->sagas->find(st.aggregate.saga_type);
      if (def == nullptr)
        return domain::reject(domain::rejection_code::invalid_state,
                              "saga " + st.id + " has type '" + st.aggregate.saga_type +
                                  "', which is not in the catalog");
    }
    auto decided = sg::decide(*def, st.aggregate, adjusted ? *adjusted : c.input, services->now(),
                              services->random());
    if (!decided) return unexpected{decided.error()};
    // Pipelining: a step's commands that decide allows to go out before the commit are sent
    // as soon as the append is handed to the writer (on_submitted), so the step runs while its
    // bookkeeping is being written (an answer that comes back first waits in the queue behind
    // this job). The rest waits for the commit. (Before a start commits, the state has no
    // correlation id yet: the start's own is used.)
    const auto* begin = std::get_if<sg::start>(&c.input);
    h.early_correlation_id = st.aggregate.status_ == sg::status::none && begin != nullptr
                                 ? begin->correlation_id
                                 : st.aggregate.correlation_id;
    for (auto& a : decided->actions) {
      auto* send = std::get_if<sg::send_commands>(&a);
      if (send != nullptr && send->before_commit && !decided->events.empty()) {
        h.early.push_back(std::move(*send));
      } else {
        h.actions.push_back(std::move(a));
      }
    }
    if (h.early.size() == 1 && h.early.front().commands.size() == 1) {
      rider_base base;
      base.def = def;
      base.state = st.aggregate;
      for (const auto& e : decided->events) base.state = sg::evolve(std::move(base.state), e);
      base.stream_id = st.stream_id();
      base.version = st.version + static_cast<std::int64_t>(decided->events.size());
      h.early_base = std::move(base);
    }
    domain::decision<sg::event> out;
    out.events = std::move(decided->events);
    return out;
  }

  /// Sends the pipelined commands once the append is queued: a rider built on it can then only
  /// be written after it.
  template <class Self>
  static void on_submitted(Self self, std::int64_t version, const std::string& last_event_id) {
    auto& h = self->state.hooks;
    h.submitted_version = version;
    h.submitted_last_id = last_event_id;
    std::shared_ptr<const rider_base> base;
    if (h.early_base) {
      h.early_base->last_event_id = h.submitted_last_id;
      base = std::make_shared<const rider_base>(std::move(*h.early_base));
      h.early_base.reset();
    }
    auto early = std::move(h.early);
    h.early.clear();
    for (const auto& send : early) {
      for (const auto& tc : send.commands) dispatch(self, send, tc, h.early_correlation_id, base);
    }
  }

  template <class Self>
  static bool already_committed(Self self) {
    return self->state.hooks.adopting;
  }

  template <class Self>
  static void after_commit(Self self) {
    auto& st = self->state;
    auto& h = st.hooks;
    if (h.adopting) {
      h.adopting = false;
      h.last_version = st.version;
      h.last_event_id = std::move(h.adopted_last_id);
    } else if (h.submitted_version == st.version) {
      h.last_version = st.version;
      h.last_event_id = std::move(h.submitted_last_id);
    }
    h.submitted_version = -1;
    h.acted_version = st.version;
    if (st.version != h.early_version) release_held(self);
    if (st.aggregate.status_ != sg::status::none) h.unstarted.reset();
    auto actions = std::move(h.actions);
    h.actions.clear();
    run(self, actions);
    if (h.foreign) {
      // Events this actor did not write itself came in with a re-read (a rider whose answer
      // was lost): whatever they started must go on, and an end they reached is announced.
      h.foreign = false;
      const bool announced = std::any_of(actions.begin(), actions.end(), [](const sg::action& a) {
        return std::holds_alternative<sg::finished>(a);
      });
      if (!announced) announce_if_finished(self);
      resume(self);
    }
  }

  /// A re-read or recovery tells this actor its last event first-hand too.
  template <class Self>
  static void on_replayed(Self self, const persistence::recorded_event& rec) {
    auto& h = self->state.hooks;
    h.last_version = rec.version;
    h.last_event_id = rec.event_id;
  }

  template <class Self>
  static void on_recovered(Self self) {
    self->state.hooks.acted_version = self->state.version;
    resume(self);
  }

  template <class Self>
  static void on_failure(Self self) {
    // The events of the failed job may or may not be committed and its actions did not run:
    // re-read the journal and resume from what it holds.
    auto& h = self->state.hooks;
    h.actions.clear();
    h.early.clear();
    h.early_base.reset();
    h.adopting = false;
    h.submitted_version = -1;
    release_held(self);
    arm_resync(self);
  }

  template <class Self>
  static void on_resync(Self self) {
    auto& st = self->state;
    st.hooks.resync_armed = false;
    if (!L::idle(self)) {
      arm_resync(self);
      return;
    }
    L::refresh(self, [self](bool ok, const std::string& why) {
      if (!ok) {
        detail::log().warn("saga {}: resync failed: {}", self->state.id, why);
        arm_resync(self);
        return;
      }
      auto& h = self->state.hooks;
      if (self->state.aggregate.status_ == sg::status::none && h.unstarted) {
        // The start was not written: try it again, through the mailbox like any command. The
        // backoff keeps growing while the journal keeps failing.
        auto again = std::move(*h.unstarted);
        h.unstarted.reset();
        detail::log().info("saga {}: its start was not written; starting it again", self->state.id);
        caf::anon_send(caf::actor_cast<aggregate_actor<saga_traits>>(self), std::move(again));
        return;
      }
      h.unstarted.reset();
      h.resync_backoff = milliseconds(0);
      if (h.acted_version < self->state.version) announce_if_finished(self);
      h.acted_version = self->state.version;
      h.foreign = false;
      release_held(self);
      resume(self);
      if (L::idle(self)) on_idle(self);
    });
  }

  /// Delivers the timers due at `target` (as inputs through the mailbox, like answers) and
  /// schedules the next wake-up for the ones left.
  template <class Self>
  static void on_wake(Self self, std::int64_t target) {
    auto& h = self->state.hooks;
    if (h.wake_at == target) h.wake_at = 0;
    std::vector<sg::arm_timer> due;
    auto left = std::partition(h.timers.begin(), h.timers.end(),
                               [target](const sg::arm_timer& t) { return t.at > target; });
    due.assign(std::make_move_iterator(left), std::make_move_iterator(h.timers.end()));
    h.timers.erase(left, h.timers.end());
    std::sort(due.begin(), due.end(),
              [](const sg::arm_timer& a, const sg::arm_timer& b) { return a.at < b.at; });
    for (const auto& t : due) fire(self, t);
    schedule_wake(self);
  }

  template <class Self>
  static void on_idle(Self self) {
    // A finished saga leaves memory; COMPLETED and FAILED ones come back for a cancel or retry.
    // One whose anchored start failed stays to try it again (on_resync).
    const auto& h = self->state.hooks;
    if (sg::is_active(self->state.aggregate.status_) || (h.unstarted && h.resync_armed)) return;
    self->quit();
  }

  /// Sagas have no idempotency keys (saga_traits::key is empty); tests inject crashes with
  /// "<saga_id>/<input>", e.g. "s1/target_succeeded".
  static std::string fault_key(const std::string& id, const saga_command& c) {
    return id + "/" + std::visit(input_names{}, c.input);
  }

 private:
  /// Tells the finished-saga observers about an end this actor read rather than reached itself
  /// (a rider wrote it, and its answer did not come back as a receipt the saga could apply).
  template <class Self>
  static void announce_if_finished(Self self) {
    const auto status = self->state.aggregate.status_;
    if (status == sg::status::none || sg::is_active(status)) return;
    self->state.context->services->finished.notify(self->state.aggregate);
  }

  /// An answer whose rider was written: its events are in the journal. Applied as they are
  /// when the saga is still where the rider left it (the usual case); otherwise the saga went
  /// on from another state meanwhile (it re-read them already, or the answer to its own earlier
  /// append was lost), and it catches up from the journal and continues from there.
  template <class Self>
  static domain::result<domain::decision<sg::event>> adopt(Self self, const saga_receipt& receipt) {
    auto& st = self->state;
    auto& h = st.hooks;
    domain::decision<sg::event> out;
    if (st.version != receipt.expected_version) {
      st.stale = true;
      arm_resync(self);
      return out;
    }
    h.adopting = true;
    h.adopted_last_id = receipt.last_event_id;
    h.actions = receipt.actions;
    if (h.early_receipt.get() == &receipt) {
      // Its pipelined sends went out when the rider was submitted.
      h.actions.erase(std::remove_if(h.actions.begin(), h.actions.end(), is_early_send),
                      h.actions.end());
    }
    h.early_receipt.reset();
    out.events = receipt.events;
    return out;
  }

  static bool is_early_send(const sg::action& a) {
    const auto* send = std::get_if<sg::send_commands>(&a);
    return send != nullptr && send->before_commit;
  }

  /// An early receipt: the rider of a command this saga sent is on its way to the journal.
  /// When the saga is still where that rider starts (the usual case), the commands its
  /// transition lets go out before the commit leave now, each with a rider built on the
  /// rider's events, which the store then writes only after them. Otherwise (the saga moved
  /// on meanwhile) nothing happens here: the answer after the commit says what to do.
  template <class Self>
  static void send_early(Self self, const std::shared_ptr<const rider_receipt>& any) {
    auto& st = self->state;
    auto& h = st.hooks;
    const auto& receipt = static_cast<const saga_receipt&>(*any);
    if (st.version != receipt.expected_version || receipt.events.empty() ||
        !std::any_of(receipt.actions.begin(), receipt.actions.end(), is_early_send))
      return;
    const auto* def = st.context->services->sagas->find(st.aggregate.saga_type);
    if (def == nullptr) return;
    std::size_t commands = 0;
    for (const auto& a : receipt.actions)
      if (is_early_send(a)) commands += std::get<sg::send_commands>(a).commands.size();
    std::shared_ptr<const rider_base> base;
    if (commands == 1) {
      auto b = std::make_shared<rider_base>();
      b->def = def;
      b->state = st.aggregate;
      for (const auto& e : receipt.events) b->state = sg::evolve(std::move(b->state), e);
      b->stream_id = st.stream_id();
      b->version = receipt.expected_version + static_cast<std::int64_t>(receipt.events.size());
      b->last_event_id = receipt.last_event_id;
      base = std::move(b);
    }
    h.early_receipt = any;
    h.early_version = st.version;
    for (const auto& a : receipt.actions) {
      if (!is_early_send(a)) continue;
      const auto& send = std::get<sg::send_commands>(a);
      for (const auto& tc : send.commands)
        dispatch(self, send, tc, st.aggregate.correlation_id, base);
    }
  }

  /// Holds an answer to a command sent early while the receipt it was sent on is not adopted
  /// yet (see hook_data::held); false: deliver it now.
  template <class Self>
  static bool hold(Self self, const step_ref& ref, sg::input& in, const std::string& causation,
                   std::shared_ptr<const rider_receipt>& receipt) {
    auto& h = self->state.hooks;
    if (!h.early_receipt || self->state.version != h.early_version) return false;
    const auto& early = static_cast<const saga_receipt&>(*h.early_receipt);
    const bool sent_early =
        std::any_of(early.actions.begin(), early.actions.end(), [&](const sg::action& a) {
          const auto* send = std::get_if<sg::send_commands>(&a);
          return send != nullptr && send->before_commit && send->step == ref.step &&
                 send->phase_ == ref.phase && send->attempt == ref.attempt;
        });
    if (!sent_early) return false;
    h.held.push_back({std::move(in), causation, std::move(receipt)});
    return true;
  }

  /// The state moved on (or must be re-read): the held answers go back to the mailbox.
  template <class Self>
  static void release_held(Self self) {
    auto& h = self->state.hooks;
    h.early_receipt.reset();
    h.early_version = -1;
    auto held = std::move(h.held);
    h.held.clear();
    for (auto& a : held)
      deliver(self, std::move(a.in), std::move(a.causation), std::move(a.receipt));
  }

  template <class Self>
  static void arm_resync(Self self) {
    auto& st = self->state;
    auto& h = st.hooks;
    if (h.resync_armed) return;
    h.resync_armed = true;
    const auto& options = st.context->options;
    h.resync_backoff = h.resync_backoff.count() == 0
                           ? std::max(options.restart_backoff, milliseconds(1))
                           : std::min(h.resync_backoff * 2, options.max_restart_backoff);
    self->delayed_send(self, h.resync_backoff, resync_atom::value);
  }

  /// Continues an active saga from its state alone (after a restart or a resync).
  template <class Self>
  static void resume(Self self) {
    auto& st = self->state;
    if (!sg::is_active(st.aggregate.status_)) return;
    const auto* services = st.context->services.get();
    const auto* def = services != nullptr && services->sagas
                          ? services->sagas->find(st.aggregate.saga_type)
                          : nullptr;
    if (def == nullptr) {
      detail::log().error("saga {}: type '{}' is not in the catalog; cannot resume", st.id,
                          st.aggregate.saga_type);
      return;
    }
    auto actions = sg::recover(*def, st.aggregate, services->now());
    if (!actions) {
      detail::log().error("saga {}: cannot resume: {}", st.id, actions.error().message);
      return;
    }
    run(self, *actions);
  }

  template <class Self>
  static void run(Self self, const std::vector<sg::action>& actions) {
    for (const auto& a : actions) {
      if (const auto* send = std::get_if<sg::send_commands>(&a)) {
        const auto base = send->commands.size() == 1 ? committed_base(self) : nullptr;
        for (const auto& tc : send->commands)
          dispatch(self, *send, tc, self->state.aggregate.correlation_id, base);
      } else if (const auto* timer = std::get_if<sg::arm_timer>(&a)) {
        arm(self, *timer);
      } else if (std::holds_alternative<sg::finished>(a)) {
        self->state.context->services->finished.notify(self->state.aggregate);
      }
    }
  }

  /// The committed state as a rider's base, if this actor knows its last event's id.
  template <class Self>
  static std::shared_ptr<const rider_base> committed_base(Self self) {
    const auto& st = self->state;
    const auto& h = st.hooks;
    if (h.last_version != st.version || h.last_event_id.empty()) return nullptr;
    const auto* services = st.context->services.get();
    const auto* def = services->sagas->find(st.aggregate.saga_type);
    if (def == nullptr) return nullptr;
    auto base = std::make_shared<rider_base>();
    base->def = def;
    base->state = st.aggregate;
    base->stream_id = st.stream_id();
    base->version = st.version;
    base->last_event_id = h.last_event_id;
    return base;
  }

  /// Delivers `in` to this saga through its own mailbox, so it is handled like any command:
  /// one at a time, persisted, then acted upon. `receipt`: its events were written by a rider.
  template <class Self>
  static void deliver(Self self, sg::input in, std::string causation,
                      std::shared_ptr<const rider_receipt> receipt = nullptr) {
    auto& st = self->state;
    command_meta meta{st.aggregate.correlation_id, std::move(causation), {}, {}};
    caf::anon_send(
        caf::actor_cast<aggregate_actor<saga_traits>>(self),
        command_request<saga_traits>{st.id, saga_command{{}, std::move(in), std::move(receipt)},
                                     std::move(meta)});
  }

  template <class Self>
  static void arm(Self self, const sg::arm_timer& timer) {
    self->state.hooks.timers.push_back(timer);
    schedule_wake(self);
  }

  /// Makes sure the one CAF timer fires by the earliest pending timer.
  template <class Self>
  static void schedule_wake(Self self) {
    auto& st = self->state;
    auto& h = st.hooks;
    if (h.timers.empty()) return;
    const auto earliest =
        std::min_element(h.timers.begin(), h.timers.end(),
                         [](const sg::arm_timer& a, const sg::arm_timer& b) { return a.at < b.at; })
            ->at;
    if (h.wake_at != 0 && h.wake_at <= earliest) return;  // one already fires in time
    h.wake_at = earliest;
    const auto delay =
        milliseconds(std::max<domain::timestamp>(0, earliest - st.context->services->now()));
    self->delayed_send(self, delay, wake_atom::value, std::int64_t{earliest});
  }

  /// Hands a due timer to decide, through the mailbox like any input.
  template <class Self>
  static void fire(Self self, const sg::arm_timer& timer) {
    auto& st = self->state;
    sg::input in;
    if (timer.kind == sg::timer_kind::deadline) {
      in = sg::deadline_reached{timer.step, timer.phase_, timer.attempt};
    } else {
      in = sg::retry_due{timer.step, timer.phase_, timer.attempt};
    }
    command_meta meta{st.aggregate.correlation_id,
                      timer.kind == sg::timer_kind::deadline ? "deadline" : "retry",
                      {},
                      {}};
    caf::anon_send(
        caf::actor_cast<aggregate_actor<saga_traits>>(self),
        command_request<saga_traits>{st.id, saga_command{{}, std::move(in), {}}, std::move(meta)});
  }

  /// Sends one target's command; with a rider built on `base` when there is one.
  template <class Self>
  static void dispatch(Self self, const sg::send_commands& send, const sg::targeted_command& tc,
                       const std::string& correlation_id,
                       const std::shared_ptr<const rider_base>& base) {
    auto& st = self->state;
    const auto& services = *st.context->services;
    step_ref ref{send.step,
                 send.phase_,
                 send.attempt,
                 tc.target,
                 tc.command.target,
                 tc.command.aggregate_id,
                 std::string(sg::command_name(tc.command.command))};
    const auto& key = sg::idempotency_key_of(tc.command.command);
    command_meta meta{correlation_id, st.id, key, {}};
    std::visit(
        [&](const auto& cmd) {
          using C = std::decay_t<decltype(cmd)>;
          if constexpr (std::is_same_v<C, domain::order::command>) {
            ref.kind = sg::aggregate_kind::order;
            ask<order_traits>(self, services.regions.order, cmd, std::move(ref), meta, base);
          } else if constexpr (std::is_same_v<C, domain::payment::command>) {
            ref.kind = sg::aggregate_kind::payment;
            // The first charge attempt creates the saga's payment stream ("pay-" + order id).
            const bool fresh = ref.phase == sg::phase::forward && ref.attempt == 1 &&
                               std::holds_alternative<domain::payment::process>(cmd);
            ask<payment_traits>(self, services.regions.payment, cmd, std::move(ref), meta, base,
                                fresh);
          } else {
            static_assert(std::is_same_v<C, domain::inventory::command>);
            ref.kind = sg::aggregate_kind::inventory;
            ask<inventory_traits>(self, services.regions.inventory, cmd, std::move(ref), meta,
                                  base);
          }
        },
        tc.command.command);
  }

  /// Sends one step command. The request has no CAF timeout of its own: every attempt's
  /// durable deadline timer (armed with the same deadline by decide) is its timeout, and an
  /// answer after it is a stale input. (A CAF request timeout would cost a round trip through the
  /// clock thread per command and stay there until it expires, answered or not.)
  template <class Traits, class Self, class Region>
  static void ask(Self self, const Region& region, const typename Traits::command& cmd,
                  step_ref ref, const command_meta& meta,
                  const std::shared_ptr<const rider_base>& base, bool fresh = false) {
    auto key = meta.command_id;
    using event = typename Traits::event;
    std::shared_ptr<const command_rider<event>> rider;
    if (base) {
      const auto& st = self->state;
      persistence::event_metadata rider_meta;
      rider_meta.correlation_id = meta.correlation_id;
      rider_meta.causation_id = key;
      rider_meta.node_id = st.context->options.node_id;
      rider = std::make_shared<saga_rider<event>>(
          base, ref, st.context, std::move(rider_meta), st.context->services->random(),
          caf::actor_cast<aggregate_actor<saga_traits>>(self));
    }
    self->request(region, caf::infinite,
                  command_request<Traits>{ref.aggregate_id, cmd, meta, fresh, std::move(rider)})
        .then(
            [=](command_reply<event>& reply) {
              auto in = input_for(reply, ref);
              if (!hold(self, ref, in, key, reply.rider))
                deliver(self, std::move(in), key, std::move(reply.rider));
            },
            [=](caf::error& err) {
              auto in = failed_input(
                  ref, describe(ref) + ": unreachable: " + self->system().render(err), true);
              std::shared_ptr<const rider_receipt> none;
              if (!hold(self, ref, in, key, none)) deliver(self, std::move(in), key);
            });
  }
};

template aggregate_actor<saga_traits> spawn_aggregate<saga_traits>(
    caf::actor_system&, const std::string&, std::shared_ptr<const aggregate_context>);

}  // namespace saga::actors

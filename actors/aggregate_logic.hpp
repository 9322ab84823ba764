// Internal to saga_actors (included only by the .cpp files that instantiate actors): the generic
// event-sourced actor — recovery, one command at a time (plain aggregates: queued commands
// decided together, their appends pipelined), decide → append → evolve → reply — and
// its customization point actor_hooks<Traits>, through which payments ask the gateway before
// deciding and sagas act on their committed transitions. Everything here runs inside one actor.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/delegated.hpp>
#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/aggregate_actor.hpp"
#include "actors/aggregate_traits.hpp"
#include "actors/inspect.hpp"
#include "actors/log.hpp"
#include "actors/saga_traits.hpp"  // the saga codec overloads of encode / encode_state
#include "persistence/group_commit_writer.hpp"

namespace saga::actors {

/// Per-actor data of the hooks, kept in the actor's state (specialize with actor_hooks).
template <class Traits>
struct hook_data {};

/// The default hooks: a plain aggregate. Specializations of actor_hooks derive from this and
/// hide what they change. Every hook runs inside the actor; `Self` is its stateful pointer.
template <class Traits>
struct default_hooks {
  /// Asynchronous enrichment before decide; calls `next(job)` (now or later) to decide, or
  /// answers the job itself through detail::logic (reply_failed / reply_rejected). The actor
  /// stays busy meanwhile, so later commands queue.
  template <class Self, class Job, class Next>
  static void prepare(Self, Job job, Next next) {
    next(std::move(job));
  }

  /// The decision for `command` on the current state.
  template <class Self>
  static auto decide(Self self, const typename Traits::command& command) {
    return Traits::decide(self->state.aggregate, command);
  }

  /// After the events of the last decide are committed and applied (or after a decision with
  /// nothing to append), before the next command.
  template <class Self>
  static void after_commit(Self) {}

  /// Right after the append of the last decide's events was queued at the writer: it ends the
  /// stream at `version` with the event `last_event_id`. Appends queued from now on (by any
  /// actor) are written after it.
  template <class Self>
  static void on_submitted(Self, std::int64_t /*version*/, const std::string& /*last_event_id*/) {}

  /// Whether the events of the last decide are in the journal already, written on this actor's
  /// behalf (by a command's rider: see command_rider); they are then applied without an append.
  template <class Self>
  static bool already_committed(Self) {
    return false;
  }

  /// After recovery, before the first message.
  template <class Self>
  static void on_recovered(Self) {}

  /// A journal record was just applied (recovery or re-read); its payload is gone by then.
  template <class Self>
  static void on_replayed(Self, const persistence::recorded_event&) {}

  /// After a job was answered `failed` (journal trouble, timeouts): the state may lag behind.
  template <class Self>
  static void on_failure(Self) {}

  /// A resync_atom arrived.
  template <class Self>
  static void on_resync(Self) {}

  /// A wake_atom the hooks scheduled for `target` arrived.
  template <class Self>
  static void on_wake(Self, std::int64_t /*target*/) {}

  /// After a reply when nothing else is in flight or queued.
  template <class Self>
  static void on_idle(Self) {}

  /// Whether commands that queued up behind an append may be decided together (each on the
  /// state the previous ones leave) and appended as one request, behind the append in flight
  /// without waiting for its answer (pipelined: see logic::can_pipeline). Off here, so that hooks
  /// that act around a decision (payments' gateway call in prepare, sagas' actions) never meet a
  /// batch, where prepare/after_commit do not run per command; only plain aggregates (the
  /// primary actor_hooks) turn it on.
  static constexpr bool batch_commands = false;

  /// The key the fault injector matches for this command.
  static std::string fault_key(const std::string& /*id*/, const typename Traits::command& c) {
    return Traits::key(c);
  }
};

/// The customization point; the primary template is a plain aggregate, whose queued commands
/// are decided together and pipelined.
template <class Traits>
struct actor_hooks : default_hooks<Traits> {
  static constexpr bool batch_commands = true;
};

namespace detail {

/// `e` as a journal event with a fresh id and `metadata`.
template <class Event>
persistence::new_event encode_new_event(const Event& e, persistence::event_metadata metadata) {
  auto encoded = domain::encode(e);
  persistence::new_event ne;
  ne.event_id = persistence::new_uuid();
  ne.event_type = std::move(encoded.type);
  ne.schema_version = encoded.schema_version;
  ne.payload = std::move(encoded.payload);
  ne.metadata = std::move(metadata);
  return ne;
}

/// A recovery or replay problem that must crash the actor (never skipped silently).
struct corrupt_stream : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class Traits>
struct aggregate_state {
  using reply = command_reply<typename Traits::event>;
  struct job {
    command_request<Traits> request;
    caf::typed_response_promise<reply> promise;
    bool retried = false;  // decided once more already after a version conflict
  };

  std::string id;
  std::shared_ptr<const aggregate_context> context;
  typename Traits::state aggregate{};
  std::int64_t version = 0;        // stream version applied to `aggregate`
  std::int64_t last_snapshot = 0;  // version of the last snapshot saved or loaded
  // At least this many events between snapshots: what the last snapshot's size asks for.
  std::uint32_t snapshot_spacing = 0;
  bool recovered = false;   // the journal was read (or the stream assumed new)
  bool unverified = false;  // started as a new stream without reading: queries read first
  bool stale = false;       // the journal may hold more than applied: re-read first
  bool busy = false;        // a job is being handled (gateway call, append, refresh)
  // Batches' events are applied before they are committed (decide_batch): queries wait, and
  // if an append fails the state is rebuilt from the journal (`reload`).
  bool speculative = false;
  bool reload = false;
  // One append timer at a time (timers are costly in CAF 0.17: each is a round trip through
  // the clock thread): it is armed by an append when none is pending and, when it fires
  // early for the append then in flight, re-armed for the rest of that append's time.
  bool append_timer_armed = false;
  std::uint64_t seq = 0;  // number of the append in flight (kept: a late answer must not match)

  /// What matters only while commands are handled or queued. An idle actor holds none of it
  /// (just the pointer): actors are idle most of their life and there are many of them.
  struct in_flight {
    std::optional<job> current;                            // the job whose append is in flight
    std::vector<typename Traits::event> current_events;    // its events, applied once committed
    std::shared_ptr<const rider_receipt> current_receipt;  // of its rider, if it has one
    std::list<job> waiting;  // later commands (std::deque would allocate even when empty)
    // A decided job with the answer it gets once its append (and every one before) commits.
    struct batched {
      job j;
      reply r;
      std::shared_ptr<const rider_receipt> receipt{};  // of the job's rider, if it has one
      std::size_t rider = 0;                           // its index in the request's riders
    };
    // The appends of decide_batch in flight, in submission order: with a batch in flight, later
    // commands are decided on the state it leaves and appended at once (pipelined), each append
    // fenced by the version and the last event of the one before (after_event_id). An entry with
    // seq 0 appended nothing: its answers wait for the appends before it.
    struct appending {
      std::uint64_t seq = 0;
      std::int64_t end_version = 0;
      std::chrono::steady_clock::time_point deadline{};
      std::vector<batched> jobs;
    };
    std::vector<appending> appends;
    // Appends that failed while others were in flight; handled once none is left.
    struct failed_append {
      std::vector<batched> jobs;
      bool timed_out = false;
      persistence::store_error error{};
    };
    std::vector<failed_append> failures;
    bool pipe_scheduled = false;  // a pipe_atom is on its way to the actor
    std::string tail_event_id;    // of the last event of the latest append submitted
    // Queries that arrived while a batch's uncommitted events were applied.
    std::vector<caf::typed_response_promise<state_reply<typename Traits::state>>> deferred;
    std::chrono::steady_clock::time_point append_deadline;
    bool conflict_retried = false;  // of `current`
    std::string correlation_id;     // of the command being handled, for crash logs
  };
  std::unique_ptr<in_flight> flight;  // set while busy; freed when the last job is answered
  hook_data<Traits> hooks;

  static inline const char* name = Traits::stream_type;

  /// Built when needed rather than kept: an idle actor should hold as little as possible.
  [[nodiscard]] std::string stream_id() const { return stream_id_of(Traits::stream_type, id); }
};

template <class Traits>
using actor_t = aggregate_actor<Traits>;
template <class Traits>
using self_t = typename actor_t<Traits>::template stateful_pointer<aggregate_state<Traits>>;
template <class Traits>
using reply_t = command_reply<typename Traits::event>;

template <class Traits>
reply_t<Traits> failed(failure_code code, std::string message) {
  reply_t<Traits> r;
  r.kind = reply_kind::failed;
  r.failure = code;
  r.message = std::move(message);
  return r;
}

template <class Traits>
class logic {
 public:
  using state = aggregate_state<Traits>;
  using job = typename state::job;
  using self_ptr = self_t<Traits>;
  using hooks = actor_hooks<Traits>;

  /// Folds journal records into the state (consuming their payloads); any gap or undecodable
  /// event is a crash.
  static void apply_records(self_ptr self, std::vector<persistence::recorded_event>& records) {
    auto& st = self->state;
    for (auto& rec : records) {
      if (rec.version != st.version + 1) {
        throw corrupt_stream("stream " + st.stream_id() + ": expected version " +
                             std::to_string(st.version + 1) + ", journal has " +
                             std::to_string(rec.version));
      }
      domain::encoded_event encoded{std::move(rec.event_type), rec.schema_version,
                                    std::move(rec.payload)};
      auto decoded = Traits::decode(encoded);
      if (!decoded) {
        throw corrupt_stream("stream " + st.stream_id() + " version " +
                             std::to_string(rec.version) + " (" + encoded.type +
                             "): cannot decode field '" + decoded.error().field +
                             "': " + decoded.error().message);
      }
      st.aggregate = Traits::evolve(std::move(st.aggregate), *decoded);
      st.version = rec.version;
      hooks::on_replayed(self, rec);
    }
  }

  /// Recovers (once) before `then()` runs; while the read is awaited, later messages wait in
  /// the mailbox. Recovery is lazy: the first message triggers it (the region's ready message,
  /// or a command) so that a command flagged `fresh` can skip the read altogether.
  template <class Then>
  static void ensure_recovered(self_ptr self, Then then) {
    if (self->state.recovered) {
      then();
      return;
    }
    recover(self, true, std::make_shared<std::function<void()>>(std::move(then)));
  }

  /// Starts without reading: the caller vouched that the stream is new. The state is only
  /// assumed empty (`unverified`): the first append's expected version 0 is the fence, and a
  /// conflict refreshes and decides again, as for any concurrent writer. Queries read first.
  static void assume_fresh(self_ptr self) {
    auto& st = self->state;
    st.recovered = true;
    st.unverified = true;
    hooks::on_recovered(self);
  }

  /// Initial recovery: snapshot (if usable) + the events after it, then on_recovered and `then`.
  static void recover(self_ptr self, bool use_snapshot,
                      std::shared_ptr<std::function<void()>> then) {
    auto& st = self->state;
    auto stream = st.stream_id();
    const auto& reader = reader_for(st.context->readers, stream);
    // No timeout of its own: CAF 0.17 keeps a request's timeout in its clock until it expires,
    // answered or not (~100 B per activation for the whole recovery_timeout). The region bounds
    // the recovery instead: it stops an actor that has not answered its ready message in time.
    self->request(reader, caf::infinite, load_atom::value, std::move(stream), use_snapshot)
        .await(
            [=](stream_load& load) {
              auto& s = self->state;
              if (!load.ok) {
                log().error("{} {}: recovery read failed: {}", Traits::stream_type, s.id,
                            load.error.message);
                self->quit(caf::make_error(caf::sec::runtime_error, "journal read failed"));
                return;
              }
              if (load.has_snapshot) {
                auto decoded = Traits::decode_state(load.snap.payload);
                if (!decoded || decoded->version != load.snap.version) {
                  // A snapshot is only a cache: fall back to the whole stream.
                  log().warn("{} {}: snapshot at version {} unusable ({}); replaying all",
                             Traits::stream_type, s.id, load.snap.version,
                             decoded ? "version mismatch" : decoded.error().message);
                  recover(self, false, then);
                  return;
                }
                s.aggregate = std::move(*decoded);
                s.version = load.snap.version;
                s.last_snapshot = load.snap.version;
                s.snapshot_spacing = spacing_for(load.snap.payload.size());
              }
              apply_records(self, load.events);
              s.recovered = true;
              hooks::on_recovered(self);
              (*then)();
            },
            [=](caf::error& err) {
              log().error("{} {}: recovery read failed: {}", Traits::stream_type, self->state.id,
                          self->system().render(err));
              self->quit(std::move(err));
            });
  }

  /// Reads what the journal has beyond the applied version, then continues with `then(ok)`.
  template <class Continue>
  static void refresh(self_ptr self, Continue continuation) {
    // Shared so that the (mutable) continuation can run from the const response handlers.
    auto then = std::make_shared<Continue>(std::move(continuation));
    auto& st = self->state;
    auto stream = st.stream_id();
    const auto& reader = reader_for(st.context->readers, stream);
    self->request(reader, st.context->options.journal_timeout, read_atom::value, std::move(stream),
                  st.version + 1)
        .await(
            [=](stream_load& load) {
              if (!load.ok) {
                (*then)(false, load.error.message);
                return;
              }
              apply_records(self, load.events);
              self->state.stale = false;
              self->state.unverified = false;
              (*then)(true, std::string{});
            },
            [=](caf::error& err) { (*then)(false, self->system().render(err)); });
  }

  /// Rebuilds the state from the journal (snapshot + events), then `then()`: after a batch whose
  /// events were applied before the append failed. A failed read stops the actor (as in recovery).
  template <class Then>
  static void reload(self_ptr self, Then then) {
    auto& st = self->state;
    st.reload = false;
    st.stale = false;
    st.aggregate = typename Traits::state{};
    st.version = 0;
    st.last_snapshot = 0;
    recover(self, true, std::make_shared<std::function<void()>>(std::move(then)));
  }

  /// Decides the waiting jobs one after the other, each on the state the previous ones leave,
  /// and appends all their events as one request (atomic: all or none). The events are applied
  /// at once, so the state runs ahead of the journal until the append is answered; answers wait
  /// for it too (a rejection may rest on an earlier job's events). With appends in flight
  /// already, this one goes only on top of the last one's events (see can_pipeline).
  static void decide_batch(self_ptr self) {
    auto& st = self->state;
    auto& flight = *st.flight;
    st.busy = true;
    flight.correlation_id = flight.waiting.front().request.meta.correlation_id;
    typename state::in_flight::appending entry;
    persistence::append_request request;
    request.stream_id = st.stream_id();
    request.stream_type = Traits::stream_type;
    request.expected_version = st.version;
    // Behind appends in flight: on top of the last one's events, not just at their version.
    if (!flight.appends.empty()) request.after_event_id = flight.tail_event_id;
    const auto max_jobs = std::clamp<std::size_t>(st.context->options.max_in_flight, 2, 1024);
    while (!flight.waiting.empty() && entry.jobs.size() < max_jobs) {
      auto j = std::move(flight.waiting.front());
      flight.waiting.pop_front();
      flight.correlation_id = j.request.meta.correlation_id;
      const auto key = hooks::fault_key(st.id, j.request.command);
      if (st.context->options.faults)
        st.context->options.faults->check(fault_point::before_decide, key);
      auto decision = hooks::decide(self, j.request.command);
      reply_t<Traits> r;
      if (!decision) {
        r.kind = reply_kind::rejected;
        r.rejection = decision.error().code;
        r.message = std::move(decision.error().message);
      } else if (decision->replayed || decision->events.empty()) {
        r.kind = decision->replayed ? reply_kind::replayed : reply_kind::accepted;
        r.events = decision->outcome();
      } else {
        r.kind = reply_kind::accepted;
        for (const auto& e : decision->events) {
          request.events.push_back(to_new_event(self, e, j.request.meta));
          st.aggregate = Traits::evolve(std::move(st.aggregate), e);
          ++st.version;
        }
        r.events = std::move(decision->events);
        st.speculative = true;
      }
      r.version = st.version;
      std::shared_ptr<const rider_receipt> receipt;
      std::size_t rider = 0;
      if (r.kind == reply_kind::accepted && !r.events.empty())
        receipt = add_rider(request, j.request, r.events, rider);
      entry.jobs.push_back({std::move(j), std::move(r), std::move(receipt), rider});
    }
    entry.end_version = st.version;
    if (request.events.empty() && flight.appends.empty()) {
      // Nothing to append and nothing in flight: every answer stands on committed state.
      for (auto& b : entry.jobs) b.j.promise.deliver(std::move(b.r));
      finish(self);
      return;
    }
    if (!request.events.empty()) {
      entry.seq = submit(self, std::move(request));
      entry.deadline = flight.append_deadline;
      for (const auto& b : entry.jobs)
        if (b.receipt) b.j.request.rider->submitted(b.receipt);
    }
    flight.appends.push_back(std::move(entry));
  }

  /// A command that names no correlation id (an operator's confirm, say) belongs to the flow
  /// of the aggregate it acts on: its events carry the aggregate's own correlation id when the
  /// state has one (orders and sagas do), so traces by correlation id show them.
  template <class State, class = void>
  struct has_correlation_id : std::false_type {};
  template <class State>
  struct has_correlation_id<State,
                            std::void_t<decltype(std::declval<const State&>().correlation_id)>>
      : std::true_type {};

  static persistence::new_event to_new_event(self_ptr self, const typename Traits::event& e,
                                             const command_meta& meta) {
    persistence::event_metadata metadata;
    metadata.correlation_id = meta.correlation_id;
    if constexpr (has_correlation_id<typename Traits::state>::value) {
      if (metadata.correlation_id.empty()) {
        metadata.correlation_id = self->state.aggregate.correlation_id;
      }
    }
    metadata.causation_id = meta.causation_id;
    metadata.command_id = meta.command_id;
    metadata.user_id = meta.user_id;
    metadata.node_id = self->state.context->options.node_id;
    return encode_new_event(e, std::move(metadata));
  }

  /// Hands the append to the writer; its answer comes back as an append_outcome message with
  /// the number returned.
  static std::uint64_t submit(self_ptr self, persistence::append_request request) {
    auto& st = self->state;
    const auto seq = ++st.seq;
    st.flight->tail_event_id = request.events.back().event_id;
    auto handle = caf::actor_cast<actor_t<Traits>>(self);
    st.context->writer->submit(std::move(request),
                               [handle, seq](persistence::append_result result) {
                                 append_outcome out;
                                 out.seq = seq;
                                 out.ok = result.has_value();
                                 if (out.ok) {
                                   out.result = result.value();
                                 } else {
                                   out.error = result.error();
                                 }
                                 caf::anon_send(handle, std::move(out));
                               });
    st.flight->append_deadline =
        std::chrono::steady_clock::now() + st.context->options.journal_timeout;
    if (!st.append_timer_armed) {
      st.append_timer_armed = true;
      self->delayed_send(self, st.context->options.journal_timeout, app_tmo_atom::value, seq);
    }
    return seq;
  }

  /// Whether commands that arrive now may be decided at once on the state the appends in flight
  /// leave (and appended behind them) instead of waiting for their answers: for plain
  /// aggregates whose state is known, while nothing asks the appends to drain first (a deferred
  /// query, a failure, a snapshot that is due).
  static bool can_pipeline(self_ptr self) {
    if constexpr (!hooks::batch_commands) {
      return false;
    } else {
      const auto& st = self->state;
      if (!st.busy || !st.flight || st.stale || st.unverified || st.reload) return false;
      const auto& f = *st.flight;
      if (!f.current && f.appends.empty()) return false;  // busy reading, not appending
      return f.deferred.empty() && f.failures.empty() && !snapshot_due(st);
    }
  }

  /// A command queued while the actor is busy: decided on the next pipe_atom if it may be
  /// pipelined. The atom goes to the back of the mailbox, so the commands that arrived
  /// meanwhile are decided together.
  static void schedule_pipe(self_ptr self) {
    auto& f = *self->state.flight;
    if (f.pipe_scheduled || !can_pipeline(self)) return;
    f.pipe_scheduled = true;
    self->send(self, pipe_atom::value);
  }

  static void on_pipe(self_ptr self) {
    auto& st = self->state;
    if (!st.flight) return;
    st.flight->pipe_scheduled = false;
    if (st.flight->waiting.empty() || !can_pipeline(self)) return;
    if (st.flight->current) speculate_current(self);
    decide_batch(self);
  }

  /// Turns the single append in flight (decide_and_append) into the first pipelined one: its
  /// events are applied now, its answer waits for its commit as a batch's would.
  static void speculate_current(self_ptr self) {
    auto& st = self->state;
    auto& f = *st.flight;
    typename state::in_flight::appending entry;
    entry.seq = st.seq;
    entry.deadline = f.append_deadline;
    reply_t<Traits> r;
    r.kind = reply_kind::accepted;
    for (const auto& e : f.current_events) {
      st.aggregate = Traits::evolve(std::move(st.aggregate), e);
      ++st.version;
    }
    r.events = std::move(f.current_events);
    r.version = st.version;
    entry.end_version = st.version;
    auto j = std::move(*f.current);
    j.retried = f.conflict_retried;
    entry.jobs.push_back({std::move(j), std::move(r), std::move(f.current_receipt), 0});
    f.current.reset();
    f.current_events.clear();
    f.current_receipt.reset();
    f.appends.push_back(std::move(entry));
    st.speculative = true;
  }

  using appends_t = std::vector<typename state::in_flight::appending>;

  /// The oldest entry whose append is still in flight (not one that appended nothing), or end.
  static typename appends_t::const_iterator oldest_append(const appends_t& a) {
    return std::find_if(a.begin(), a.end(), [](const auto& x) { return x.seq != 0; });
  }

  /// The answer to a pipelined append (`index` in flight.appends), or its timeout (`out` null).
  static void on_batch_appended(self_ptr self, std::size_t index, const append_outcome* out) {
    auto& st = self->state;
    auto& flight = *st.flight;
    auto entry = std::move(flight.appends[index]);
    flight.appends.erase(flight.appends.begin() + static_cast<std::ptrdiff_t>(index));
    if (out != nullptr && out->ok) {
      // Committed, so every append it builds on is too (each is fenced by the one before).
      if (st.context->options.faults) {
        for (const auto& b : entry.jobs) {
          st.context->options.faults->check(fault_point::after_append,
                                            hooks::fault_key(st.id, b.j.request.command));
        }
      }
      if (out->result.version != entry.end_version) st.reload = true;  // cannot happen
      st.unverified = false;
      for (auto& b : entry.jobs) {
        if (b.receipt && rider_written(out->result, b.rider)) b.r.rider = std::move(b.receipt);
        b.j.promise.deliver(std::move(b.r));
      }
    } else {
      // The applied events are not (known to be) in the journal, nor is anything built on them.
      typename state::in_flight::failed_append failure;
      failure.jobs = std::move(entry.jobs);
      failure.timed_out = out == nullptr;
      if (out != nullptr) failure.error = out->error;
      flight.failures.push_back(std::move(failure));
      st.reload = true;
    }
    // Answers that wait for nothing but the appends before them.
    while (flight.failures.empty() && !flight.appends.empty() && flight.appends.front().seq == 0) {
      for (auto& b : flight.appends.front().jobs) b.j.promise.deliver(std::move(b.r));
      flight.appends.erase(flight.appends.begin());
    }
    if (oldest_append(flight.appends) == flight.appends.end()) settle(self);
  }

  /// No append is in flight any more: answer what waited for them and go on. After a failure the
  /// state is rebuilt from the journal first (meanwhile the mailbox waits); jobs whose append
  /// conflicted (another writer, or an earlier append of theirs that failed) are decided once
  /// more, the others answered with the failure.
  static void settle(self_ptr self) {
    auto& st = self->state;
    auto& flight = *st.flight;
    st.speculative = false;
    if (flight.failures.empty()) {
      answer_deferred(self);
      maybe_snapshot(self);
      finish(self);
      return;
    }
    using batched = typename state::in_flight::batched;
    auto again = std::make_shared<std::vector<batched>>();
    auto failed_jobs = std::make_shared<std::vector<std::pair<batched, reply_t<Traits>>>>();
    for (auto& f : flight.failures) {
      const bool conflict =
          !f.timed_out && f.error.code == persistence::store_errc::version_conflict;
      failure_code code = failure_code::timeout;
      std::string message = "journal append timed out";
      if (!f.timed_out) {
        code = conflict ? failure_code::version_conflict
               : f.error.code == persistence::store_errc::retryable
                   ? failure_code::journal_unavailable
                   : failure_code::journal_error;
        message = f.error.message;
      }
      if (!conflict) {
        log().warn("{} {}: append of {} batched commands failed: {}", Traits::stream_type, st.id,
                   f.jobs.size(), message);
      }
      for (auto& b : f.jobs) {
        if (conflict && !b.j.retried) {
          b.j.retried = true;
          again->push_back(std::move(b));
        } else {
          failed_jobs->emplace_back(std::move(b), failed<Traits>(code, message));
        }
      }
    }
    flight.failures.clear();
    // Decisions that appended nothing rest on the failed state too: decide them again.
    for (auto& a : flight.appends) {
      for (auto& b : a.jobs) again->push_back(std::move(b));
    }
    flight.appends.clear();
    // In the order they were decided (each answer's version is the state it was decided on).
    std::stable_sort(again->begin(), again->end(),
                     [](const batched& x, const batched& y) { return x.r.version < y.r.version; });
    reload(self, [=] {
      for (auto& [b, r] : *failed_jobs) b.j.promise.deliver(std::move(r));
      if (!failed_jobs->empty()) hooks::on_failure(self);
      auto& waiting = self->state.flight->waiting;
      for (auto it = again->rbegin(); it != again->rend(); ++it)
        waiting.push_front(std::move(it->j));
      answer_deferred(self);
      finish(self);
    });
  }

  using query_promise = caf::typed_response_promise<state_reply<typename Traits::state>>;

  /// Answers a query from the committed state: deferred while a batch's events are applied but
  /// not committed, after a refresh when the state may lag behind the journal.
  static void answer_query(self_ptr self, query_promise promise) {
    auto& st = self->state;
    if (st.speculative) {
      st.flight->deferred.push_back(std::move(promise));
      return;
    }
    auto answer = [=](bool ok, const std::string& why) mutable {
      state_reply<typename Traits::state> r;
      r.ok = ok;
      if (ok) {
        r.state = self->state.aggregate;
      } else {
        r.failure = failure_code::journal_unavailable;
        r.message = "journal unavailable: " + why;
      }
      promise.deliver(std::move(r));
      if (idle(self)) hooks::on_idle(self);
    };
    if (st.reload && !st.busy) {
      reload(self, [=]() mutable { answer(true, {}); });
    } else if ((st.stale || st.unverified) && !st.busy) {
      refresh(self, answer);
    } else {
      answer(true, {});
    }
  }

  /// Answers the queries deferred while a batch was in flight.
  static void answer_deferred(self_ptr self) {
    auto deferred = std::move(self->state.flight->deferred);
    self->state.flight->deferred.clear();
    for (auto& promise : deferred) answer_query(self, std::move(promise));
  }

  static void start(self_ptr self, job j) {
    auto& st = self->state;
    if (st.busy) {
      st.flight->waiting.push_back(std::move(j));
      schedule_pipe(self);
      return;
    }
    if (!st.flight) st.flight = std::make_unique<typename state::in_flight>();
    st.flight->correlation_id = j.request.meta.correlation_id;
    st.busy = true;  // until the job is answered; later commands queue behind it
    if (st.reload) {
      reload(self, [=]() mutable { prepare(self, std::move(j)); });
      return;
    }
    if (!st.stale) {
      prepare(self, std::move(j));
      return;
    }
    refresh(self, [=](bool ok, const std::string& why) mutable {
      if (!ok) {
        reply_failed(self, std::move(j), failure_code::journal_unavailable,
                     "journal unavailable: " + why);
        return;
      }
      prepare(self, std::move(j));
    });
  }

  static void prepare(self_ptr self, job j) {
    hooks::prepare(self, std::move(j), [self](job next) {
      const bool retried = next.retried;
      decide_and_append(self, std::move(next), retried);
    });
  }

  /// Answers `j` with an infrastructure failure and moves on to the next job.
  static void reply_failed(self_ptr self, job j, failure_code code, std::string message) {
    j.promise.deliver(failed<Traits>(code, std::move(message)));
    hooks::on_failure(self);
    finish(self);
  }

  /// Answers `j` with a business rejection and moves on to the next job.
  static void reply_rejected(self_ptr self, job j, domain::rejection rejection) {
    reply_t<Traits> r;
    r.kind = reply_kind::rejected;
    r.version = self->state.version;
    r.rejection = rejection.code;
    r.message = std::move(rejection.message);
    j.promise.deliver(std::move(r));
    finish(self);
  }

  static void decide_and_append(self_ptr self, job j, bool retried) {
    auto& st = self->state;
    const auto key = hooks::fault_key(st.id, j.request.command);
    if (st.context->options.faults)
      st.context->options.faults->check(fault_point::before_decide, key);
    auto decision = hooks::decide(self, j.request.command);
    if (st.unverified && (!decision || decision->replayed || decision->events.empty())) {
      // Only an append is fenced by the journal: an answer without one (a rejection, a replay,
      // nothing to do) must not rest on a state that was merely assumed empty.
      refresh(self, [=](bool ok, const std::string& why) mutable {
        if (!ok) {
          reply_failed(self, std::move(j), failure_code::journal_unavailable,
                       "journal unavailable: " + why);
          return;
        }
        decide_and_append(self, std::move(j), retried);
      });
      return;
    }
    if (!decision) {
      reply_rejected(self, std::move(j), std::move(decision.error()));
      return;
    }
    if (decision->replayed || decision->events.empty()) {
      reply_t<Traits> r;
      r.version = st.version;
      r.kind = decision->replayed ? reply_kind::replayed : reply_kind::accepted;
      r.events = decision->outcome();
      j.promise.deliver(std::move(r));
      hooks::after_commit(self);
      finish(self);
      return;
    }
    auto& flight = *st.flight;
    if (hooks::already_committed(self)) {
      // Written already on this actor's behalf: apply and answer as if just committed.
      if (st.context->options.faults)
        st.context->options.faults->check(fault_point::after_append, key);
      for (const auto& e : decision->events) {
        st.aggregate = Traits::evolve(std::move(st.aggregate), e);
        ++st.version;
      }
      st.unverified = false;  // the writer fenced them on the stream as it was
      reply_t<Traits> r;
      r.kind = reply_kind::accepted;
      r.events = std::move(decision->events);
      r.version = st.version;
      j.promise.deliver(std::move(r));
      hooks::after_commit(self);
      maybe_snapshot(self);
      finish(self);
      return;
    }
    persistence::append_request request;
    request.stream_id = st.stream_id();
    request.stream_type = Traits::stream_type;
    request.expected_version = st.version;
    for (const auto& e : decision->events)
      request.events.push_back(to_new_event(self, e, j.request.meta));
    std::size_t rider = 0;
    flight.current_receipt = add_rider(request, j.request, decision->events, rider);
    st.busy = true;
    flight.conflict_retried = retried;
    flight.current_events = std::move(decision->events);
    flight.current.emplace(std::move(j));
    const auto end_version = st.version + static_cast<std::int64_t>(request.events.size());
    auto last_event_id = request.events.back().event_id;
    submit(self, std::move(request));
    if (flight.current_receipt) flight.current->request.rider->submitted(flight.current_receipt);
    hooks::on_submitted(self, end_version, last_event_id);
  }

  /// Asks the command's rider (if any) what to write with `events`; adds it to the request's
  /// riders (at index `index`) and returns its receipt, or null.
  static std::shared_ptr<const rider_receipt> add_rider(
      persistence::append_request& request, const command_request<Traits>& command,
      const std::vector<typename Traits::event>& events, std::size_t& index) {
    if (!command.rider || request.riders.size() >= persistence::max_riders_per_request)
      return nullptr;
    auto write = command.rider->ride(events);
    if (!write) return nullptr;
    index = request.riders.size();
    request.riders.push_back(std::move(write->request));
    return std::move(write->receipt);
  }

  static bool rider_written(const persistence::append_ok& ok, std::size_t index) {
    return index < ok.riders_written.size() && ok.riders_written[index] != 0;
  }

  static void on_appended(self_ptr self, append_outcome& out) {
    auto& st = self->state;
    if (st.flight && !st.flight->appends.empty()) {
      const auto& a = st.flight->appends;
      const auto it = std::find_if(a.begin(), a.end(),
                                   [&](const auto& x) { return x.seq != 0 && x.seq == out.seq; });
      // Otherwise answered already (timed out).
      if (it != a.end()) on_batch_appended(self, static_cast<std::size_t>(it - a.begin()), &out);
      return;
    }
    // Answered already (timeout) when no append is in flight or it is a later one.
    if (!st.busy || !st.flight || !st.flight->current || out.seq != st.seq) return;
    auto& flight = *st.flight;  // valid until finish
    auto j = std::move(*flight.current);
    flight.current.reset();
    if (out.ok) {
      if (st.context->options.faults) {
        st.context->options.faults->check(fault_point::after_append,
                                          hooks::fault_key(st.id, j.request.command));
      }
      for (const auto& e : flight.current_events)
        st.aggregate = Traits::evolve(std::move(st.aggregate), e);
      const auto expected = st.version + static_cast<std::int64_t>(flight.current_events.size());
      st.version = out.result.version;
      st.unverified = false;  // the expected version held, so the assumed state was the real one
      if (st.version != expected) st.stale = true;  // cannot happen with a correct journal
      reply_t<Traits> r;
      r.kind = reply_kind::accepted;
      r.events = std::move(flight.current_events);
      r.version = st.version;
      if (flight.current_receipt && rider_written(out.result, 0))
        r.rider = std::move(flight.current_receipt);
      flight.current_receipt.reset();
      flight.current_events.clear();
      j.promise.deliver(std::move(r));
      hooks::after_commit(self);  // persist, then act
      maybe_snapshot(self);
      finish(self);
      return;
    }
    flight.current_events.clear();
    flight.current_receipt.reset();
    st.stale = true;
    if (out.error.code == persistence::store_errc::version_conflict && !flight.conflict_retried) {
      // Another writer appended: catch up and decide once more on the fresh state.
      refresh(self, [=](bool ok, const std::string& why) mutable {
        if (!ok) {
          reply_failed(self, std::move(j), failure_code::journal_unavailable,
                       "journal unavailable: " + why);
          return;
        }
        decide_and_append(self, std::move(j), true);
      });
      return;
    }
    failure_code code = failure_code::journal_error;
    if (out.error.code == persistence::store_errc::version_conflict) {
      code = failure_code::version_conflict;
    } else if (out.error.code == persistence::store_errc::retryable) {
      code = failure_code::journal_unavailable;
    }
    log().warn("{} {}: append failed ({}): {}", Traits::stream_type, st.id,
               persistence::to_string(out.error.code), out.error.message);
    reply_failed(self, std::move(j), code, out.error.message);
  }

  static void on_append_timeout(self_ptr self, std::uint64_t /*armed_by*/) {
    auto& st = self->state;
    st.append_timer_armed = false;
    if (!st.busy || !st.flight) return;
    auto& flight = *st.flight;
    const auto now = std::chrono::steady_clock::now();
    const auto rearm = [&](std::chrono::steady_clock::time_point deadline) {
      st.append_timer_armed = true;
      self->delayed_send(self, std::chrono::ceil<std::chrono::milliseconds>(deadline - now),
                         app_tmo_atom::value, st.seq);
    };
    if (!flight.appends.empty()) {
      // The others' time is not up before the oldest's.
      const auto& a = flight.appends;
      const auto it = oldest_append(a);
      if (it == a.end()) return;
      if (now < it->deadline) {
        rearm(it->deadline);
        return;
      }
      log().warn("{} {}: append {} timed out", Traits::stream_type, st.id, it->seq);
      on_batch_appended(self, static_cast<std::size_t>(it - a.begin()), nullptr);
      if (!st.append_timer_armed && st.flight) {
        const auto next = oldest_append(st.flight->appends);
        if (next != st.flight->appends.end()) rearm(std::max(next->deadline, now));
      }
      return;
    }
    if (flight.current == std::nullopt) return;  // none in flight
    if (now < flight.append_deadline) {  // armed for an earlier append: wait for this one's time
      rearm(flight.append_deadline);
      return;
    }
    log().warn("{} {}: append {} timed out", Traits::stream_type, st.id, st.seq);
    auto j = std::move(*flight.current);
    flight.current.reset();
    flight.current_events.clear();
    flight.current_receipt.reset();
    st.stale = true;  // it may still commit
    reply_failed(self, std::move(j), failure_code::timeout, "journal append timed out");
  }

  static void finish(self_ptr self) {
    auto& st = self->state;
    st.busy = false;
    if (!st.flight || st.flight->waiting.empty()) {
      st.flight.reset();  // idle: nothing of a command is kept
      hooks::on_idle(self);
      return;
    }
    if constexpr (hooks::batch_commands) {
      if (st.flight->waiting.size() > 1 && !st.stale && !st.unverified && !st.reload) {
        decide_batch(self);
        return;
      }
    }
    auto next = std::move(st.flight->waiting.front());
    st.flight->waiting.pop_front();
    start(self, std::move(next));
  }

  /// Nothing in flight and nothing queued.
  static bool idle(self_ptr self) {
    const auto& st = self->state;
    return !st.busy && (!st.flight || st.flight->waiting.empty());
  }

  // Each snapshot rewrites the whole state, so with a fixed spacing a big state costs more to
  // snapshot than its events cost to append: a hot product's inventory (the last 1,024 keys
  // with their events, and every order's reservation) is ~500 KB, about 20 ms of PostgreSQL
  // per save plus its encoding on the actor's thread, every snapshot_every (500) events. So
  // the spacing grows with the last snapshot's size, to at most this many snapshot bytes per
  // event; recovery then replays at most size / this events (2,000 for 500 KB, ~20 ms).
  static constexpr std::size_t snapshot_bytes_per_event = 256;

  static std::uint32_t spacing_for(std::size_t snapshot_bytes) {
    return static_cast<std::uint32_t>(
        std::min<std::size_t>(snapshot_bytes / snapshot_bytes_per_event, UINT32_MAX));
  }

  static bool snapshot_due(const state& st) {
    const auto every = st.context->options.snapshot_every;
    return every > 0 &&
           st.version - st.last_snapshot >= std::max<std::int64_t>(every, st.snapshot_spacing);
  }

  static void maybe_snapshot(self_ptr self) {
    auto& st = self->state;
    if (!snapshot_due(st)) return;
    st.last_snapshot = st.version;
    persistence::snapshot snap;
    snap.stream_id = st.stream_id();
    snap.stream_type = Traits::stream_type;
    snap.version = st.version;
    snap.schema_version = Traits::schema_version;
    snap.payload = domain::encode_state(st.aggregate);
    st.snapshot_spacing = spacing_for(snap.payload.size());
    const auto& reader = reader_for(st.context->readers, snap.stream_id);
    self->request(reader, st.context->options.journal_timeout, snap_atom::value, std::move(snap))
        .then(
            [=](snapshot_saved& saved) {
              if (!saved.ok) {
                log().warn("{} {}: snapshot not saved: {}", Traits::stream_type, self->state.id,
                           saved.error.message);
              }
            },
            [=](caf::error& err) {
              log().warn("{} {}: snapshot not saved: {}", Traits::stream_type, self->state.id,
                         self->system().render(err));
            });
  }
};

/// The message handlers of one actor type, as plain functions of the actor. They are reached
/// through the actor's default handler, which CAF calls with the actor pointer, so that every
/// actor of the type shares one behavior instead of holding its own set of handlers that each
/// capture `self` (≈300 B per actor, and most actors are idle most of their life).
template <class Traits>
struct handlers {
  using L = logic<Traits>;
  using self_ptr = self_t<Traits>;

  static void on_command(self_ptr self, command_request<Traits>& request) {
    auto promise = self->template make_response_promise<reply_t<Traits>>();
    if (!self->state.recovered && request.fresh) L::assume_fresh(self);
    L::ensure_recovered(self, [=, j = typename L::job{std::move(request), promise}]() mutable {
      L::start(self, std::move(j));
    });
  }

  static void on_query(self_ptr self) {
    auto promise = self->template make_response_promise<state_reply<typename Traits::state>>();
    L::ensure_recovered(self, [=]() mutable { L::answer_query(self, std::move(promise)); });
  }

  static void on_ready(self_ptr self) {
    auto promise = self->template make_response_promise<ready_atom>();
    L::ensure_recovered(self, [=]() mutable { promise.deliver(ready_atom::value); });
  }

  /// Dispatches by message type; anything else is dropped as CAF would (with an error reply).
  static caf::result<caf::message> dispatch(caf::scheduled_actor* base, caf::message_view& view) {
    auto self = static_cast<self_ptr>(base);
    auto& xs = view.content();
    if (xs.template match_elements<command_request<Traits>>()) {
      on_command(self, xs.template get_mutable_as<command_request<Traits>>(0));
    } else if (xs.template match_elements<append_outcome>()) {
      L::on_appended(self, xs.template get_mutable_as<append_outcome>(0));
    } else if (xs.template match_elements<state_query<Traits>>()) {
      on_query(self);
    } else if (xs.template match_elements<ready_atom>()) {
      on_ready(self);
    } else if (xs.template match_elements<pipe_atom>()) {
      L::on_pipe(self);
    } else if (xs.template match_elements<app_tmo_atom, std::uint64_t>()) {
      L::on_append_timeout(self, xs.template get_as<std::uint64_t>(1));
    } else if (xs.template match_elements<resync_atom>()) {
      L::ensure_recovered(self, [=] { L::hooks::on_resync(self); });
    } else if (xs.template match_elements<wake_atom, std::int64_t>()) {
      const auto target = xs.template get_as<std::int64_t>(1);
      L::ensure_recovered(self, [=] { L::hooks::on_wake(self, target); });
    } else {
      return caf::print_and_drop(base, view);
    }
    // Answered through a response promise, or not a request (the interface's reacts_to).
    return caf::delegated<caf::message>{};
  }

  static void on_exception(self_ptr self, std::exception_ptr& eptr, caf::error& out) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log().error("{} {} crashed (correlation id '{}'): {}", Traits::stream_type, self->state.id,
                self->state.flight ? self->state.flight->correlation_id : std::string{}, what);
    out = caf::make_error(caf::sec::runtime_error, what);
  }

  /// The behavior every actor of the type shares: one handler for an atom nobody sends (CAF
  /// ends an actor whose behavior is empty); all real messages go to `dispatch`.
  static const caf::behavior& shared() {
    static const caf::behavior b{[](caf::atom_constant<caf::atom("agg_noop")>) {}};
    return b;
  }
};

template <class Traits>
typename actor_t<Traits>::behavior_type aggregate_behavior(
    self_t<Traits> self, std::string id, std::shared_ptr<const aggregate_context> context) {
  using H = handlers<Traits>;
  auto& st = self->state;
  st.id = std::move(id);
  st.context = std::move(context);
  // Capture-free: std::function keeps it inline, nothing is allocated per actor.
  self->set_exception_handler([](caf::scheduled_actor* base, std::exception_ptr& eptr) {
    caf::error out;
    H::on_exception(static_cast<self_t<Traits>>(base), eptr, out);
    return out;
  });
  self->set_default_handler(&H::dispatch);
  using behavior_type = typename actor_t<Traits>::behavior_type;
  return behavior_type{typename behavior_type::unsafe_init{}, H::shared()};
}

}  // namespace detail

/// Explicitly instantiated, once per Traits, by the .cpp that owns the Traits' hooks (so every
/// instantiation sees the right actor_hooks specialization).
template <class Traits>
aggregate_actor<Traits> spawn_aggregate(caf::actor_system& system, const std::string& id,
                                        std::shared_ptr<const aggregate_context> context) {
  return system.spawn(detail::aggregate_behavior<Traits>, id, std::move(context));
}

}  // namespace saga::actors

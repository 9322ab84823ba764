// Saga instances as data: definitions (steps, compensations, timeouts, retry policies), the
// saga's events and state, and a pure state machine (decide / evolve / recover) that any
// definition runs on. Pure and thread-safe: time and a random sample arrive as arguments;
// definitions are immutable values shared read-only once built.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/inventory.hpp"
#include "domain/money.hpp"
#include "domain/order.hpp"
#include "domain/payment.hpp"
#include "domain/rejection.hpp"
#include "domain/types.hpp"

namespace saga::domain::sagas {

// ---- commands a saga sends ----

/// The aggregate type (and so the region) a step command goes to.
enum class aggregate_kind { order, payment, inventory };
[[nodiscard]] std::string_view to_string(aggregate_kind k) noexcept;  ///< "order", …

using any_command = std::variant<order::command, payment::command, inventory::command>;

/// One command of a step for one aggregate instance: a "target" of the step.
struct step_command {
  aggregate_kind target = aggregate_kind::order;
  std::string aggregate_id;
  any_command command;
};

/// The command's alternative name as used in idempotency keys: "reserve", "refund", "cancel", …
[[nodiscard]] std::string_view command_name(const any_command& c) noexcept;
/// The idempotency key the command carries.
[[nodiscard]] const std::string& idempotency_key_of(const any_command& c) noexcept;
/// The command's `at`.
[[nodiscard]] timestamp at_of(const any_command& c) noexcept;

/// The key a saga puts into every command it sends: `saga_id/step/action`, plus
/// `/aggregate_id` when the step has several targets. `action_name` is command_name().
/// Attempts are deliberately not part of it: a retry or a re-send after a restart must be
/// recognised by the aggregate as the same request.
[[nodiscard]] std::string make_idempotency_key(std::string_view saga_id, std::string_view step,
                                               std::string_view action_name,
                                               std::string_view aggregate_id, bool several_targets);

// ---- definitions ----

/// What one saga instance is about. `attributes` carries anything else a definition needs.
struct saga_input {
  std::string order_id;
  std::string customer_id;
  std::vector<order::line_item> items;
  money total = 0;
  std::map<std::string, std::string> attributes;

  friend bool operator==(const saga_input& a, const saga_input& b) {
    return a.order_id == b.order_id && a.customer_id == b.customer_id && a.items == b.items &&
           a.total == b.total && a.attributes == b.attributes;
  }
};

/// How often and how fast a failed attempt is tried again.
struct retry_policy {
  int max_attempts = 1;                 ///< attempts in total, the first one included
  std::int64_t initial_backoff_ms = 0;  ///< delay after the first failed attempt
  double multiplier = 1.0;              ///< growth of the delay per further attempt
  std::int64_t max_backoff_ms = 0;      ///< cap, jitter included
  double jitter = 0.0;                  ///< fraction in [0,1]: ± spread around the delay
};

/// Delay before the attempt after `attempt` (1-based) failed:
///   base  = min(max_backoff_ms, initial_backoff_ms * multiplier^(attempt-1))
///   delay = base * (1 + jitter * (2*random01 - 1))     (random01 in [0,1): ±jitter·base)
/// rounded to whole ms and clamped to [0, max_backoff_ms]. Inputs out of range are clamped
/// (attempt < 1 → 1, random01 and jitter into [0,1], negative delays → 0, a multiplier below
/// 1 or not finite → 1); never throws.
[[nodiscard]] std::int64_t backoff_delay_ms(const retry_policy& p, int attempt,
                                            double random01) noexcept;

/// Which way a step runs. `on_compensated` is the definition's closing action after every
/// compensation (it is tracked as step index == number of steps).
enum class phase { forward, compensation, on_compensated };
[[nodiscard]] std::string_view to_string(phase p) noexcept;  ///< "forward", …

/// What a definition's functions see when they build commands.
struct saga_context {
  std::string saga_id;
  std::string correlation_id;
  saga_input input;
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  /// When this step's phase first started: the engine stamps it into each command's `at`
  /// so that re-sends are identical.
  timestamp at = 0;
  std::string reason;  ///< why the saga compensates (empty in the forward phase)
};

/// Builds a step's commands; the i-th command is target i.
using step_function = std::function<std::vector<step_command>(const saga_context&)>;

struct step_definition {
  std::string name;
  step_function action;
  /// The i-th command undoes the i-th action command; empty = nothing to undo.
  step_function compensation;
  std::int64_t timeout_ms = 5000;  ///< per attempt, in both directions
  retry_policy retry;
  retry_policy compensation_retry;
};

struct saga_definition {
  std::string type;
  std::vector<step_definition> steps;
  /// Runs after all compensations (e.g. cancel the order with the reason); retried like a
  /// compensation with the two fields below. Empty = nothing to do.
  step_function on_compensated;
  std::int64_t on_compensated_timeout_ms = 5000;
  retry_policy on_compensated_retry;
};

/// Type name → definition, for the runtime to find a saga's definition on recovery.
/// Built at start-up, then read-only (const access is thread-safe).
class saga_catalog {
 public:
  /// Adds `def`; false (and nothing changes) when its type is empty or already present.
  bool add(saga_definition def);
  /// The definition of `type`, or nullptr.
  [[nodiscard]] const saga_definition* find(std::string_view type) const;
  [[nodiscard]] std::vector<std::string> types() const;

 private:
  std::map<std::string, saga_definition, std::less<>> definitions_;
};

// ---- events ----

enum class status { none, running, compensating, completed, compensated, failed };
[[nodiscard]] std::string_view to_string(status s) noexcept;  ///< "RUNNING", …

/// Outcome of one target (one command) of a step phase.
enum class target_status {
  pending,    ///< sent in the running attempt, no answer yet
  succeeded,  ///< done (never sent again)
  failed,     ///< refused for good: known not to have taken effect
  unknown,    ///< transient failure or no answer before the deadline: may have taken effect
  skipped,    ///< not part of this phase (e.g. nothing to undo for it)
};
[[nodiscard]] std::string_view to_string(target_status s) noexcept;  ///< "pending", …

enum class step_status {
  pending,              ///< not started
  running,              ///< forward attempt in flight or waiting for a retry
  succeeded,            ///< every target done
  failed,               ///< forward phase failed for good
  aborted,              ///< forward phase stopped by a manual compensation or a cancel
  compensating,         ///< compensation in flight or waiting for a retry
  compensated,          ///< compensation done
  compensation_failed,  ///< compensation gave up: the saga is FAILED
};
[[nodiscard]] std::string_view to_string(step_status s) noexcept;  ///< "SUCCEEDED", …

/// SagaStepStarted: one attempt of a step phase sent `targets` (indexes into its
/// `target_count` commands). `deadline_at` is durable so a restart can re-arm the timer.
/// decide folds it into the event before it when that is SagaStarted, SagaStepSucceeded,
/// SagaStepCompensated or SagaCompensationStarted (their `next`): one journal event instead of
/// two. evolve applies `next` right after the event that carries it; a standalone
/// SagaStepStarted (retries, and every journal written before folding) replays as before.
struct step_started {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  int target_count = 0;
  std::vector<int> targets;
  timestamp at = 0;
  timestamp deadline_at = 0;
};
/// SagaStarted. `steps` are the definition's step names, kept for views.
struct saga_started {
  std::string saga_id;
  std::string saga_type;
  std::string correlation_id;
  saga_input input;
  std::vector<std::string> steps;
  timestamp at = 0;
  std::optional<step_started> next;  ///< the first step's first attempt (see step_started)
};
/// SagaStepSucceeded: forward target `target` succeeded; `step_done` when that finished the
/// step (target -1: a step with nothing to send).
struct step_succeeded {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  int target = 0;
  bool step_done = false;
  timestamp at = 0;
  std::optional<step_started> next;  ///< the attempt this event starts (see step_started)
};
/// SagaStepFailed. With target >= 0: that target failed (retryable = transient). With
/// target == -1: the verdict on the whole attempt; `will_retry` with the durable `retry_at`,
/// otherwise the phase gave up (compensation or SagaFailed follows).
struct step_failed {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  int target = -1;
  std::string reason;
  bool retryable = false;
  bool will_retry = false;
  timestamp retry_at = 0;
  timestamp at = 0;
};
/// SagaCompensationStarted: forward work stops; compensation runs (again, when resumed).
struct compensation_started {
  std::string reason;
  timestamp at = 0;
  std::optional<step_started> next;  ///< the attempt this event starts (see step_started)
};
/// SagaStepCompensated: a compensation (or on_compensated) target succeeded; `step_done` as
/// for step_succeeded.
struct step_compensated {
  int step = 0;
  phase phase_ = phase::compensation;
  int attempt = 1;
  int target = 0;
  bool step_done = false;
  timestamp at = 0;
  std::optional<step_started> next;  ///< the attempt this event starts (see step_started)
};
struct saga_completed {
  timestamp at = 0;
};
struct saga_compensated {
  std::string reason;
  timestamp at = 0;
};
/// SagaFailed: a compensation gave up; an operator must retry or compensate by hand.
struct saga_failed {
  int step = 0;
  phase phase_ = phase::compensation;
  std::string reason;
  timestamp at = 0;
};
using event =
    std::variant<saga_started, step_started, step_succeeded, step_failed, compensation_started,
                 step_compensated, saga_completed, saga_compensated, saga_failed>;

bool operator==(const saga_started& a, const saga_started& b);
bool operator==(const step_started& a, const step_started& b);
bool operator==(const step_succeeded& a, const step_succeeded& b);
bool operator==(const step_failed& a, const step_failed& b);
bool operator==(const compensation_started& a, const compensation_started& b);
bool operator==(const step_compensated& a, const step_compensated& b);
bool operator==(const saga_completed& a, const saga_completed& b);
bool operator==(const saga_compensated& a, const saga_compensated& b);
bool operator==(const saga_failed& a, const saga_failed& b);

// ---- state ----

/// Progress of one step (or of on_compensated, which only uses the compensation half).
struct step_record {
  step_status status_ = step_status::pending;
  std::vector<target_status> forward;       ///< latest known outcome per action target
  std::vector<target_status> compensation;  ///< per target; empty until compensation starts
  timestamp started_at = 0;                 ///< first forward attempt (commands' `at`)
  timestamp compensation_started_at = 0;    ///< first compensation attempt (commands' `at`)

  friend bool operator==(const step_record& a, const step_record& b) {
    return a.status_ == b.status_ && a.forward == b.forward && a.compensation == b.compensation &&
           a.started_at == b.started_at && a.compensation_started_at == b.compensation_started_at;
  }
};

struct state {
  std::string saga_id;
  std::string saga_type;
  std::string correlation_id;
  saga_input input;
  status status_ = status::none;
  int current_step = 0;
  phase phase_ = phase::forward;
  int attempt = 0;
  bool awaiting_retry = false;  ///< the attempt failed and a retry timer is due at retry_at
  timestamp deadline_at = 0;    ///< of the attempt in flight (0 when none)
  timestamp retry_at = 0;
  std::vector<std::string> step_names;
  std::vector<step_record> steps;
  step_record on_compensated;            ///< the closing action's progress
  std::string attempt_failure;           ///< first failure reason of the running attempt
  bool attempt_failed_for_good = false;  ///< a target of the running attempt refused for good
  std::string compensation_reason;       ///< why the saga compensates (goes to on_compensated)
  std::string failure_reason;            ///< why the saga is FAILED
  std::int64_t version = 0;              ///< number of events applied
  timestamp started_at = 0;
  timestamp updated_at = 0;

  friend bool operator==(const state& a, const state& b);
};

/// Per-target status of the current step phase (empty before the first step).
[[nodiscard]] const std::vector<target_status>& current_targets(const state& s);
/// RUNNING or COMPENSATING: work is in flight and must be resumed after a restart
/// (COMPLETED can still be cancelled, FAILED waits for an operator).
[[nodiscard]] bool is_active(status s) noexcept;

/// Applies one event; total (every event type is handled).
[[nodiscard]] state evolve(state s, const event& e);

// ---- inputs ----

struct start {
  std::string saga_id;
  std::string correlation_id;
  saga_input input;
  /// Something durable outside the saga names it and starts it again should SagaStarted be
  /// lost. An order is such an anchor: its OrderCreated carries the saga id, recovery starts the
  /// saga of a PENDING order that has none, and a cancel of such an order starts it too and
  /// compensates through it. Then the first step's commands may go out before SagaStarted
  /// commits (send_commands::before_commit): whatever they did is found again by the restarted
  /// saga (same keys) or undone by its compensation. Without an anchor, a lost start would
  /// leave their effects to no one, so the first step waits for the commit.
  bool anchored = false;
};
/// A target's command succeeded (for compensations: the undo succeeded).
struct target_succeeded {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  int target = 0;
};
/// A target's command failed: retryable = transient (timeout, unavailable), otherwise a
/// business refusal (declined, insufficient stock).
struct target_failed {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  int target = 0;
  std::string reason;
  bool retryable = false;
};
struct deadline_reached {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
};
struct retry_due {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
};
/// Operator: resume a FAILED saga's compensation where it stopped, with fresh attempts
/// (numbered from 1 again; targets already undone are not sent again).
struct manual_retry {};
/// Operator: compensate a RUNNING saga (or resume a FAILED one).
struct manual_compensate {
  std::string reason;
};
/// Customer or admin: undo a RUNNING or COMPLETED saga (or resume a FAILED one).
struct cancel_requested {
  std::string reason;
};
using input = std::variant<start, target_succeeded, target_failed, deadline_reached, retry_due,
                           manual_retry, manual_compensate, cancel_requested>;

// ---- actions for the runtime ----

struct targeted_command {
  int target = 0;
  step_command command;
};
/// Send these commands; answer each with target_succeeded / target_failed quoting
/// step, phase, attempt and target.
struct send_commands {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  std::vector<targeted_command> commands;
  timestamp deadline_at = 0;
  /// The commands may go out at once, before the transition's events are committed
  /// (pipelining). decide allows it where losing those events cannot leave the commands'
  /// effects unaccounted for:
  /// - the first step of an anchored start (see start::anchored);
  /// - the first attempt of a forward step that follows a succeeded one: if the events are
  ///   lost, the journal shows the previous step unfinished and this one not begun, and a
  ///   compensation then undoes this "in-doubt" step as well (see decide);
  /// - the first attempt of a compensation step or of on_compensated that follows another
  ///   compensation step, i.e. once the compensation is recorded in the journal: if the events
  ///   are lost, the journal shows the previous compensation step unfinished; it is re-sent,
  ///   and then this one again, and a compensation answers a repeat with "nothing (left) to
  ///   undo". The first compensation step waits for the commit that starts the compensation:
  ///   were that lost, the saga would go on forward (a re-sent step is not always refused
  ///   again: keys are remembered for a bounded number of commands).
  bool before_commit = false;
};
enum class timer_kind { deadline, retry };
/// Deliver deadline_reached or retry_due (quoting step, phase, attempt) at `at`.
struct arm_timer {
  int step = 0;
  phase phase_ = phase::forward;
  int attempt = 1;
  timer_kind kind = timer_kind::deadline;
  timestamp at = 0;
};
/// The saga reached COMPLETED, COMPENSATED or FAILED.
struct finished {
  status status_ = status::completed;
};
using action = std::variant<send_commands, arm_timer, finished>;

/// What decide returns: events to persist atomically (in order), then actions to run.
struct transition {
  std::vector<event> events;
  std::vector<action> actions;
};

/// Runs `in` against `s` under `def`. Invalid operations are rejections (invalid_state /
/// invalid_argument); stale inputs (another step, phase or attempt, an answered target, a
/// timer of a finished attempt) give an empty transition. `random01` in [0,1) jitters
/// retry delays.
///
/// Compensation undoes, besides every step whose forward commands may have acted, the
/// "in-doubt" step: the pending step right after an unfinished one (running, aborted or given
/// up without a refusal). Its commands may have been sent early (send_commands::before_commit)
/// by a transition whose events never reached the journal; undoing it is safe either way, since
/// compensations answer "nothing to undo" for work that never happened.
[[nodiscard]] result<transition> decide(const saga_definition& def, const state& s, const input& in,
                                        timestamp now, double random01);

/// What the runtime must do after a restart to continue a saga from its state alone:
/// re-send the unanswered targets of the attempt in flight (unless its durable deadline has
/// passed) and re-arm its deadline, or re-arm the retry timer. Empty for COMPLETED,
/// COMPENSATED and FAILED sagas. A definition whose steps do not match the state is an
/// invalid_state rejection.
[[nodiscard]] result<std::vector<action>> recover(const saga_definition& def, const state& s,
                                                  timestamp now);

}  // namespace saga::domain::sagas

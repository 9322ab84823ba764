#include "domain/saga.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace saga::domain::sagas {
namespace {

// ---- text hygiene: events must always be storable as JSON / jsonb ----

/// Length of the valid UTF-8 sequence at s[i], or 0 (invalid, overlong, surrogate, NUL).
std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
  const auto c0 = static_cast<unsigned char>(s[i]);
  if (c0 == 0) return 0;
  if (c0 < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((c0 & 0xE0) == 0xC0) {
    n = 2;
    cp = c0 & 0x1F;
  } else if ((c0 & 0xF0) == 0xE0) {
    n = 3;
    cp = c0 & 0x0F;
  } else if ((c0 & 0xF8) == 0xF0) {
    n = 4;
    cp = c0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_clean(std::string_view s) noexcept {
  if (s.size() > max_text_bytes) return false;
  for (std::size_t i = 0; i < s.size();) {
    const auto n = utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

/// Reasons come from replies and operators: keep them, but make them storable (invalid
/// bytes become '?', NUL is dropped, at most max_text_bytes).
std::string clean(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), max_text_bytes));
  for (std::size_t i = 0; i < s.size();) {
    const auto n = utf8_length(s, i);
    if (n == 0) {
      if (s[i] != '\0' && out.size() < max_text_bytes) out += '?';
      ++i;
      continue;
    }
    if (out.size() + n > max_text_bytes) break;
    out.append(s, i, n);
    i += n;
  }
  return out;
}

std::string describe(int step, phase ph, int attempt) {
  return "step " + std::to_string(step) + " (" + std::string(to_string(ph)) + ", attempt " +
         std::to_string(attempt) + ")";
}

// ---- commands ----

struct command_names {
  std::string_view operator()(const order::create&) const { return "create"; }
  std::string_view operator()(const order::confirm&) const { return "confirm"; }
  std::string_view operator()(const order::cancel&) const { return "cancel"; }
  std::string_view operator()(const payment::process&) const { return "process"; }
  std::string_view operator()(const payment::refund&) const { return "refund"; }
  std::string_view operator()(const inventory::register_product&) const {
    return "register_product";
  }
  std::string_view operator()(const inventory::restock&) const { return "restock"; }
  std::string_view operator()(const inventory::reserve&) const { return "reserve"; }
  std::string_view operator()(const inventory::release&) const { return "release"; }
};

void stamp(any_command& c, std::string key, timestamp at) {
  std::visit(
      [&](auto& aggregate_command) {
        std::visit(
            [&](auto& cmd) {
              cmd.idempotency_key = std::move(key);
              cmd.at = at;
            },
            aggregate_command);
      },
      c);
}

// ---- definition lookups ----

bool same_shape(const saga_definition& def, const state& s) {
  return s.saga_type == def.type && s.steps.size() == def.steps.size();
}

std::string step_label(const saga_definition& def, int step, phase ph) {
  if (ph == phase::on_compensated) return "on_compensated";
  return def.steps[static_cast<std::size_t>(step)].name;
}

const step_function& function_of(const saga_definition& def, int step, phase ph) {
  if (ph == phase::on_compensated) return def.on_compensated;
  const auto& st = def.steps[static_cast<std::size_t>(step)];
  return ph == phase::forward ? st.action : st.compensation;
}

const retry_policy& policy_of(const saga_definition& def, int step, phase ph) {
  if (ph == phase::on_compensated) return def.on_compensated_retry;
  const auto& st = def.steps[static_cast<std::size_t>(step)];
  return ph == phase::forward ? st.retry : st.compensation_retry;
}

std::int64_t timeout_of(const saga_definition& def, int step, phase ph) {
  if (ph == phase::on_compensated) return def.on_compensated_timeout_ms;
  return def.steps[static_cast<std::size_t>(step)].timeout_ms;
}

// ---- state lookups ----

/// The record a step phase writes to (nullptr for an index outside the saga).
template <class State>
auto* record_of(State& s, int step, phase ph) {
  if (ph == phase::on_compensated) return &s.on_compensated;
  if (step < 0 || static_cast<std::size_t>(step) >= s.steps.size())
    return static_cast<decltype(&s.on_compensated)>(nullptr);
  return &s.steps[static_cast<std::size_t>(step)];
}

std::vector<target_status>& targets_of(step_record& r, phase ph) {
  return ph == phase::forward ? r.forward : r.compensation;
}

const std::vector<target_status>& targets_of(const step_record& r, phase ph) {
  return ph == phase::forward ? r.forward : r.compensation;
}

bool compensation_begun(step_status st) noexcept {
  return st == step_status::compensating || st == step_status::compensated ||
         st == step_status::compensation_failed;
}

bool phase_begun(const step_record& r, phase ph) noexcept {
  return ph == phase::forward ? r.status_ != step_status::pending
                              : (ph == phase::compensation ? compensation_begun(r.status_)
                                                           : r.status_ != step_status::pending);
}

/// The `at` stamped into a step phase's commands: when its first attempt started.
timestamp first_at(const step_record& r, phase ph, timestamp now) noexcept {
  if (!phase_begun(r, ph)) return now;
  return ph == phase::forward ? r.started_at : r.compensation_started_at;
}

/// A forward target whose effect may exist and so must be undone.
bool may_have_taken_effect(const step_record& r, std::size_t i) noexcept {
  if (i >= r.forward.size()) return false;
  const auto t = r.forward[i];
  return t == target_status::succeeded || t == target_status::unknown ||
         t == target_status::pending;
}

bool still_to_undo(target_status t) noexcept {
  return t == target_status::pending || t == target_status::unknown || t == target_status::failed;
}

/// Step j was never started in the journal, but its forward commands may have been sent early
/// (send_commands::before_commit) by the transition that finished step j-1 and whose events were
/// lost: step j-1 is unfinished and none of its targets refused for good (a refusal is final, so
/// that step never succeeded and step j was never sent).
bool in_doubt(const state& s, std::size_t j) {
  if (j == 0 || j >= s.steps.size() || s.steps[j].status_ != step_status::pending) return false;
  const auto& prev = s.steps[j - 1];
  if (prev.status_ != step_status::running && prev.status_ != step_status::aborted &&
      prev.status_ != step_status::failed)
    return false;
  return std::none_of(prev.forward.begin(), prev.forward.end(),
                      [](target_status t) { return t == target_status::failed; });
}

/// Targets an attempt of this phase sends, out of `count` commands. `doubtful`: the step is
/// in doubt (compensation undoes every target).
std::vector<int> sendable(const step_record& r, phase ph, std::size_t count, bool doubtful) {
  std::vector<int> out;
  for (std::size_t i = 0; i < count; ++i) {
    bool send = false;
    if (ph == phase::forward) {
      send = i >= r.forward.size() || r.forward[i] != target_status::succeeded;
    } else if (i < r.compensation.size() && phase_begun(r, ph)) {
      send = still_to_undo(r.compensation[i]);
    } else {
      send = ph == phase::on_compensated || doubtful || may_have_taken_effect(r, i);
    }
    if (send) out.push_back(static_cast<int>(i));
  }
  return out;
}

bool needs_compensation(const saga_definition& def, const state& s, std::size_t j) {
  if (!def.steps[j].compensation) return false;
  const auto& r = s.steps[j];
  if (r.status_ == step_status::compensated) return false;
  if (compensation_begun(r.status_))
    return std::any_of(r.compensation.begin(), r.compensation.end(), still_to_undo);
  for (std::size_t i = 0; i < r.forward.size(); ++i)
    if (may_have_taken_effect(r, i)) return true;
  return in_doubt(s, j);
}

/// Builds a step phase's commands and stamps key and `at` into each, so that every build
/// for the same saga, step and phase yields the same commands.
std::vector<step_command> build_commands(const saga_definition& def, const state& s, int step,
                                         phase ph, int attempt, timestamp at) {
  const auto& fn = function_of(def, step, ph);
  if (!fn) return {};
  saga_context ctx{s.saga_id, s.correlation_id,
                   s.input,   step,
                   ph,        attempt,
                   at,        ph == phase::forward ? std::string() : s.compensation_reason};
  auto cmds = fn(ctx);
  const bool several = cmds.size() > 1;
  const auto label = step_label(def, step, ph);
  for (auto& c : cmds) {
    stamp(c.command,
          make_idempotency_key(s.saga_id, label, command_name(c.command), c.aggregate_id, several),
          at);
  }
  return cmds;
}

// ---- folded step starts ----

/// The events that can carry a folded step_started (`next`).
template <class E>
constexpr bool carries_next =
    std::is_same_v<E, saga_started> || std::is_same_v<E, step_succeeded> ||
    std::is_same_v<E, step_compensated> || std::is_same_v<E, compensation_started>;

/// Where an event keeps a folded step_started (nullptr: it cannot carry one).
struct next_slot {
  template <class E>
  std::optional<step_started>* operator()(E& e) const {
    if constexpr (carries_next<E>) {
      return &e.next;
    } else {
      return nullptr;
    }
  }
};

/// Applies a step_started folded into another event (not counted as an event of its own).
void apply_next(state& s, const step_started& e);

// ---- decide ----

/// One decision: emits events (applying each to its working copy of the state so later
/// logic sees it) and collects actions.
class engine {
 public:
  engine(const saga_definition& def, const state& s, timestamp now, double random01)
      : def_(def),
        s_(s),
        now_(now),
        random01_(random01),
        // `s` is what the journal holds: a compensation recorded there is never turned back
        // into forward work, so the next compensation's commands need not wait for a commit.
        early_compensation_(s.status_ == status::compensating) {}

  transition take() { return std::move(out_); }

  result<transition> operator()(const start& in) {
    if (s_.status_ != status::none)
      return reject(rejection_code::invalid_state, "saga " + s_.saga_id + " already started");
    if (in.saga_id.empty()) return reject(rejection_code::invalid_argument, "saga_id is empty");
    if (auto bad = invalid_text(in)) return reject(rejection_code::invalid_argument, *bad);
    std::vector<std::string> names;
    names.reserve(def_.steps.size());
    for (const auto& st : def_.steps) names.push_back(st.name);
    emit(saga_started{in.saga_id, def_.type, in.correlation_id, in.input, std::move(names), now_,
                      std::nullopt});
    if (def_.steps.empty()) {
      complete();
    } else {
      start_attempt(0, phase::forward, 1, in.anchored);
    }
    return take();
  }

  result<transition> operator()(const target_succeeded& in) {
    if (!answerable(in.step, in.phase_, in.attempt, in.target)) return take();
    const auto& v = current_targets(s_);
    bool done = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (static_cast<int>(i) == in.target) continue;
      if (v[i] != target_status::succeeded && v[i] != target_status::skipped) done = false;
    }
    const bool others_pending = pending_besides(in.target);
    emit_success(in.step, in.phase_, in.attempt, in.target, done);
    if (done) {
      advance(in.step, in.phase_, true);
    } else if (!others_pending) {
      fail_attempt(s_.attempt_failure, s_.attempt_failed_for_good);
    }
    return take();
  }

  result<transition> operator()(const target_failed& in) {
    if (!answerable(in.step, in.phase_, in.attempt, in.target)) return take();
    const bool others_pending = pending_besides(in.target);
    auto reason = clean(in.reason);
    if (reason.empty()) reason = "failed";
    emit(step_failed{in.step, in.phase_, in.attempt, in.target, std::move(reason), in.retryable,
                     false, 0, now_});
    if (!others_pending) fail_attempt(s_.attempt_failure, s_.attempt_failed_for_good);
    return take();
  }

  result<transition> operator()(const deadline_reached& in) {
    if (!in_flight(in.step, in.phase_, in.attempt)) return take();
    const auto& v = current_targets(s_);
    if (std::none_of(v.begin(), v.end(),
                     [](target_status t) { return t == target_status::pending; }))
      return take();
    // A refusal for good decides the step even if other targets stayed silent.
    auto reason =
        s_.attempt_failed_for_good
            ? s_.attempt_failure
            : "timed out after " + std::to_string(timeout_of(def_, in.step, in.phase_)) + " ms";
    fail_attempt(std::move(reason), s_.attempt_failed_for_good);
    return take();
  }

  result<transition> operator()(const retry_due& in) {
    if (!status_matches(in.phase_) || !s_.awaiting_retry || s_.current_step != in.step ||
        s_.phase_ != in.phase_ || s_.attempt != in.attempt || !exists(in.step, in.phase_))
      return take();
    start_attempt(in.step, in.phase_, in.attempt + 1);
    return take();
  }

  result<transition> operator()(const manual_retry&) {
    if (s_.status_ != status::failed)
      return reject(rejection_code::invalid_state, "only a FAILED saga can be retried; saga " +
                                                       s_.saga_id + " is " +
                                                       std::string(to_string(s_.status_)));
    resume();
    return take();
  }

  result<transition> operator()(const manual_compensate& in) {
    if (s_.status_ == status::failed) {
      resume();
    } else if (s_.status_ == status::running) {
      begin_compensation(in.reason.empty() ? "manual compensation" : clean(in.reason));
    } else {
      return reject(rejection_code::invalid_state,
                    "only a RUNNING or FAILED saga can be compensated; saga " + s_.saga_id +
                        " is " + std::string(to_string(s_.status_)));
    }
    return take();
  }

  result<transition> operator()(const cancel_requested& in) {
    if (s_.status_ == status::failed) {
      resume();
    } else if (s_.status_ == status::running || s_.status_ == status::completed) {
      begin_compensation(in.reason.empty() ? "cancelled" : clean(in.reason));
    } else {
      return reject(rejection_code::invalid_state,
                    "only a RUNNING, COMPLETED or FAILED saga can be cancelled; saga " +
                        s_.saga_id + " is " + std::string(to_string(s_.status_)));
    }
    return take();
  }

 private:
  static std::optional<std::string> invalid_text(const start& in) {
    auto check = [](const std::string& v, const char* field) -> std::optional<std::string> {
      if (is_clean(v)) return std::nullopt;
      return std::string(field) + " is not valid UTF-8 text of at most " +
             std::to_string(max_text_bytes) + " bytes";
    };
    if (auto e = check(in.saga_id, "saga_id")) return e;
    if (auto e = check(in.correlation_id, "correlation_id")) return e;
    if (auto e = check(in.input.order_id, "input.order_id")) return e;
    if (auto e = check(in.input.customer_id, "input.customer_id")) return e;
    for (const auto& it : in.input.items) {
      if (auto e = check(it.product_id, "input.items.product_id")) return e;
      if (auto e = check(it.product_name, "input.items.product_name")) return e;
    }
    for (const auto& [k, v] : in.input.attributes) {
      if (auto e = check(k, "input.attributes key")) return e;
      if (auto e = check(v, "input.attributes value")) return e;
    }
    return std::nullopt;
  }

  void emit(event e) {
    s_ = evolve(std::move(s_), e);
    out_.events.push_back(std::move(e));
  }

  /// Folds the attempt into the event just emitted when that one can carry it (its `next`),
  /// else emits it on its own.
  void emit_start(step_started e) {
    if (!out_.events.empty()) {
      auto* slot = std::visit(next_slot{}, out_.events.back());
      if (slot != nullptr && !slot->has_value()) {
        apply_next(s_, e);
        *slot = std::move(e);
        return;
      }
    }
    emit(std::move(e));
  }

  bool status_matches(phase ph) const {
    return s_.status_ == (ph == phase::forward ? status::running : status::compensating);
  }

  /// The definition has this step phase (on_compensated sits right after the last step).
  bool exists(int step, phase ph) const {
    const auto n = static_cast<int>(def_.steps.size());
    return ph == phase::on_compensated ? step == n : step >= 0 && step < n;
  }

  /// The attempt is the one in flight (not finished, not waiting for a retry).
  bool in_flight(int step, phase ph, int attempt) const {
    return status_matches(ph) && !s_.awaiting_retry && s_.current_step == step && s_.phase_ == ph &&
           s_.attempt == attempt && exists(step, ph);
  }

  bool answerable(int step, phase ph, int attempt, int target) const {
    if (!in_flight(step, ph, attempt)) return false;
    const auto& v = current_targets(s_);
    return target >= 0 && static_cast<std::size_t>(target) < v.size() &&
           v[static_cast<std::size_t>(target)] == target_status::pending;
  }

  bool pending_besides(int target) const {
    const auto& v = current_targets(s_);
    for (std::size_t i = 0; i < v.size(); ++i)
      if (static_cast<int>(i) != target && v[i] == target_status::pending) return true;
    return false;
  }

  void emit_success(int step, phase ph, int attempt, int target, bool done) {
    if (ph == phase::forward) {
      emit(step_succeeded{step, ph, attempt, target, done, now_, std::nullopt});
    } else {
      emit(step_compensated{step, ph, attempt, target, done, now_, std::nullopt});
    }
  }

  /// `early`: the commands may be sent before this transition commits (see send_commands).
  void start_attempt(int step, phase ph, int attempt, bool early = false) {
    const auto* rec = record_of(s_, step, ph);
    const timestamp at = first_at(*rec, ph, now_);
    auto cmds = build_commands(def_, s_, step, ph, attempt, at);
    const bool doubtful = ph == phase::compensation && !phase_begun(*rec, ph) &&
                          in_doubt(s_, static_cast<std::size_t>(step));
    auto targets = sendable(*rec, ph, cmds.size(), doubtful);
    const bool nothing_to_send = targets.empty();
    const timestamp deadline = nothing_to_send ? now_ : now_ + timeout_of(def_, step, ph);
    emit_start(
        step_started{step, ph, attempt, static_cast<int>(cmds.size()), targets, now_, deadline});
    if (nothing_to_send) {
      emit_success(step, ph, attempt, -1, true);
      // Not early: the in-doubt rule looks one step back only, past a step that was answered.
      advance(step, ph, false);
      return;
    }
    send_commands send{step, ph, attempt, {}, deadline, early};
    send.commands.reserve(targets.size());
    for (int t : targets)
      send.commands.push_back({t, std::move(cmds[static_cast<std::size_t>(t)])});
    out_.actions.emplace_back(std::move(send));
    out_.actions.emplace_back(arm_timer{step, ph, attempt, timer_kind::deadline, deadline});
  }

  /// `early`: step `step` was just answered with success in this transition; if that never
  /// commits, the next step is in doubt and compensation covers it, so its commands need not
  /// wait for the commit.
  void advance(int step, phase ph, bool early) {
    if (ph != phase::forward) {
      continue_compensation();
    } else if (static_cast<std::size_t>(step) + 1 < def_.steps.size()) {
      start_attempt(step + 1, phase::forward, 1, early);
    } else {
      complete();
    }
  }

  void complete() {
    emit(saga_completed{now_});
    out_.actions.emplace_back(finished{status::completed});
  }

  /// Every answer of the attempt is in (or its deadline passed) and not all succeeded.
  void fail_attempt(std::string reason, bool for_good) {
    const int step = s_.current_step;
    const phase ph = s_.phase_;
    const int attempt = s_.attempt;
    const auto& policy = policy_of(def_, step, ph);
    if (reason.empty()) reason = "failed";
    if (!for_good && attempt < policy.max_attempts) {
      const timestamp retry_at = now_ + backoff_delay_ms(policy, attempt, random01_);
      emit(step_failed{step, ph, attempt, -1, reason, true, true, retry_at, now_});
      out_.actions.emplace_back(arm_timer{step, ph, attempt, timer_kind::retry, retry_at});
      return;
    }
    emit(step_failed{step, ph, attempt, -1, reason, !for_good, false, 0, now_});
    std::string why = step_label(def_, step, ph) + ": " + reason;
    if (!for_good)
      why += " (gave up after " + std::to_string(attempt) +
             (attempt == 1 ? " attempt)" : " attempts)");
    if (ph == phase::forward) {
      begin_compensation(std::move(why));
    } else {
      if (ph == phase::compensation) why = "compensating " + why;
      emit(saga_failed{step, ph, std::move(why), now_});
      out_.actions.emplace_back(finished{status::failed});
    }
  }

  void begin_compensation(std::string reason) {
    emit(compensation_started{std::move(reason), now_, std::nullopt});
    continue_compensation();
  }

  /// A FAILED saga resumes its compensation for the reason it started with.
  void resume() { begin_compensation(s_.compensation_reason); }

  /// Compensates the highest step that still has something to undo, then runs
  /// on_compensated, then ends COMPENSATED.
  void continue_compensation() {
    for (std::size_t j = def_.steps.size(); j-- > 0;) {
      if (needs_compensation(def_, s_, j)) {
        start_attempt(static_cast<int>(j), phase::compensation, 1, early_compensation_);
        return;
      }
    }
    if (def_.on_compensated && s_.on_compensated.status_ != step_status::compensated) {
      start_attempt(static_cast<int>(def_.steps.size()), phase::on_compensated, 1,
                    early_compensation_);
      return;
    }
    emit(saga_compensated{s_.compensation_reason, now_});
    out_.actions.emplace_back(finished{status::compensated});
  }

  const saga_definition& def_;
  state s_;
  timestamp now_;
  double random01_;
  /// Compensation commands may go out before the commit (see send_commands::before_commit).
  bool early_compensation_ = false;
  transition out_;
};

// ---- evolve ----

struct event_applier {
  state& s;

  void operator()(const saga_started& e) {
    s.saga_id = e.saga_id;
    s.saga_type = e.saga_type;
    s.correlation_id = e.correlation_id;
    s.input = e.input;
    s.step_names = e.steps;
    s.steps.assign(e.steps.size(), step_record{});
    s.on_compensated = step_record{};
    s.status_ = status::running;
    s.current_step = 0;
    s.phase_ = phase::forward;
    s.attempt = 0;
    s.started_at = e.at;
  }

  void operator()(const step_started& e) {
    s.current_step = e.step;
    s.phase_ = e.phase_;
    s.attempt = e.attempt;
    s.awaiting_retry = false;
    s.retry_at = 0;
    s.deadline_at = e.deadline_at;
    s.attempt_failure.clear();
    s.attempt_failed_for_good = false;
    auto* rec = record_of(s, e.step, e.phase_);
    if (rec == nullptr) return;
    auto& v = targets_of(*rec, e.phase_);
    const auto count = static_cast<std::size_t>(std::max(0, e.target_count));
    if (v.size() != count) v.assign(count, target_status::skipped);
    for (int t : e.targets)
      if (t >= 0 && static_cast<std::size_t>(t) < v.size())
        v[static_cast<std::size_t>(t)] = target_status::pending;
    if (e.phase_ == phase::forward) {
      if (!phase_begun(*rec, e.phase_)) rec->started_at = e.at;
      rec->status_ = step_status::running;
    } else {
      if (!phase_begun(*rec, e.phase_)) rec->compensation_started_at = e.at;
      rec->status_ = step_status::compensating;
    }
  }

  void target_done(int step, phase ph, int target, bool step_done) {
    auto* rec = record_of(s, step, ph);
    if (rec == nullptr) return;
    auto& v = targets_of(*rec, ph);
    if (target >= 0 && static_cast<std::size_t>(target) < v.size())
      v[static_cast<std::size_t>(target)] = target_status::succeeded;
    if (step_done) {
      rec->status_ = ph == phase::forward ? step_status::succeeded : step_status::compensated;
      s.deadline_at = 0;
    }
  }

  void operator()(const step_succeeded& e) { target_done(e.step, e.phase_, e.target, e.step_done); }
  void operator()(const step_compensated& e) {
    target_done(e.step, e.phase_, e.target, e.step_done);
  }

  void operator()(const step_failed& e) {
    auto* rec = record_of(s, e.step, e.phase_);
    if (rec == nullptr) return;
    auto& v = targets_of(*rec, e.phase_);
    if (e.target >= 0) {
      if (static_cast<std::size_t>(e.target) < v.size())
        v[static_cast<std::size_t>(e.target)] =
            e.retryable ? target_status::unknown : target_status::failed;
      if (!e.retryable && !s.attempt_failed_for_good) {
        s.attempt_failure = e.reason;
        s.attempt_failed_for_good = true;
      } else if (s.attempt_failure.empty()) {
        s.attempt_failure = e.reason;
      }
      return;
    }
    // The verdict on the attempt: silent targets may or may not have acted.
    for (auto& t : v)
      if (t == target_status::pending) t = target_status::unknown;
    s.deadline_at = 0;
    if (e.will_retry) {
      s.awaiting_retry = true;
      s.retry_at = e.retry_at;
    } else {
      rec->status_ =
          e.phase_ == phase::forward ? step_status::failed : step_status::compensation_failed;
    }
  }

  void operator()(const compensation_started& e) {
    if (s.phase_ == phase::forward) {
      auto* rec = record_of(s, s.current_step, phase::forward);
      if (rec != nullptr && rec->status_ == step_status::running) {
        for (auto& t : rec->forward)
          if (t == target_status::pending) t = target_status::unknown;
        rec->status_ = step_status::aborted;
      }
    }
    s.status_ = status::compensating;
    s.compensation_reason = e.reason;
    s.failure_reason.clear();
    s.awaiting_retry = false;
    s.deadline_at = 0;
    s.retry_at = 0;
  }

  void settle(status st) {
    s.status_ = st;
    s.awaiting_retry = false;
    s.deadline_at = 0;
    s.retry_at = 0;
  }

  void operator()(const saga_completed&) { settle(status::completed); }
  void operator()(const saga_compensated&) { settle(status::compensated); }
  void operator()(const saga_failed& e) {
    settle(status::failed);
    s.failure_reason = e.reason;
  }
};

void apply_next(state& s, const step_started& e) { event_applier{s}(e); }

}  // namespace

// ---- names ----

std::string_view to_string(aggregate_kind k) noexcept {
  switch (k) {
    case aggregate_kind::order:
      return "order";
    case aggregate_kind::payment:
      return "payment";
    case aggregate_kind::inventory:
      return "inventory";
  }
  return "unknown";
}

std::string_view to_string(phase p) noexcept {
  switch (p) {
    case phase::forward:
      return "forward";
    case phase::compensation:
      return "compensation";
    case phase::on_compensated:
      return "on_compensated";
  }
  return "unknown";
}

std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::none:
      return "NONE";
    case status::running:
      return "RUNNING";
    case status::compensating:
      return "COMPENSATING";
    case status::completed:
      return "COMPLETED";
    case status::compensated:
      return "COMPENSATED";
    case status::failed:
      return "FAILED";
  }
  return "UNKNOWN";
}

std::string_view to_string(target_status s) noexcept {
  switch (s) {
    case target_status::pending:
      return "pending";
    case target_status::succeeded:
      return "succeeded";
    case target_status::failed:
      return "failed";
    case target_status::unknown:
      return "unknown";
    case target_status::skipped:
      return "skipped";
  }
  return "invalid";
}

std::string_view to_string(step_status s) noexcept {
  switch (s) {
    case step_status::pending:
      return "PENDING";
    case step_status::running:
      return "RUNNING";
    case step_status::succeeded:
      return "SUCCEEDED";
    case step_status::failed:
      return "FAILED";
    case step_status::aborted:
      return "ABORTED";
    case step_status::compensating:
      return "COMPENSATING";
    case step_status::compensated:
      return "COMPENSATED";
    case step_status::compensation_failed:
      return "COMPENSATION_FAILED";
  }
  return "UNKNOWN";
}

// ---- commands ----

std::string_view command_name(const any_command& c) noexcept {
  return std::visit(
      [](const auto& aggregate_command) { return std::visit(command_names{}, aggregate_command); },
      c);
}

const std::string& idempotency_key_of(const any_command& c) noexcept {
  return std::visit(
      [](const auto& aggregate_command) -> const std::string& {
        return std::visit([](const auto& cmd) -> const std::string& { return cmd.idempotency_key; },
                          aggregate_command);
      },
      c);
}

timestamp at_of(const any_command& c) noexcept {
  return std::visit(
      [](const auto& aggregate_command) {
        return std::visit([](const auto& cmd) { return cmd.at; }, aggregate_command);
      },
      c);
}

std::string make_idempotency_key(std::string_view saga_id, std::string_view step,
                                 std::string_view action_name, std::string_view aggregate_id,
                                 bool several_targets) {
  std::string key;
  key.reserve(saga_id.size() + step.size() + action_name.size() + aggregate_id.size() + 3);
  key.append(saga_id).append("/").append(step).append("/").append(action_name);
  if (several_targets) key.append("/").append(aggregate_id);
  return key;
}

// ---- retry ----

std::int64_t backoff_delay_ms(const retry_policy& p, int attempt, double random01) noexcept {
  const std::int64_t cap_ms = std::max<std::int64_t>(0, p.max_backoff_ms);
  const auto cap = static_cast<double>(cap_ms);
  const auto initial = static_cast<double>(std::max<std::int64_t>(0, p.initial_backoff_ms));
  const double multiplier = std::isfinite(p.multiplier) && p.multiplier >= 1.0 ? p.multiplier : 1.0;
  const int n = std::max(1, attempt);
  double base = initial * std::pow(multiplier, n - 1);
  if (!(base <= cap)) base = cap;  // also catches overflow to infinity
  auto unit = [](double x) { return std::isfinite(x) ? std::clamp(x, 0.0, 1.0) : 0.0; };
  const double jitter = unit(p.jitter);
  const double r = unit(random01);
  const double delay = std::round(base * (1.0 + jitter * (2.0 * r - 1.0)));
  if (!(delay > 0.0)) return 0;
  if (delay >= cap) return cap_ms;  // compare in double: cap_ms itself may not round-trip
  return static_cast<std::int64_t>(delay);
}

// ---- catalog ----

bool saga_catalog::add(saga_definition def) {
  if (def.type.empty() || definitions_.count(def.type) != 0) return false;
  auto type = def.type;
  definitions_.emplace(std::move(type), std::move(def));
  return true;
}

const saga_definition* saga_catalog::find(std::string_view type) const {
  auto it = definitions_.find(type);
  return it == definitions_.end() ? nullptr : &it->second;
}

std::vector<std::string> saga_catalog::types() const {
  std::vector<std::string> out;
  out.reserve(definitions_.size());
  for (const auto& entry : definitions_) out.push_back(entry.first);
  return out;
}

// ---- equality ----

bool operator==(const saga_started& a, const saga_started& b) {
  return std::tie(a.saga_id, a.saga_type, a.correlation_id, a.input, a.steps, a.at, a.next) ==
         std::tie(b.saga_id, b.saga_type, b.correlation_id, b.input, b.steps, b.at, b.next);
}
bool operator==(const step_started& a, const step_started& b) {
  return std::tie(a.step, a.phase_, a.attempt, a.target_count, a.targets, a.at, a.deadline_at) ==
         std::tie(b.step, b.phase_, b.attempt, b.target_count, b.targets, b.at, b.deadline_at);
}
bool operator==(const step_succeeded& a, const step_succeeded& b) {
  return std::tie(a.step, a.phase_, a.attempt, a.target, a.step_done, a.at, a.next) ==
         std::tie(b.step, b.phase_, b.attempt, b.target, b.step_done, b.at, b.next);
}
bool operator==(const step_failed& a, const step_failed& b) {
  return std::tie(a.step, a.phase_, a.attempt, a.target, a.reason, a.retryable, a.will_retry,
                  a.retry_at, a.at) == std::tie(b.step, b.phase_, b.attempt, b.target, b.reason,
                                                b.retryable, b.will_retry, b.retry_at, b.at);
}
bool operator==(const compensation_started& a, const compensation_started& b) {
  return a.reason == b.reason && a.at == b.at && a.next == b.next;
}
bool operator==(const step_compensated& a, const step_compensated& b) {
  return std::tie(a.step, a.phase_, a.attempt, a.target, a.step_done, a.at, a.next) ==
         std::tie(b.step, b.phase_, b.attempt, b.target, b.step_done, b.at, b.next);
}
bool operator==(const saga_completed& a, const saga_completed& b) { return a.at == b.at; }
bool operator==(const saga_compensated& a, const saga_compensated& b) {
  return a.reason == b.reason && a.at == b.at;
}
bool operator==(const saga_failed& a, const saga_failed& b) {
  return std::tie(a.step, a.phase_, a.reason, a.at) == std::tie(b.step, b.phase_, b.reason, b.at);
}

bool operator==(const state& a, const state& b) {
  return std::tie(a.saga_id, a.saga_type, a.correlation_id, a.input, a.status_, a.current_step,
                  a.phase_, a.attempt, a.awaiting_retry, a.deadline_at, a.retry_at, a.step_names,
                  a.steps, a.on_compensated, a.attempt_failure, a.attempt_failed_for_good,
                  a.compensation_reason, a.failure_reason, a.version, a.started_at, a.updated_at) ==
         std::tie(b.saga_id, b.saga_type, b.correlation_id, b.input, b.status_, b.current_step,
                  b.phase_, b.attempt, b.awaiting_retry, b.deadline_at, b.retry_at, b.step_names,
                  b.steps, b.on_compensated, b.attempt_failure, b.attempt_failed_for_good,
                  b.compensation_reason, b.failure_reason, b.version, b.started_at, b.updated_at);
}

// ---- state machine ----

const std::vector<target_status>& current_targets(const state& s) {
  static const std::vector<target_status> none;
  if (s.status_ == status::none) return none;
  const auto* rec = record_of(s, s.current_step, s.phase_);
  return rec == nullptr ? none : targets_of(*rec, s.phase_);
}

bool is_active(status s) noexcept { return s == status::running || s == status::compensating; }

state evolve(state s, const event& e) {
  std::visit(event_applier{s}, e);
  std::visit(
      [&s](const auto& ev) {
        if constexpr (carries_next<std::decay_t<decltype(ev)>>) {
          if (ev.next) apply_next(s, *ev.next);
        }
      },
      e);
  ++s.version;
  s.updated_at = std::visit([](const auto& ev) { return ev.at; }, e);
  return s;
}

result<transition> decide(const saga_definition& def, const state& s, const input& in,
                          timestamp now, double random01) {
  if (s.status_ != status::none && !same_shape(def, s))
    return reject(rejection_code::invalid_state,
                  "saga " + s.saga_id + " of type " + s.saga_type + " with " +
                      std::to_string(s.steps.size()) + " steps does not match definition " +
                      def.type + " with " + std::to_string(def.steps.size()) + " steps");
  engine eng(def, s, now, random01);
  return std::visit(eng, in);
}

result<std::vector<action>> recover(const saga_definition& def, const state& s, timestamp now) {
  if (s.status_ == status::none || !is_active(s.status_)) return std::vector<action>{};
  if (!same_shape(def, s))
    return reject(rejection_code::invalid_state,
                  "saga " + s.saga_id + " does not match definition " + def.type);
  const int step = s.current_step;
  const phase ph = s.phase_;
  if (s.awaiting_retry)
    return std::vector<action>{arm_timer{step, ph, s.attempt, timer_kind::retry, s.retry_at}};
  const auto* rec = record_of(s, step, ph);
  if (rec == nullptr)
    return reject(rejection_code::invalid_state,
                  "saga " + s.saga_id + " has no " + describe(step, ph, s.attempt));
  std::vector<action> out;
  const auto& v = targets_of(*rec, ph);
  const bool any_pending =
      std::any_of(v.begin(), v.end(), [](target_status t) { return t == target_status::pending; });
  // After the deadline a re-send is pointless: the deadline timer fires at once and decides.
  if (any_pending && now < s.deadline_at) {
    auto cmds = build_commands(def, s, step, ph, s.attempt, first_at(*rec, ph, now));
    send_commands send{step, ph, s.attempt, {}, s.deadline_at};
    for (std::size_t i = 0; i < v.size() && i < cmds.size(); ++i)
      if (v[i] == target_status::pending)
        send.commands.push_back({static_cast<int>(i), std::move(cmds[i])});
    out.emplace_back(std::move(send));
  }
  out.emplace_back(arm_timer{step, ph, s.attempt, timer_kind::deadline, s.deadline_at});
  return out;
}

}  // namespace saga::domain::sagas

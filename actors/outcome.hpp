// Replies of the actor runtime: what happened to one command (accepted, replayed, rejected or an
// infrastructure failure) and to one state query. Plain values without CAF, so apps and tests
// can use them through the facade; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "domain/rejection.hpp"

namespace saga::actors {

/// Who sent a command and why; copied into the metadata of every event it produces.
struct command_meta {
  std::string correlation_id;
  std::string causation_id;
  std::string command_id;
  std::string user_id;
};

enum class reply_kind : std::uint8_t {
  accepted,  ///< events (possibly none) were committed; `events` and `version` are set
  replayed,  ///< the idempotency key was handled before; `events` is that earlier outcome
  rejected,  ///< a business rule refused the command; nothing was written
  failed,    ///< infrastructure failure; see `failure` and retryable()
};

/// Infrastructure failures. Retryable ones may succeed when the same command (same idempotency
/// key) is sent again.
enum class failure_code : std::uint8_t {
  none,
  timeout,              ///< no answer in time; the command may or may not have been committed
  version_conflict,     ///< another writer kept changing the stream
  journal_unavailable,  ///< transient journal error; may or may not have been committed
  journal_error,        ///< the journal refused the append (bug or broken database)
  poison_command,       ///< the command crashed its actor repeatedly and was dropped
  actor_unavailable,    ///< the actor could not be (re)started within its restart budget
  overloaded,           ///< too many commands buffered for one actor
  gateway_unavailable,  ///< the payment gateway failed or did not answer in time; nothing recorded
};

/// Stable names for logs and problem details.
[[nodiscard]] std::string_view to_string(reply_kind kind) noexcept;
[[nodiscard]] std::string_view to_string(failure_code code) noexcept;
/// Whether sending the same command again may succeed.
[[nodiscard]] bool is_retryable(failure_code code) noexcept;

/// Handed back to a command's sender whose rider was written with the command's events (see
/// command_rider in actors/messages.hpp). Only the sender knows what it holds; it never leaves
/// the process.
struct rider_receipt {
  virtual ~rider_receipt() = default;
};

/// The answer to one command sent to an aggregate.
template <class Event>
struct command_reply {
  reply_kind kind = reply_kind::failed;
  std::vector<Event> events;  ///< new (accepted) or earlier (replayed) events
  std::int64_t version = 0;   ///< stream version after the command (accepted, replayed, rejected)
  domain::rejection_code rejection = domain::rejection_code::invalid_argument;  ///< if rejected
  failure_code failure = failure_code::none;                                    ///< if failed
  std::string message;  ///< rejection or failure text for people
  /// Set (accepted only) when the command's rider was written with its events.
  std::shared_ptr<const rider_receipt> rider{};

  [[nodiscard]] bool ok() const noexcept {
    return kind == reply_kind::accepted || kind == reply_kind::replayed;
  }
  [[nodiscard]] bool retryable() const noexcept {
    return kind == reply_kind::failed && is_retryable(failure);
  }
};

/// The answer to a state query: the aggregate's current state or why there is none.
template <class State>
struct state_reply {
  bool ok = false;
  State state;
  failure_code failure = failure_code::none;
  std::string message;
};

/// Counters of one region, for tests, metrics and the inspector.
struct region_stats {
  std::uint64_t active = 0;        ///< actors alive now (recovering or ready)
  std::uint64_t spawned = 0;       ///< activations, restarts included
  std::uint64_t crashes = 0;       ///< abnormal actor exits
  std::uint64_t restarts = 0;      ///< restarts scheduled after a crash
  std::uint64_t passivations = 0;  ///< idle actors stopped
  std::uint64_t poison = 0;        ///< commands rejected as poison
  std::uint64_t gave_up = 0;       ///< times the restart budget of an actor ran out
  std::uint64_t buffered = 0;      ///< commands and queries waiting now
};

}  // namespace saga::actors

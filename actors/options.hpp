// Settings of the actor runtime (regions, aggregate actors, journal access). Plain values without
// CAF; copied into each actor at spawn, so changing them later has no effect.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/fault_injector.hpp"

namespace saga::actors {

struct region_options {
  /// An actor idle this long is stopped; the next message re-activates it from the journal.
  /// Zero disables passivation.
  std::chrono::milliseconds passivate_after{std::chrono::minutes(2)};
  /// How often a region looks for idle actors.
  std::chrono::milliseconds passivation_check{std::chrono::seconds(1)};
  /// A snapshot is saved each time this many events were applied since the last one (0 = never).
  std::int64_t snapshot_every = 500;
  /// Region → actor: one command, including the journal round trip.
  std::chrono::milliseconds command_timeout{std::chrono::seconds(10)};
  /// Actor → journal: one read, snapshot save or append.
  std::chrono::milliseconds journal_timeout{std::chrono::seconds(5)};
  /// Payment actor → payment gateway actor: one charge or refund. The payment actor stays busy
  /// meanwhile (later commands for that payment queue behind it), which is what keeps a
  /// compensation's refund behind a charge still in flight. Keep it well above the saga step
  /// timeouts: a charge abandoned here may still be executed by the gateway, unrecorded.
  std::chrono::milliseconds gateway_timeout{std::chrono::seconds(30)};
  /// Region → actor: recovery (snapshot + events) after a (re)start.
  std::chrono::milliseconds recovery_timeout{std::chrono::seconds(30)};
  /// First restart delay after a crash; doubled per consecutive crash, capped at max.
  std::chrono::milliseconds restart_backoff{std::chrono::milliseconds(10)};
  std::chrono::milliseconds max_restart_backoff{std::chrono::seconds(2)};
  /// Consecutive crashes without a successful recovery before the region gives up on an actor
  /// and fails what it buffered (the next message tries afresh).
  int max_restarts = 5;
  /// Crashes one command may cause before it is answered as poison and dropped.
  int max_command_attempts = 3;
  /// Commands and queries a region buffers per actor before answering `overloaded`.
  std::size_t max_buffered = 10'000;
  /// Commands and queries a region sends to one actor before the earlier ones are answered
  /// (1..1024). Commands that arrive at a plain aggregate while an append is in flight are
  /// decided together on the state it leaves and appended as one request behind it at once
  /// (pipelined), so a busy aggregate (a popular product) is not held to one command per
  /// journal round trip. Queries are answered from committed state (after the pipelined
  /// appends, when there are any).
  std::size_t max_in_flight = 32;
  /// Written into event metadata.
  std::string node_id;
  /// Test-only crash injection; null in production.
  std::shared_ptr<fault_injector> faults;
};

}  // namespace saga::actors

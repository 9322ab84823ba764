// Shared services of one runtime that saga and payment actors need beyond the journal: typed
// region handles, the payment gateway actor, the saga catalog, the clock, a random source, the
// node id and the finished-saga observers. Filled in by the runtime before any actor handles a
// message and read-only afterwards (the observer list and the functions are thread-safe).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/gateway_actor.hpp"
#include "actors/regions.hpp"
#include "actors/saga_observers.hpp"
#include "domain/saga.hpp"
#include "domain/types.hpp"

namespace saga::actors {

struct actor_services {
  /// Definitions by type; every saga's type must be in it.
  std::shared_ptr<const domain::sagas::saga_catalog> sagas;
  region_handles regions;
  /// Null when the runtime has no gateway: charges and refunds then fail gateway_unavailable.
  gateway_actor gateway;
  /// Milliseconds since the Unix epoch; must be thread-safe.
  std::function<domain::timestamp()> clock;
  /// Uniform in [0, 1) (retry jitter); must be thread-safe.
  std::function<double()> random;
  std::string node_id;
  saga_observers finished;

  [[nodiscard]] domain::timestamp now() const { return clock(); }
};

/// The system clock in epoch milliseconds.
[[nodiscard]] inline domain::timestamp system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace saga::actors

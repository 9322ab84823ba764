// Node start-up recovery: finds unfinished work in the journal and hands it back to the runtime:
// every RUNNING or COMPENSATING saga is resumed (its pending step re-sent, its durable timers
// re-armed) and every PENDING order whose saga was never started gets it started. Runs on the
// calling thread (not a CAF scheduler thread) with its own journal store; blocking.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/runtime.hpp"
#include "persistence/event_store.hpp"

namespace saga::actors {

struct recovery_options {
  /// Sagas resumed (or orders started) at the same time.
  std::size_t parallelism = 8;
};

struct recovery_report {
  std::size_t unfinished_sagas = 0;  ///< RUNNING/COMPENSATING sagas found in the journal
  std::size_t resumed = 0;           ///< of those, activated and answering
  std::size_t orphan_orders = 0;     ///< PENDING orders without a saga stream
  std::size_t started = 0;           ///< of those, saga started
  std::vector<std::string> errors;   ///< one line per item that could not be handled
  std::chrono::milliseconds took{0};

  [[nodiscard]] bool ok() const noexcept { return errors.empty(); }
};

/// Journal event types after which a saga still has work in flight (not COMPLETED,
/// COMPENSATED or FAILED).
[[nodiscard]] const std::vector<std::string>& unfinished_saga_event_types();

/// Scans `journal` and resumes what is unfinished through `rt`. A journal read error is
/// reported in `errors` (nothing else is done).
[[nodiscard]] recovery_report recover_unfinished(runtime& rt, persistence::event_store& journal,
                                                 const recovery_options& options = {});

}  // namespace saga::actors

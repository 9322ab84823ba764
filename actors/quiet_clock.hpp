// A CAF scheduler whose timer clock does not wake a thread for every timer it is given.
//
// CAF 0.17's clock (detail::thread_safe_actor_clock) hands every timer operation to its own
// thread through a ring buffer and wakes that thread for each one: every timed request, every
// delayed_send and every actor's termination (which cancels its timeouts) costs a futex wake-up
// and two context switches. Under load that was about a sixth of the process's CPU (perf,
// `saga-bench sagas`). Almost none of these operations need the thread: a new timeout is
// nearly always later than the earliest one already pending, and a cancellation never moves
// the next due time forward.
//
// quiet_clock keeps CAF's own bookkeeping (simple_actor_clock: the same maps, the same
// delivery of timeouts and delayed messages) behind a mutex and wakes its thread only when a
// new entry becomes the earliest. Its thread sleeps until the earliest entry is due, ships
// everything due, and sleeps again.
#pragma once

#include <caf/fwd.hpp>

namespace saga::actors {

/// Makes the actor system built from `config` use CAF's coordinator with `sharing` (work
/// sharing) or work stealing, and quiet_clock as its clock. Call before constructing the
/// system; `scheduler.max-threads` and the other scheduler settings still apply.
void use_quiet_clock(caf::actor_system_config& config, bool sharing);

}  // namespace saga::actors

// Typed handles of the regions a runtime started, for actor code (sagas, HTTP bridge) that talks
// to aggregates with CAF requests. Handles are immutable values; any thread.
#pragma once

#include "actors/region.hpp"

namespace saga::actors {

struct region_handles {
  order_region order;
  payment_region payment;
  inventory_region inventory;
  user_region user;
  saga_region saga;
};

}  // namespace saga::actors

// Aggregate actors without hooks: order, inventory and user (the generic logic lives in
// actors/aggregate_logic.hpp; payments and sagas have their own .cpp with their hooks).
#include "actors/aggregate_logic.hpp"

namespace saga::actors {

template aggregate_actor<order_traits> spawn_aggregate<order_traits>(
    caf::actor_system&, const std::string&, std::shared_ptr<const aggregate_context>);
template aggregate_actor<inventory_traits> spawn_aggregate<inventory_traits>(
    caf::actor_system&, const std::string&, std::shared_ptr<const aggregate_context>);
template aggregate_actor<user_traits> spawn_aggregate<user_traits>(
    caf::actor_system&, const std::string&, std::shared_ptr<const aggregate_context>);

}  // namespace saga::actors

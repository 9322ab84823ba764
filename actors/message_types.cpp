#include "actors/message_types.hpp"

#include <caf/actor_system_config.hpp>

#include "actors/aggregate_traits.hpp"
#include "actors/gateway_actor.hpp"
#include "actors/gateway_inspect.hpp"
#include "actors/inspect.hpp"
#include "actors/saga_inspect.hpp"
#include "actors/saga_traits.hpp"

namespace saga::actors {
namespace {

template <class Traits>
void add_aggregate_types(caf::actor_system_config& config, const std::string& prefix) {
  config.add_message_type<command_request<Traits>>(prefix + "_command");
  config.add_message_type<command_reply<typename Traits::event>>(prefix + "_reply");
  config.add_message_type<state_query<Traits>>(prefix + "_query");
  config.add_message_type<state_reply<typename Traits::state>>(prefix + "_state");
}

}  // namespace

void add_message_types(caf::actor_system_config& config) {
  add_aggregate_types<order_traits>(config, "saga_order");
  add_aggregate_types<payment_traits>(config, "saga_payment");
  add_aggregate_types<inventory_traits>(config, "saga_inventory");
  add_aggregate_types<user_traits>(config, "saga_user");
  add_aggregate_types<saga_traits>(config, "saga_saga");
  add_gateway_message_types(config);
  config.add_message_type<region_stats>("saga_region_stats");
  config.add_message_type<stream_load>("saga_stream_load");
  config.add_message_type<append_outcome>("saga_append_outcome");
  config.add_message_type<snapshot_saved>("saga_snapshot_saved");
  config.add_message_type<persistence::snapshot>("saga_snapshot");
}

}  // namespace saga::actors

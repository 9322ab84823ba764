#include "actors/runtime.hpp"

#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/inspect.hpp"
#include "actors/journal_reader.hpp"
#include "actors/message_types.hpp"
#include "actors/regions.hpp"

namespace saga::actors {
namespace {

struct runtime_config : caf::actor_system_config {
  explicit runtime_config(std::size_t threads) {
    saga::actors::add_message_types(*this);
    if (threads > 0) set("scheduler.max-threads", threads);
  }
};

template <class Reply>
Reply no_answer(const caf::actor_system& system, const caf::error& err) {
  Reply r;  // a default command_reply is `failed`, a default state_reply not ok
  if constexpr (std::is_same_v<Reply, region_stats>) {
    (void)system;
    (void)err;
  } else {
    r.failure =
        err == caf::sec::request_timeout ? failure_code::timeout : failure_code::actor_unavailable;
    r.message = system.render(err);
  }
  return r;
}

}  // namespace

struct runtime::impl {
  runtime_options options;
  runtime_config config;
  caf::actor_system system;
  persistence::group_commit_writer writer;
  std::vector<journal_reader> readers;
  region_handles regions;

  impl(runtime_options opts, const store_factory& make_store)
      : options(std::move(opts)),
        config(options.scheduler_threads),
        system(config),
        writer(make_store, options.writer) {
    readers = spawn_journal_readers(system, make_store, options.readers);
    auto context = std::make_shared<aggregate_context>();
    context->readers = readers;
    context->writer = &writer;
    context->options = options.regions;
    std::shared_ptr<const aggregate_context> shared = context;
    regions.order = spawn_region<order_traits>(system, shared);
    regions.payment = spawn_region<payment_traits>(system, shared);
    regions.inventory = spawn_region<inventory_traits>(system, shared);
    regions.user = spawn_region<user_traits>(system, shared);
  }

  ~impl() {
    caf::anon_send_exit(regions.order, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.payment, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.inventory, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.user, caf::exit_reason::user_shutdown);
    for (auto& r : readers) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    regions = {};
    readers.clear();
    system.await_all_actors_done();
    writer.stop();
  }

  /// Blocking request with a timeout; a missing answer becomes a failed reply.
  template <class Reply, class Handle, class Message>
  Reply ask(const Handle& region, Message msg) {
    caf::scoped_actor self{system};
    Reply out;
    self->request(region, options.ask_timeout, std::move(msg))
        .receive([&](Reply& r) { out = std::move(r); },
                 [&](caf::error& err) { out = no_answer<Reply>(system, err); });
    return out;
  }

  template <class Reply, class Handle, class Message>
  std::future<Reply> ask_async(const Handle& region, Message msg) {
    auto promise = std::make_shared<std::promise<Reply>>();
    auto future = promise->get_future();
    const auto timeout = options.ask_timeout;
    // The request travels as a spawn argument: CAF 0.17 dereferences a null argument tuple
    // when a function actor is spawned without arguments (UBSan: reference binding to null).
    system.spawn(
        [promise, region, timeout](caf::event_based_actor* self, Message m) {
          self->request(region, timeout, std::move(m))
              .then([=](Reply& r) { promise->set_value(std::move(r)); },
                    [=](caf::error& err) {
                      promise->set_value(no_answer<Reply>(self->system(), err));
                    });
        },
        std::move(msg));
    return future;
  }
};

runtime::runtime(runtime_options options, store_factory make_store)
    : impl_(std::make_unique<impl>(std::move(options), make_store)) {}

runtime::~runtime() = default;

command_reply<domain::order::event> runtime::send(const std::string& id, domain::order::command cmd,
                                                  command_meta meta) {
  return impl_->ask<command_reply<domain::order::event>>(
      impl_->regions.order, command_request<order_traits>{id, std::move(cmd), std::move(meta)});
}
command_reply<domain::payment::event> runtime::send(const std::string& id,
                                                    domain::payment::command cmd,
                                                    command_meta meta) {
  return impl_->ask<command_reply<domain::payment::event>>(
      impl_->regions.payment, command_request<payment_traits>{id, std::move(cmd), std::move(meta)});
}
command_reply<domain::inventory::event> runtime::send(const std::string& id,
                                                      domain::inventory::command cmd,
                                                      command_meta meta) {
  return impl_->ask<command_reply<domain::inventory::event>>(
      impl_->regions.inventory,
      command_request<inventory_traits>{id, std::move(cmd), std::move(meta)});
}
command_reply<domain::user::event> runtime::send(const std::string& id, domain::user::command cmd,
                                                 command_meta meta) {
  return impl_->ask<command_reply<domain::user::event>>(
      impl_->regions.user, command_request<user_traits>{id, std::move(cmd), std::move(meta)});
}

std::future<command_reply<domain::order::event>> runtime::send_async(const std::string& id,
                                                                     domain::order::command cmd,
                                                                     command_meta meta) {
  return impl_->ask_async<command_reply<domain::order::event>>(
      impl_->regions.order, command_request<order_traits>{id, std::move(cmd), std::move(meta)});
}
std::future<command_reply<domain::payment::event>> runtime::send_async(const std::string& id,
                                                                       domain::payment::command cmd,
                                                                       command_meta meta) {
  return impl_->ask_async<command_reply<domain::payment::event>>(
      impl_->regions.payment, command_request<payment_traits>{id, std::move(cmd), std::move(meta)});
}
std::future<command_reply<domain::inventory::event>> runtime::send_async(
    const std::string& id, domain::inventory::command cmd, command_meta meta) {
  return impl_->ask_async<command_reply<domain::inventory::event>>(
      impl_->regions.inventory,
      command_request<inventory_traits>{id, std::move(cmd), std::move(meta)});
}
std::future<command_reply<domain::user::event>> runtime::send_async(const std::string& id,
                                                                    domain::user::command cmd,
                                                                    command_meta meta) {
  return impl_->ask_async<command_reply<domain::user::event>>(
      impl_->regions.user, command_request<user_traits>{id, std::move(cmd), std::move(meta)});
}

state_reply<domain::order::state> runtime::order_state(const std::string& id) {
  return impl_->ask<state_reply<domain::order::state>>(impl_->regions.order,
                                                       state_query<order_traits>{id});
}
state_reply<domain::payment::state> runtime::payment_state(const std::string& id) {
  return impl_->ask<state_reply<domain::payment::state>>(impl_->regions.payment,
                                                         state_query<payment_traits>{id});
}
state_reply<domain::inventory::state> runtime::inventory_state(const std::string& id) {
  return impl_->ask<state_reply<domain::inventory::state>>(impl_->regions.inventory,
                                                           state_query<inventory_traits>{id});
}
state_reply<domain::user::state> runtime::user_state(const std::string& id) {
  return impl_->ask<state_reply<domain::user::state>>(impl_->regions.user,
                                                      state_query<user_traits>{id});
}

region_stats runtime::stats(aggregate_kind kind) {
  switch (kind) {
    case aggregate_kind::order:
      return impl_->ask<region_stats>(impl_->regions.order, stats_atom::value);
    case aggregate_kind::payment:
      return impl_->ask<region_stats>(impl_->regions.payment, stats_atom::value);
    case aggregate_kind::inventory:
      return impl_->ask<region_stats>(impl_->regions.inventory, stats_atom::value);
    case aggregate_kind::user:
      return impl_->ask<region_stats>(impl_->regions.user, stats_atom::value);
  }
  return {};
}

persistence::writer_stats runtime::writer_stats() const { return impl_->writer.stats(); }

caf::actor_system& runtime::system() { return impl_->system; }

const region_handles& runtime::regions() const { return impl_->regions; }

}  // namespace saga::actors

// The actor runtime facade: owns a CAF actor_system, the journal readers, the group-commit
// writer and one region per aggregate type; apps and tests send commands and queries through it
// and wait with a timeout. No CAF headers here. Thread-safe: any thread may call send/query.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "actors/options.hpp"
#include "actors/outcome.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/payment.hpp"
#include "domain/user.hpp"
#include "persistence/event_store.hpp"
#include "persistence/group_commit_writer.hpp"

namespace caf {
class actor_system;
}

namespace saga::actors {

struct region_handles;  // typed CAF handles, see actors/regions.hpp

enum class aggregate_kind { order, payment, inventory, user };

struct runtime_options {
  region_options regions;
  persistence::writer_options writer;
  /// Detached journal reader actors (one store, i.e. one connection, each).
  std::size_t readers = 2;
  /// CAF scheduler threads; 0 = CAF's default (one per core).
  std::size_t scheduler_threads = 0;
  /// How long send()/query() wait for an answer by default.
  std::chrono::milliseconds ask_timeout{std::chrono::seconds(15)};
};

class runtime {
 public:
  using store_factory = std::function<std::unique_ptr<persistence::event_store>()>;

  /// Starts the actor system, `options.readers` readers and the writer (each with a store from
  /// `make_store`, called on the thread that uses it) and the regions.
  runtime(runtime_options options, store_factory make_store);
  /// Stops the regions (and their actors), the readers, then the writer and the system.
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Sends a command to aggregate `id` and waits for the outcome (a timeout is a failed reply).
  command_reply<domain::order::event> send(const std::string& id, domain::order::command cmd,
                                           command_meta meta = {});
  command_reply<domain::payment::event> send(const std::string& id, domain::payment::command cmd,
                                             command_meta meta = {});
  command_reply<domain::inventory::event> send(const std::string& id,
                                               domain::inventory::command cmd,
                                               command_meta meta = {});
  command_reply<domain::user::event> send(const std::string& id, domain::user::command cmd,
                                          command_meta meta = {});

  /// Same, without blocking the caller: the future is always satisfied (a timeout is a reply).
  std::future<command_reply<domain::order::event>> send_async(const std::string& id,
                                                              domain::order::command cmd,
                                                              command_meta meta = {});
  std::future<command_reply<domain::payment::event>> send_async(const std::string& id,
                                                                domain::payment::command cmd,
                                                                command_meta meta = {});
  std::future<command_reply<domain::inventory::event>> send_async(const std::string& id,
                                                                  domain::inventory::command cmd,
                                                                  command_meta meta = {});
  std::future<command_reply<domain::user::event>> send_async(const std::string& id,
                                                             domain::user::command cmd,
                                                             command_meta meta = {});

  /// The current state of an aggregate (activating it if needed).
  state_reply<domain::order::state> order_state(const std::string& id);
  state_reply<domain::payment::state> payment_state(const std::string& id);
  state_reply<domain::inventory::state> inventory_state(const std::string& id);
  state_reply<domain::user::state> user_state(const std::string& id);

  /// Counters of one region (a zero-valued struct if it does not answer in time).
  region_stats stats(aggregate_kind kind);
  /// Counters of the group-commit writer.
  persistence::writer_stats writer_stats() const;

  /// The actor system, for actors built on top (sagas, projections).
  caf::actor_system& system();
  /// Typed region handles for those actors (include actors/regions.hpp).
  const region_handles& regions() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::actors

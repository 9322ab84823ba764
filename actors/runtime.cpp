#include "actors/runtime.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/gateway_actor.hpp"
#include "actors/inspect.hpp"
#include "actors/journal_reader.hpp"
#include "actors/log.hpp"
#include "actors/message_types.hpp"
#include "actors/quiet_clock.hpp"
#include "actors/regions.hpp"
#include "actors/saga_inspect.hpp"
#include "actors/saga_rider.hpp"
#include "actors/services.hpp"

namespace saga::actors {
std::size_t default_scheduler_threads() noexcept {
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

namespace {

namespace sg = domain::sagas;

struct runtime_config : caf::actor_system_config {
  explicit runtime_config(const runtime_options& options) {
    saga::actors::add_message_types(*this);
    // CAF 0.17's own default is max(cores, 4) workers: on a 2-core machine shared with
    // PostgreSQL, twice as many threads as cores, whose hand-offs cost more than they bring
    // (measured: ~1,150 vs ~1,600 sagas/s with `saga-bench sagas`).
    set("scheduler.max-threads",
        options.scheduler_threads > 0 ? options.scheduler_threads : default_scheduler_threads());
    const bool sharing = options.scheduler == scheduler_policy::sharing;
    if (sharing) set("scheduler.policy", caf::atom("sharing"));
    use_quiet_clock(*this, sharing);
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

double default_random() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

std::shared_ptr<const sg::saga_catalog> default_catalog(const sg::order_processing_options& steps) {
  auto catalog = std::make_shared<sg::saga_catalog>();
  catalog->add(sg::order_processing(steps));
  return catalog;
}

/// The saga of an order: the id it was created with, or a deterministic one for an order
/// created without (so that starting it twice starts one saga).
std::string saga_id_of(const domain::order::state& order) {
  return order.saga_id.empty() ? "saga-of-" + order.order_id : order.saga_id;
}

// ---- multi-step operations: short-lived actors chaining requests with timeouts ----

/// What an operation actor needs, copied into it.
struct flow_env {
  region_handles regions;
  std::chrono::milliseconds timeout{0};
  std::function<domain::timestamp()> clock;
  std::shared_ptr<const actor_services> services;
};

/// Where a flow's single answer goes: the caller's callback (the future forms pass one that
/// fulfils a promise). set_value() calls it at most once.
template <class Out>
class reply_sink {
 public:
  explicit reply_sink(std::function<void(Out)> done) : done_(std::move(done)) {}
  void set_value(Out out) {
    if (!called_.exchange(true)) done_(std::move(out));
  }

 private:
  std::function<void(Out)> done_;
  std::atomic<bool> called_{false};
};

template <class Out>
using promise_ptr = std::shared_ptr<reply_sink<Out>>;

/// A callback that fulfils a fresh promise, and the promise's future.
template <class Out>
std::pair<std::function<void(Out)>, std::future<Out>> promised() {
  auto promise = std::make_shared<std::promise<Out>>();
  auto future = promise->get_future();
  return {[promise](Out out) { promise->set_value(std::move(out)); }, std::move(future)};
}

template <class Out, class Event>
Out outcome_of(Out out, const command_reply<Event>& r) {
  out.kind = r.kind;
  out.rejection = r.rejection;
  out.failure = r.failure;
  out.message = r.message;
  return out;
}

template <class Out>
Out outcome_of(Out out, const caf::actor_system& system, const caf::error& err) {
  out.kind = reply_kind::failed;
  out.failure =
      err == caf::sec::request_timeout ? failure_code::timeout : failure_code::actor_unavailable;
  out.message = system.render(err);
  return out;
}

template <class Out>
Out rejected(Out out, domain::rejection_code code, std::string message) {
  out.kind = reply_kind::rejected;
  out.rejection = code;
  out.message = std::move(message);
  return out;
}

template <class Out>
Out failed_with(Out out, failure_code code, std::string message) {
  out.kind = reply_kind::failed;
  out.failure = code;
  out.message = std::move(message);
  return out;
}

command_request<saga_traits> saga_request(const std::string& saga_id, std::string type,
                                          sg::input in, command_meta meta) {
  return command_request<saga_traits>{saga_id, saga_command{std::move(type), std::move(in)},
                                      std::move(meta)};
}

sg::saga_input saga_input_of(const std::string& order_id, const std::string& customer_id,
                             const std::vector<domain::order::line_item>& items,
                             domain::money total) {
  sg::saga_input in;
  in.order_id = order_id;
  in.customer_id = customer_id;
  in.items = items;
  in.total = total;
  return in;
}

/// An order's saga start written with its creation: given OrderCreated, SagaStarted (with the
/// first step's start) goes into the same transaction, as a new saga stream. The saga actor
/// then only applies it (see detail::saga_receipt), and the order is answered one journal
/// round earlier.
class order_start_rider final : public command_rider<domain::order::event> {
 public:
  order_start_rider(std::shared_ptr<const actor_services> services, const sg::saga_definition* def,
                    persistence::event_metadata meta, double random01)
      : services_(std::move(services)), def_(def), meta_(std::move(meta)), random01_(random01) {}

  std::optional<rider_write> ride(const std::vector<domain::order::event>& events) const override {
    for (const auto& e : events) {
      const auto* created = std::get_if<domain::order::order_created>(&e);
      if (created == nullptr || created->saga_id.empty()) continue;
      sg::start begin{
          created->saga_id, created->correlation_id,
          saga_input_of(created->order_id, created->customer_id, created->items, created->total),
          true};
      auto meta = meta_;
      meta.correlation_id = created->correlation_id;
      return detail::saga_rider_write(*def_, sg::state{}, begin,
                                      stream_id_of(saga_traits::stream_type, created->saga_id), 0,
                                      {}, meta, services_->now(), random01_);
    }
    return std::nullopt;
  }

 private:
  std::shared_ptr<const actor_services> services_;
  const sg::saga_definition* def_;
  persistence::event_metadata meta_;
  double random01_;
};

/// Creates the order, then starts its saga (with the order's own append when it can: see
/// order_start_rider).
/// `new_order`: the order id was generated for this request, so its stream is new.
void place_order_flow(caf::event_based_actor* self, flow_env env, order_request request,
                      bool new_order, promise_ptr<placed_order> promise) {
  placed_order base;
  base.order_id = request.order_id;
  base.correlation_id = request.correlation_id;
  domain::order::create create{
      request.order_id,       request.customer_id,     request.items, request.shipping_address,
      request.correlation_id, persistence::new_uuid(), env.clock(),   request.idempotency_key};
  command_meta meta{request.correlation_id, "place_order", request.idempotency_key,
                    request.customer_id};
  command_request<order_traits> command{request.order_id, std::move(create), meta, new_order};
  if (const auto* def = env.services->sagas->find(sg::order_processing_type)) {
    persistence::event_metadata saga_meta;
    saga_meta.causation_id = "place_order";
    saga_meta.user_id = request.customer_id;
    saga_meta.node_id = env.services->node_id;
    command.rider = std::make_shared<order_start_rider>(env.services, def, std::move(saga_meta),
                                                        env.services->random());
  }
  self->request(env.regions.order, env.timeout, std::move(command))
      .then(
          [=](command_reply<domain::order::event>& reply) {
            if (!reply.ok()) {
              promise->set_value(outcome_of(base, reply));
              return;
            }
            const domain::order::order_created* created = nullptr;
            for (const auto& e : reply.events)
              if (const auto* c = std::get_if<domain::order::order_created>(&e)) created = c;
            if (created == nullptr) {
              promise->set_value(failed_with(
                  base, failure_code::journal_error,
                  "order " + base.order_id + ": the create was answered without OrderCreated"));
              return;
            }
            auto placed = outcome_of(base, reply);
            placed.correlation_id = created->correlation_id;
            placed.saga_id =
                created->saga_id.empty() ? "saga-of-" + created->order_id : created->saga_id;
            placed.status = domain::order::status::pending;
            placed.total = created->total;
            sg::start begin{placed.saga_id, placed.correlation_id,
                            saga_input_of(created->order_id, created->customer_id, created->items,
                                          created->total),
                            true};  // the order anchors it (see sg::start::anchored)
            command_meta saga_meta{placed.correlation_id, "place_order", {}, meta.user_id};
            auto start_saga = saga_request(placed.saga_id, std::string(sg::order_processing_type),
                                           std::move(begin), std::move(saga_meta));
            // An order created just now got a saga id generated with it: its stream is new.
            start_saga.fresh = reply.kind == reply_kind::accepted;
            if (reply.rider) {
              // SagaStarted is committed with the order: the saga only applies it and goes on.
              // Should that message not arrive, the saga is resumed from the journal the next
              // time its actor starts (any message, or node recovery).
              start_saga.command.receipt = std::move(reply.rider);
              const auto saga_id = placed.saga_id;
              self->request(env.regions.saga, env.timeout, std::move(start_saga))
                  .then([](command_reply<sg::event>&) {},
                        [saga_id, self](caf::error& err) {
                          detail::log().warn(
                              "saga {}: its start was written with the order, "
                              "but the saga did not take it up: {}",
                              saga_id, self->system().render(err));
                        });
              // Answered once the saga has the receipt in its mailbox, ahead of anything the
              // caller sends it next.
              auto out = placed;
              out.saga_started = true;
              promise->set_value(std::move(out));
              return;
            }
            self->request(env.regions.saga, env.timeout, std::move(start_saga))
                .then(
                    [=](command_reply<sg::event>& started) {
                      auto out = placed;
                      // invalid_state: started before (a repeated placement).
                      out.saga_started =
                          started.ok() ||
                          (started.kind == reply_kind::rejected &&
                           started.rejection == domain::rejection_code::invalid_state);
                      if (!out.saga_started)
                        out.message = "order created; its saga did not start: " + started.message;
                      promise->set_value(std::move(out));
                    },
                    [=](caf::error& err) {
                      auto out = placed;
                      out.message =
                          "order created; its saga did not start: " + self->system().render(err);
                      promise->set_value(std::move(out));
                    });
          },
          [=](caf::error& err) { promise->set_value(outcome_of(base, self->system(), err)); });
}

/// Asks the order's saga to cancel (compensate) and answers from its reply; `not_started`
/// runs instead when the saga has never started.
template <class NotStarted>
void ask_saga_to_cancel(caf::event_based_actor* self, const flow_env& env,
                        order_saga_outcome with_saga, std::string reason, command_meta meta,
                        promise_ptr<order_saga_outcome> promise, NotStarted not_started) {
  const auto order_id = with_saga.order_id;
  self->request(env.regions.saga, env.timeout,
                saga_request(with_saga.saga_id, {}, sg::cancel_requested{std::move(reason)},
                             std::move(meta)))
      .then(
          [=](command_reply<sg::event>& answer) {
            if (answer.kind == reply_kind::rejected &&
                answer.rejection == domain::rejection_code::not_found) {
              not_started();
              return;
            }
            if (answer.kind == reply_kind::rejected &&
                answer.rejection == domain::rejection_code::invalid_state) {
              // COMPENSATING or COMPENSATED: say which in the customer's terms.
              self->request(env.regions.saga, env.timeout,
                            state_query<saga_traits>{with_saga.saga_id})
                  .then(
                      [=](state_reply<sg::state>& saga) {
                        auto out = outcome_of(with_saga, answer);
                        if (saga.ok && saga.state.status_ == sg::status::compensated) {
                          out.message = "order " + order_id + " is already cancelled";
                        } else if (saga.ok && saga.state.status_ == sg::status::compensating) {
                          out.message = "order " + order_id + " is already being cancelled";
                        }
                        promise->set_value(std::move(out));
                      },
                      [=](caf::error&) { promise->set_value(outcome_of(with_saga, answer)); });
              return;
            }
            promise->set_value(outcome_of(with_saga, answer));
          },
          [=](caf::error& err) { promise->set_value(outcome_of(with_saga, self->system(), err)); });
}

/// The order's saga never started: its start was lost (an anchored start sends its first step
/// before SagaStarted commits), or the order was made without one. Starts it from the order's
/// data and cancels through it, so that its compensation undoes whatever that first step did.
/// The cancel follows the start at once: the saga handles it before any answer to its first
/// step, so the compensation begins at step one (no charge for an order being cancelled).
void start_saga_to_cancel(caf::event_based_actor* self, const flow_env& env,
                          order_saga_outcome with_saga, const domain::order::state& order,
                          std::string reason, command_meta meta,
                          promise_ptr<order_saga_outcome> promise) {
  sg::start begin{with_saga.saga_id, order.correlation_id,
                  saga_input_of(order.order_id, order.customer_id, order.items, order.total), true};
  // Its answer is not needed: started now or before (invalid_state), the cancel below finds
  // the saga; not started (the journal failed), the cancel answers not_found.
  caf::anon_send(env.regions.saga,
                 saga_request(with_saga.saga_id, std::string(sg::order_processing_type),
                              std::move(begin), meta));
  ask_saga_to_cancel(self, env, with_saga, std::move(reason), std::move(meta), promise, [=] {
    promise->set_value(failed_with(
        with_saga, failure_code::journal_unavailable,
        "saga " + with_saga.saga_id + " could not be started to cancel the order; try again"));
  });
}

/// Finds the order, then asks its saga to cancel (compensate), starting the saga first if it
/// never started.
void cancel_order_flow(caf::event_based_actor* self, flow_env env, std::string order_id,
                       std::string reason, promise_ptr<order_saga_outcome> promise) {
  order_saga_outcome base;
  base.order_id = order_id;
  self->request(env.regions.order, env.timeout, state_query<order_traits>{order_id})
      .then(
          [=](state_reply<domain::order::state>& found) {
            if (!found.ok) {
              promise->set_value(failed_with(base, found.failure, found.message));
              return;
            }
            const auto& order = found.state;
            if (order.status_ == domain::order::status::none) {
              promise->set_value(rejected(base, domain::rejection_code::not_found,
                                          "order " + order_id + " not found"));
              return;
            }
            if (order.status_ == domain::order::status::cancelled) {
              promise->set_value(rejected(base, domain::rejection_code::invalid_state,
                                          "order " + order_id + " is already cancelled"));
              return;
            }
            auto with_saga = base;
            with_saga.saga_id = saga_id_of(order);
            command_meta meta{order.correlation_id, "cancel_order", {}, {}};
            ask_saga_to_cancel(self, env, with_saga, reason, meta, promise, [=] {
              start_saga_to_cancel(self, env, with_saga, order, reason, meta, promise);
            });
          },
          [=](caf::error& err) { promise->set_value(outcome_of(base, self->system(), err)); });
}

/// Starts the saga of a PENDING order from the order's own data.
void start_saga_flow(caf::event_based_actor* self, flow_env env, std::string order_id,
                     promise_ptr<order_saga_outcome> promise) {
  order_saga_outcome base;
  base.order_id = order_id;
  self->request(env.regions.order, env.timeout, state_query<order_traits>{order_id})
      .then(
          [=](state_reply<domain::order::state>& found) {
            if (!found.ok) {
              promise->set_value(failed_with(base, found.failure, found.message));
              return;
            }
            const auto& order = found.state;
            if (order.status_ == domain::order::status::none) {
              promise->set_value(rejected(base, domain::rejection_code::not_found,
                                          "order " + order_id + " not found"));
              return;
            }
            if (order.status_ != domain::order::status::pending) {
              // Its saga may have run already (idempotent); otherwise there is nothing to start:
              // a saga for a CONFIRMED or CANCELLED order would act on a settled order.
              auto settled = base;
              settled.saga_id = saga_id_of(order);
              const auto status = std::string(to_string(order.status_));
              self->request(env.regions.saga, env.timeout,
                            state_query<saga_traits>{settled.saga_id})
                  .then(
                      [=](state_reply<sg::state>& saga) {
                        auto out = settled;
                        if (!saga.ok) {
                          out = failed_with(settled, saga.failure, saga.message);
                        } else if (saga.state.status_ != sg::status::none) {
                          out.kind = reply_kind::replayed;
                        } else {
                          out = rejected(settled, domain::rejection_code::invalid_state,
                                         "order " + order_id + " is " + status +
                                             "; only a PENDING order's saga can be started");
                        }
                        promise->set_value(std::move(out));
                      },
                      [=](caf::error& err) {
                        promise->set_value(outcome_of(settled, self->system(), err));
                      });
              return;
            }
            auto with_saga = base;
            with_saga.saga_id = saga_id_of(order);
            sg::start begin{
                with_saga.saga_id, order.correlation_id,
                saga_input_of(order.order_id, order.customer_id, order.items, order.total), true};
            command_meta meta{order.correlation_id, "start_saga_for_order", {}, {}};
            self->request(env.regions.saga, env.timeout,
                          saga_request(with_saga.saga_id, std::string(sg::order_processing_type),
                                       std::move(begin), std::move(meta)))
                .then(
                    [=](command_reply<sg::event>& answer) {
                      auto out = outcome_of(with_saga, answer);
                      if (answer.kind == reply_kind::rejected &&
                          answer.rejection == domain::rejection_code::invalid_state) {
                        out.kind = reply_kind::replayed;  // started before
                        out.message.clear();
                      }
                      promise->set_value(std::move(out));
                    },
                    [=](caf::error& err) {
                      promise->set_value(outcome_of(with_saga, self->system(), err));
                    });
          },
          [=](caf::error& err) { promise->set_value(outcome_of(base, self->system(), err)); });
}

}  // namespace

struct runtime::impl {
  runtime_options options;
  runtime_config config;
  caf::actor_system system;
  persistence::group_commit_writer writer;
  std::vector<journal_reader> readers;
  std::shared_ptr<actor_services> services = std::make_shared<actor_services>();
  region_handles regions;

  impl(runtime_options opts, const store_factory& make_store)
      : options(std::move(opts)),
        config(options),
        system(config),
        writer(make_store, options.writer) {
    readers = spawn_journal_readers(system, make_store, options.readers);
    // Services are complete before any actor handles a message (regions spawn actors lazily).
    services->sagas = options.sagas ? options.sagas : default_catalog(options.saga_steps);
    services->clock =
        options.clock ? options.clock : std::function<domain::timestamp()>(system_clock_ms);
    services->random = options.random ? options.random : std::function<double()>(default_random);
    services->node_id = options.regions.node_id;
    if (options.gateway) services->gateway = spawn_gateway(system, options.gateway);
    auto context = std::make_shared<aggregate_context>();
    context->readers = readers;
    context->writer = &writer;
    context->options = options.regions;
    context->services = services;
    std::shared_ptr<const aggregate_context> shared = context;
    regions.order = spawn_region<order_traits>(system, shared);
    regions.payment = spawn_region<payment_traits>(system, shared);
    regions.inventory = spawn_region<inventory_traits>(system, shared);
    regions.user = spawn_region<user_traits>(system, shared);
    auto saga_settings = options.regions;
    saga_settings.passivate_after = std::chrono::milliseconds(0);  // sagas stop themselves
    regions.saga = spawn_region<saga_traits>(system, shared, saga_settings);
    services->regions = regions;
  }

  ~impl() {
    // Sagas first, so that no step command reaches a region that is already gone.
    caf::anon_send_exit(regions.saga, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.order, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.payment, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.inventory, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(regions.user, caf::exit_reason::user_shutdown);
    if (services->gateway) caf::anon_send_exit(services->gateway, caf::exit_reason::user_shutdown);
    for (auto& r : readers) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    regions = {};
    readers.clear();
    system.await_all_actors_done();
    // Only now: actors read the services until they are gone.
    services->regions = {};
    services->gateway = nullptr;
    writer.stop();
  }

  flow_env env() const { return flow_env{regions, options.ask_timeout, services->clock, services}; }

  /// Runs a multi-step operation in its own short-lived actor; `done` is always called because
  /// every request of the flow has a timeout.
  template <class Out, class Flow, class... Args>
  void run_flow(std::function<void(Out)> done, Flow flow, Args... args) {
    system.spawn(flow, env(), std::move(args)...,
                 std::make_shared<reply_sink<Out>>(std::move(done)));
  }

  template <class Out, class Flow, class... Args>
  std::future<Out> run_flow(Flow flow, Args... args) {
    auto [done, future] = promised<Out>();
    run_flow<Out>(std::move(done), flow, std::move(args)...);
    return std::move(future);
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
  void ask_then(const Handle& region, Message msg, std::function<void(Reply)> done) {
    const auto timeout = options.ask_timeout;
    // The request travels as a spawn argument: CAF 0.17 dereferences a null argument tuple
    // when a function actor is spawned without arguments (UBSan: reference binding to null).
    auto sink = std::make_shared<reply_sink<Reply>>(std::move(done));
    system.spawn(
        [sink, region, timeout](caf::event_based_actor* self, Message m) {
          self->request(region, timeout, std::move(m))
              .then(
                  [=](Reply& r) { sink->set_value(std::move(r)); },
                  [=](caf::error& err) { sink->set_value(no_answer<Reply>(self->system(), err)); });
        },
        std::move(msg));
  }

  template <class Reply, class Handle, class Message>
  std::future<Reply> ask_async(const Handle& region, Message msg) {
    auto [done, future] = promised<Reply>();
    ask_then<Reply>(region, std::move(msg), std::move(done));
    return std::move(future);
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
    case aggregate_kind::saga:
      return impl_->ask<region_stats>(impl_->regions.saga, stats_atom::value);
  }
  return {};
}

// ---- orders and sagas ----

placed_order runtime::place_order(order_request request) {
  return place_order_async(std::move(request)).get();
}

std::future<placed_order> runtime::place_order_async(order_request request) {
  auto [done, future] = promised<placed_order>();
  place_order(std::move(request), std::move(done));
  return std::move(future);
}

void runtime::place_order(order_request request, callback<placed_order> done) {
  const bool new_order = request.order_id.empty();
  if (new_order) request.order_id = persistence::new_uuid();
  if (request.correlation_id.empty()) request.correlation_id = persistence::new_uuid();
  impl_->run_flow<placed_order>(std::move(done), place_order_flow, std::move(request), new_order);
}

order_saga_outcome runtime::cancel_order(const std::string& order_id, std::string reason) {
  return cancel_order_async(order_id, std::move(reason)).get();
}

std::future<order_saga_outcome> runtime::cancel_order_async(const std::string& order_id,
                                                            std::string reason) {
  auto [done, future] = promised<order_saga_outcome>();
  cancel_order(order_id, std::move(reason), std::move(done));
  return std::move(future);
}

void runtime::cancel_order(const std::string& order_id, std::string reason,
                           callback<order_saga_outcome> done) {
  impl_->run_flow<order_saga_outcome>(std::move(done), cancel_order_flow, order_id,
                                      std::move(reason));
}

command_reply<domain::order::event> runtime::confirm_order(const std::string& order_id) {
  return confirm_order_async(order_id).get();
}

std::future<command_reply<domain::order::event>> runtime::confirm_order_async(
    const std::string& order_id) {
  auto [done, future] = promised<command_reply<domain::order::event>>();
  confirm_order(order_id, std::move(done));
  return std::move(future);
}

void runtime::confirm_order(const std::string& order_id,
                            callback<command_reply<domain::order::event>> done) {
  // One key per order: a repeated manual confirmation answers the first one.
  domain::order::confirm confirm{now(), "confirm/" + order_id};
  command_meta meta{{}, "confirm_order", confirm.idempotency_key, {}};
  impl_->ask_then<command_reply<domain::order::event>>(
      impl_->regions.order, command_request<order_traits>{order_id, std::move(confirm), meta},
      std::move(done));
}

command_reply<domain::sagas::event> runtime::start_saga(const std::string& saga_type,
                                                        domain::sagas::start begin) {
  return start_saga_async(saga_type, std::move(begin)).get();
}

std::future<command_reply<domain::sagas::event>> runtime::start_saga_async(
    const std::string& saga_type, domain::sagas::start begin) {
  if (begin.saga_id.empty()) {
    std::promise<command_reply<sg::event>> refused;
    command_reply<sg::event> r;
    r.kind = reply_kind::rejected;
    r.rejection = domain::rejection_code::invalid_argument;
    r.message = "saga_id is empty";
    refused.set_value(std::move(r));
    return refused.get_future();
  }
  const auto id = begin.saga_id;
  command_meta meta{begin.correlation_id, "start_saga", {}, {}};
  return impl_->ask_async<command_reply<sg::event>>(
      impl_->regions.saga, saga_request(id, saga_type, std::move(begin), std::move(meta)));
}

command_reply<domain::sagas::event> runtime::retry_saga(const std::string& saga_id) {
  return retry_saga_async(saga_id).get();
}

std::future<command_reply<domain::sagas::event>> runtime::retry_saga_async(
    const std::string& saga_id) {
  auto [done, future] = promised<command_reply<sg::event>>();
  retry_saga(saga_id, std::move(done));
  return std::move(future);
}

void runtime::retry_saga(const std::string& saga_id, callback<command_reply<sg::event>> done) {
  impl_->ask_then<command_reply<sg::event>>(
      impl_->regions.saga,
      saga_request(saga_id, {}, sg::manual_retry{}, {{}, "retry_saga", {}, {}}), std::move(done));
}

command_reply<domain::sagas::event> runtime::compensate_saga(const std::string& saga_id,
                                                             std::string reason) {
  return compensate_saga_async(saga_id, std::move(reason)).get();
}

std::future<command_reply<domain::sagas::event>> runtime::compensate_saga_async(
    const std::string& saga_id, std::string reason) {
  auto [done, future] = promised<command_reply<sg::event>>();
  compensate_saga(saga_id, std::move(reason), std::move(done));
  return std::move(future);
}

void runtime::compensate_saga(const std::string& saga_id, std::string reason,
                              callback<command_reply<sg::event>> done) {
  impl_->ask_then<command_reply<sg::event>>(
      impl_->regions.saga,
      saga_request(saga_id, {}, sg::manual_compensate{std::move(reason)},
                   {{}, "compensate_saga", {}, {}}),
      std::move(done));
}

state_reply<domain::sagas::state> runtime::saga_state(const std::string& saga_id) {
  return impl_->ask<state_reply<sg::state>>(impl_->regions.saga, state_query<saga_traits>{saga_id});
}

std::future<state_reply<domain::sagas::state>> runtime::saga_state_async(
    const std::string& saga_id) {
  return impl_->ask_async<state_reply<sg::state>>(impl_->regions.saga,
                                                  state_query<saga_traits>{saga_id});
}

void runtime::saga_state(const std::string& saga_id, callback<state_reply<sg::state>> done) {
  impl_->ask_then<state_reply<sg::state>>(impl_->regions.saga, state_query<saga_traits>{saga_id},
                                          std::move(done));
}

void runtime::order_state(const std::string& id, callback<state_reply<domain::order::state>> done) {
  impl_->ask_then<state_reply<domain::order::state>>(
      impl_->regions.order, state_query<order_traits>{id}, std::move(done));
}

void runtime::inventory_state(const std::string& id,
                              callback<state_reply<domain::inventory::state>> done) {
  impl_->ask_then<state_reply<domain::inventory::state>>(
      impl_->regions.inventory, state_query<inventory_traits>{id}, std::move(done));
}

void runtime::payment_state(const std::string& id,
                            callback<state_reply<domain::payment::state>> done) {
  impl_->ask_then<state_reply<domain::payment::state>>(
      impl_->regions.payment, state_query<payment_traits>{id}, std::move(done));
}

void runtime::send(const std::string& id, domain::inventory::command cmd, command_meta meta,
                   callback<command_reply<domain::inventory::event>> done) {
  impl_->ask_then<command_reply<domain::inventory::event>>(
      impl_->regions.inventory,
      command_request<inventory_traits>{id, std::move(cmd), std::move(meta)}, std::move(done));
}

state_reply<domain::sagas::state> runtime::resume_saga(const std::string& saga_id) {
  // Activation is the resumption: the saga actor continues from its journal on recovery.
  return saga_state(saga_id);
}

order_saga_outcome runtime::start_saga_for_order(const std::string& order_id) {
  return impl_->run_flow<order_saga_outcome>(start_saga_flow, order_id).get();
}

std::uint64_t runtime::subscribe_finished_sagas(
    std::function<void(const domain::sagas::state&)> observer) {
  return impl_->services->finished.add(std::move(observer));
}

void runtime::unsubscribe_finished_sagas(std::uint64_t token) {
  impl_->services->finished.remove(token);
}

domain::timestamp runtime::now() const { return impl_->services->clock(); }

persistence::writer_stats runtime::writer_stats() const { return impl_->writer.stats(); }

caf::actor_system& runtime::system() { return impl_->system; }

const region_handles& runtime::regions() const { return impl_->regions; }

}  // namespace saga::actors

// The actor runtime facade: owns a CAF actor_system, the journal readers, the group-commit
// writer, the payment gateway actor, one region per aggregate type and the saga region; apps and
// tests send commands, place and cancel orders and drive sagas through it, waiting with a
// timeout or getting a future. No CAF headers here. Thread-safe: any thread may call it, except
// that the blocking calls must not run on a CAF scheduler thread (use the *_async versions).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "actors/options.hpp"
#include "actors/outcome.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/order_processing.hpp"
#include "domain/payment.hpp"
#include "domain/saga.hpp"
#include "domain/types.hpp"
#include "domain/user.hpp"
#include "persistence/event_store.hpp"
#include "persistence/group_commit_writer.hpp"
#include "persistence/payment_gateway.hpp"

namespace caf {
class actor_system;
}

namespace saga::actors {

struct region_handles;  // typed CAF handles, see actors/regions.hpp

enum class aggregate_kind { order, payment, inventory, user, saga };

/// One CAF scheduler thread per core (at least one).
[[nodiscard]] std::size_t default_scheduler_threads() noexcept;

/// How CAF's scheduler threads find work.
enum class scheduler_policy {
  /// Per-thread queues; idle threads poll and steal (CAF's default; spins while idle).
  stealing,
  /// One shared queue; idle threads sleep on it (no spinning, which leaves the cores to the
  /// journal's PostgreSQL on small machines).
  sharing,
};

struct runtime_options {
  /// Settings of every region and actor. The saga region never passivates: a saga actor stops
  /// itself once it is no longer RUNNING or COMPENSATING.
  region_options regions;
  persistence::writer_options writer;
  /// Detached journal reader actors (one store, i.e. one connection, each).
  std::size_t readers = 2;
  /// CAF scheduler threads; 0 = one per core (default_scheduler_threads()).
  std::size_t scheduler_threads = 0;
  /// Sharing by default: on small machines shared with PostgreSQL, stealing's idle polling
  /// costs the journal CPU (measured: fewer sagas/s, longer tails; see saga-bench sagas).
  scheduler_policy scheduler = scheduler_policy::sharing;
  /// How long send()/query() wait for an answer by default.
  std::chrono::milliseconds ask_timeout{std::chrono::seconds(15)};
  /// Makes the payment gateway (called on the gateway actor's own thread). Empty: no gateway,
  /// so charges and refunds fail with gateway_unavailable.
  std::function<std::unique_ptr<persistence::payment_gateway>()> gateway;
  /// Saga definitions by type. Null: OrderProcessing built with `saga_steps`. A catalog given
  /// here needs OrderProcessing too for place_order and start_saga_for_order.
  std::shared_ptr<const domain::sagas::saga_catalog> sagas;
  /// Timeouts and retry policies of the default OrderProcessing definition.
  domain::sagas::order_processing_options saga_steps;
  /// Epoch milliseconds for commands and saga timers; empty: the system clock. Thread-safe.
  std::function<domain::timestamp()> clock;
  /// Uniform samples in [0, 1) for retry jitter; empty: a per-thread generator. Thread-safe.
  std::function<double()> random;
};

/// An order to place: the order is created, then its OrderProcessing saga is started.
struct order_request {
  std::string order_id;  ///< empty: a fresh UUID
  std::string customer_id;
  std::vector<domain::order::line_item> items;
  std::string shipping_address;
  std::string correlation_id;   ///< empty: a fresh UUID
  std::string idempotency_key;  ///< the same key places the same order once
};

/// What an operation on orders or sagas did. `kind` is accepted (done now), replayed (done
/// before: the same request again), rejected (a business rule, see `rejection`) or failed
/// (infrastructure, see `failure`; retryable ones may succeed when repeated).
struct operation_outcome {
  reply_kind kind = reply_kind::failed;
  domain::rejection_code rejection = domain::rejection_code::invalid_argument;
  failure_code failure = failure_code::none;
  std::string message;

  [[nodiscard]] bool ok() const noexcept {
    return kind == reply_kind::accepted || kind == reply_kind::replayed;
  }
};

/// The answer to place_order.
struct placed_order : operation_outcome {
  std::string order_id;
  std::string saga_id;
  std::string correlation_id;
  domain::order::status status = domain::order::status::none;
  domain::money total = 0;
  /// The saga was started (now or before). When false on an ok() outcome the order exists
  /// but its saga could not be started yet (`message` says why); start_saga_for_order (node
  /// start-up recovery) starts it later.
  bool saga_started = false;
};

/// The answer to the saga operations on an order (cancel, start).
struct order_saga_outcome : operation_outcome {
  std::string order_id;
  std::string saga_id;
};

class runtime {
 public:
  using store_factory = std::function<std::unique_ptr<persistence::event_store>()>;

  /// Starts the actor system, `options.readers` readers and the writer (each with a store from
  /// `make_store`, called on the thread that uses it), the payment gateway actor and the
  /// regions. Unfinished sagas are not resumed here: call resume_saga for each.
  runtime(runtime_options options, store_factory make_store);
  /// Stops the saga region, the other regions (and their actors), the gateway, the readers,
  /// then the writer and the system.
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

  // ---- orders and sagas ----

  /// Creates the order (PENDING, with a fresh saga id) and starts its OrderProcessing saga.
  /// Rejections of the order come back as is; a repeated idempotency key answers the first
  /// placement (replayed) and starts its saga if that had not happened.
  placed_order place_order(order_request request);
  std::future<placed_order> place_order_async(order_request request);

  /// Cancels an order: its saga compensates what it did (refund, release) and cancels the
  /// order. not_found for an unknown order; invalid_state "already cancelled" for a cancelled
  /// one. An order whose saga never started gets it started first and is cancelled through it:
  /// the saga's first step may have gone out before its start was committed and lost, and the
  /// compensation undoes it.
  order_saga_outcome cancel_order(const std::string& order_id, std::string reason);
  std::future<order_saga_outcome> cancel_order_async(const std::string& order_id,
                                                     std::string reason);

  /// Manual (admin) confirmation of a PENDING order. A saga still running treats its own
  /// confirmation as done.
  command_reply<domain::order::event> confirm_order(const std::string& order_id);
  std::future<command_reply<domain::order::event>> confirm_order_async(const std::string& order_id);

  /// Starts a saga of any type in the catalog (OrderProcessing sagas are started by
  /// place_order). An empty `begin.saga_id` is not allowed; a repeated start of the same saga
  /// is rejected invalid_state.
  command_reply<domain::sagas::event> start_saga(const std::string& saga_type,
                                                 domain::sagas::start begin);
  std::future<command_reply<domain::sagas::event>> start_saga_async(const std::string& saga_type,
                                                                    domain::sagas::start begin);

  /// Operator: resumes a FAILED saga's compensation (manual_retry).
  command_reply<domain::sagas::event> retry_saga(const std::string& saga_id);
  std::future<command_reply<domain::sagas::event>> retry_saga_async(const std::string& saga_id);
  /// Operator: compensates a RUNNING saga or resumes a FAILED one (manual_compensate).
  command_reply<domain::sagas::event> compensate_saga(const std::string& saga_id,
                                                      std::string reason);
  std::future<command_reply<domain::sagas::event>> compensate_saga_async(const std::string& saga_id,
                                                                         std::string reason);

  /// A saga's state from its journal (status none: no such saga).
  state_reply<domain::sagas::state> saga_state(const std::string& saga_id);
  std::future<state_reply<domain::sagas::state>> saga_state_async(const std::string& saga_id);

  /// Activates a saga so that a RUNNING or COMPENSATING one continues where its journal
  /// stopped (re-sends pending steps, re-arms its durable timers); node start-up recovery
  /// calls it for every unfinished saga. Answers its state.
  state_reply<domain::sagas::state> resume_saga(const std::string& saga_id);

  /// Starts the OrderProcessing saga of a PENDING order whose saga was never started (its
  /// saga id, or "saga-of-<order_id>" for an order created without one). Idempotent: an
  /// already started saga is ok (replayed), whatever the order's status. not_found for an
  /// unknown order, invalid_state for a CONFIRMED or CANCELLED order without a saga.
  order_saga_outcome start_saga_for_order(const std::string& order_id);

  /// Calls `observer` with the final state of every saga that reaches COMPLETED, COMPENSATED
  /// or FAILED (on an actor thread: keep it quick). Returns a token for unsubscribe.
  std::uint64_t subscribe_finished_sagas(std::function<void(const domain::sagas::state&)> observer);
  void unsubscribe_finished_sagas(std::uint64_t token);

  // ---- callback forms (for the HTTP front: nothing waits) ----
  // Each calls `done` exactly once with the same value the blocking form returns, on a CAF
  // thread (or on the caller's thread when the request is refused at once). `done` must be
  // quick and must not block; every request inside has the runtime's ask_timeout, so `done`
  // always comes (a timeout is a failed reply with failure_code::timeout).

  template <class T>
  using callback = std::function<void(T)>;

  void place_order(order_request request, callback<placed_order> done);
  void cancel_order(const std::string& order_id, std::string reason,
                    callback<order_saga_outcome> done);
  void confirm_order(const std::string& order_id,
                     callback<command_reply<domain::order::event>> done);
  void retry_saga(const std::string& saga_id, callback<command_reply<domain::sagas::event>> done);
  void compensate_saga(const std::string& saga_id, std::string reason,
                       callback<command_reply<domain::sagas::event>> done);
  void send(const std::string& id, domain::inventory::command cmd, command_meta meta,
            callback<command_reply<domain::inventory::event>> done);
  void saga_state(const std::string& saga_id, callback<state_reply<domain::sagas::state>> done);
  void order_state(const std::string& id, callback<state_reply<domain::order::state>> done);
  void inventory_state(const std::string& id, callback<state_reply<domain::inventory::state>> done);
  void payment_state(const std::string& id, callback<state_reply<domain::payment::state>> done);

  /// The clock the runtime stamps commands with (epoch ms).
  domain::timestamp now() const;

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

// The read side: projection actors (actors/projection.hpp), detached query actors that each own
// a read_model_queries (one connection, opened on their own thread), and per query a short-lived
// requester actor that waits for the answer with a timeout and calls the caller's callback
// (the future forms wrap a promise in one).
#include "actors/read_side.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <future>
#include <memory>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include "actors/log.hpp"
#include "actors/read_side_inspect.hpp"

namespace saga::actors {

std::string_view to_string(query_errc code) noexcept {
  switch (code) {
    case query_errc::invalid_argument:
      return "invalid_argument";
    case query_errc::timeout:
      return "timeout";
    case query_errc::unavailable:
      return "unavailable";
    case query_errc::internal:
      return "internal";
  }
  return "unknown";
}

namespace {

namespace sp = saga::persistence;

// ---- query actor ----

struct query_state {
  sp::query_options options;
  std::unique_ptr<sp::read_model_queries> queries;
  static inline const char* name = "read_query";
};

template <class T>
void one(read_reply& out, expected<std::optional<T>, sp::store_error> r, std::vector<T>& into) {
  if (!r) {
    out.error = r.error();
    return;
  }
  if (*r) into.push_back(std::move(**r));
  out.ok = true;
}

template <class T>
void many(read_reply& out, expected<std::vector<T>, sp::store_error> r, std::vector<T>& into) {
  if (!r) {
    out.error = r.error();
    return;
  }
  into = std::move(*r);
  out.ok = true;
}

read_reply answer(sp::read_model_queries& q, const read_query& in) {
  read_reply out;
  switch (in.kind) {
    case read_query_kind::order:
      one(out, q.order(in.id), out.orders);
      break;
    case read_query_kind::orders_by_customer:
      many(out, q.orders_by_customer(in.id, in.limit, in.offset), out.orders);
      break;
    case read_query_kind::payment_by_order:
      one(out, q.payment_by_order(in.id), out.payments);
      break;
    case read_query_kind::product:
      one(out, q.product(in.id), out.products);
      break;
    case read_query_kind::products:
      many(out, q.products(in.limit, in.offset), out.products);
      break;
    case read_query_kind::saga:
      one(out, q.saga(in.id), out.sagas);
      break;
    case read_query_kind::saga_by_correlation:
      one(out, q.saga_by_correlation(in.id), out.sagas);
      break;
    case read_query_kind::active_sagas:
      many(out, q.sagas(sp::saga_filter::active, in.limit, in.offset), out.sagas);
      break;
    case read_query_kind::failed_sagas:
      many(out, q.sagas(sp::saga_filter::failed, in.limit, in.offset), out.sagas);
      break;
    case read_query_kind::events_by_correlation:
      many(out, q.events_by_correlation(in.id, in.limit), out.events);
      break;
    case read_query_kind::events_after:
      many(out, q.events_after(in.after, in.limit), out.events);
      break;
    case read_query_kind::status: {
      many(out, q.checkpoints(in.names), out.checkpoints);
      if (!out.ok) break;
      auto head = q.journal_head();
      if (!head) {
        out.ok = false;
        out.error = head.error();
        break;
      }
      out.journal_head = *head;
      break;
    }
  }
  return out;
}

caf::behavior query_actor(caf::stateful_actor<query_state>* self, sp::query_options options) {
  self->state.options = std::move(options);
  return {
      [=](const read_query& in) -> read_reply {
        auto& st = self->state;
        try {
          if (!st.queries) st.queries = std::make_unique<sp::read_model_queries>(st.options);
          return answer(*st.queries, in);
        } catch (const std::exception& e) {
          // Queries report errors as values; a throw here is a bug, answered, not fatal.
          st.queries.reset();
          read_reply out;
          out.error = sp::store_error{sp::store_errc::internal,
                                      std::string("query actor: ") + e.what(), -1};
          return out;
        }
      },
  };
}

// ---- replies ----

query_error from_store(const sp::store_error& e) {
  switch (e.code) {
    case sp::store_errc::invalid_request:
      return query_error{query_errc::invalid_argument, e.message};
    case sp::store_errc::retryable:
      return query_error{query_errc::unavailable, e.message};
    case sp::store_errc::version_conflict:
    case sp::store_errc::internal:
      break;
  }
  return query_error{query_errc::internal, e.message};
}

/// The caller's callback. Called at most once; if every holder goes away without calling it
/// (the requester actor was killed at shutdown), the destructor answers, so a caller always
/// hears back.
template <class T>
struct reply_slot {
  read_side::callback<T> done;
  std::atomic<bool> called{false};

  explicit reply_slot(read_side::callback<T> d) : done(std::move(d)) {}
  void set(query_result<T> value) {
    if (!called.exchange(true)) done(std::move(value));
  }
  ~reply_slot() {
    if (!called.exchange(true)) {
      done(unexpected{
          query_error{query_errc::unavailable, "the read side stopped before answering"}});
    }
  }
};

/// Runs a callback-form query with a promise as its callback and hands back the future: the
/// future forms of the queries are their callback forms.
template <class T, class Call>
std::future<query_result<T>> as_future(Call call) {
  auto promise = std::make_shared<std::promise<query_result<T>>>();
  auto future = promise->get_future();
  call([promise](query_result<T> r) { promise->set_value(std::move(r)); });
  return future;
}

std::optional<query_error> id_error(std::string_view what, const std::string& id) {
  if (auto bad = sp::query_id_error(what, id)) {
    return query_error{query_errc::invalid_argument, std::move(*bad)};
  }
  return std::nullopt;
}

std::optional<query_error> offset_error(int offset) {
  if (offset < 0) return query_error{query_errc::invalid_argument, "offset must not be negative"};
  return std::nullopt;
}

template <class T>
std::optional<T> first_of(std::vector<T>& values) {
  if (values.empty()) return std::nullopt;
  return std::move(values.front());
}

}  // namespace

struct read_side::impl {
  template <class T>
  using callback = read_side::callback<T>;

  caf::actor_system& system;
  read_side_options options;
  std::vector<std::shared_ptr<projection_monitor>> monitors;
  std::vector<caf::actor> projections;
  std::vector<caf::actor> queriers;
  std::atomic<std::size_t> next_querier{0};

  impl(caf::actor_system& sys, read_side_options opts) : system(sys), options(std::move(opts)) {
    const auto start = [&](std::string name, sp::read_model_set models) {
      projection_options p;
      p.projector.database_url = options.database_url;
      p.projector.schema = options.schema;
      p.projector.name = std::move(name);
      p.projector.models = models;
      p.projector.batch_size = options.batch_size;
      p.idle_wait = options.idle_wait;
      p.max_drain = options.max_drain;
      p.batch_interval = options.batch_interval;
      p.retry_backoff = options.retry_backoff;
      p.max_retry_backoff = options.max_retry_backoff;
      auto monitor = std::make_shared<projection_monitor>(p.projector.name);
      monitors.push_back(monitor);
      projections.push_back(spawn_projection(system, std::move(p), std::move(monitor)));
    };
    if (options.projection_per_view) {
      for (const auto m : {sp::read_model::orders, sp::read_model::payments,
                           sp::read_model::inventory, sp::read_model::sagas}) {
        start(options.projection_name + "." + std::string(sp::to_string(m)), sp::set_of(m));
      }
    } else {
      start(options.projection_name, sp::all_read_models);
    }
    sp::query_options q;
    q.database_url = options.database_url;
    q.schema = options.schema;
    q.statement_timeout = options.query_timeout;
    const auto count = std::max<std::size_t>(1, options.query_actors);
    for (std::size_t i = 0; i < count; ++i) {
      queriers.push_back(system.spawn<caf::detached>(query_actor, q));
    }
  }

  ~impl() {
    std::vector<caf::actor> all = projections;
    all.insert(all.end(), queriers.begin(), queriers.end());
    caf::scoped_actor self{system};
    for (const auto& a : all) {
      self->monitor(a);
      self->send_exit(a, caf::exit_reason::user_shutdown);
    }
    const auto deadline = std::chrono::steady_clock::now() + options.stop_timeout;
    std::size_t running = all.size();
    while (running > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      bool timed_out = left.count() <= 0;
      if (!timed_out) {
        self->receive([&](caf::down_msg&) { --running; },
                      caf::after(left) >> [&] { timed_out = true; });
      }
      if (timed_out) {
        detail::log().warn("read side: {} actor(s) still running after {} ms; not waiting longer",
                           running, options.stop_timeout.count());
        break;
      }
    }
  }

  /// Sends `q` to a query actor and converts its reply with `convert` (on a CAF thread).
  template <class T, class Convert>
  void ask(read_query q, Convert convert, callback<T> done) {
    auto slot = std::make_shared<reply_slot<T>>(std::move(done));
    const auto target = queriers[next_querier.fetch_add(1) % queriers.size()];
    const auto timeout = options.query_timeout;
    // The query travels as a spawn argument: CAF 0.17 dereferences a null argument tuple when a
    // function actor is spawned without arguments (UBSan: reference binding to null).
    system.spawn(
        [slot, target, timeout, convert](caf::event_based_actor* self, read_query query) {
          self->request(target, timeout, std::move(query))
              .then(
                  [slot, convert](read_reply& r) {
                    if (!r.ok) {
                      slot->set(unexpected{from_store(r.error)});
                    } else {
                      slot->set(convert(r));
                    }
                  },
                  [slot, self](caf::error& err) {
                    slot->set(unexpected{query_error{err == caf::sec::request_timeout
                                                         ? query_errc::timeout
                                                         : query_errc::unavailable,
                                                     self->system().render(err)}});
                  });
        },
        std::move(q));
  }

  template <class T, class Field>
  void lookup(read_query_kind kind, std::string_view what, const std::string& id, Field field,
              callback<std::optional<T>> done) {
    if (auto bad = id_error(what, id)) return done(unexpected{std::move(*bad)});
    read_query q;
    q.kind = kind;
    q.id = id;
    ask<std::optional<T>>(
        std::move(q),
        [field](read_reply& r) { return query_result<std::optional<T>>(first_of(r.*field)); },
        std::move(done));
  }

  template <class T, class Field>
  void list(read_query_kind kind, std::string id, int limit, int offset, Field field,
            callback<std::vector<T>> done) {
    if (auto bad = offset_error(offset)) return done(unexpected{std::move(*bad)});
    read_query q;
    q.kind = kind;
    q.id = std::move(id);
    q.limit = sp::clamp_query_limit(limit);
    q.offset = offset;
    ask<std::vector<T>>(
        std::move(q),
        [field](read_reply& r) { return query_result<std::vector<T>>(std::move(r.*field)); },
        std::move(done));
  }
};

read_side::read_side(caf::actor_system& system, read_side_options options)
    : impl_(std::make_unique<impl>(system, std::move(options))) {}

read_side::~read_side() = default;

// ---- callback forms ----

void read_side::order(const std::string& order_id, callback<std::optional<sp::order_view>> done) {
  impl_->lookup<sp::order_view>(read_query_kind::order, "order id", order_id, &read_reply::orders,
                                std::move(done));
}

void read_side::orders_by_customer(const std::string& customer_id, int limit, int offset,
                                   callback<std::vector<sp::order_view>> done) {
  if (auto bad = id_error("customer id", customer_id)) return done(unexpected{std::move(*bad)});
  impl_->list<sp::order_view>(read_query_kind::orders_by_customer, customer_id, limit, offset,
                              &read_reply::orders, std::move(done));
}

void read_side::payment_by_order(const std::string& order_id,
                                 callback<std::optional<sp::payment_view>> done) {
  impl_->lookup<sp::payment_view>(read_query_kind::payment_by_order, "order id", order_id,
                                  &read_reply::payments, std::move(done));
}

void read_side::product(const std::string& product_id,
                        callback<std::optional<sp::inventory_view>> done) {
  impl_->lookup<sp::inventory_view>(read_query_kind::product, "product id", product_id,
                                    &read_reply::products, std::move(done));
}

void read_side::products(int limit, int offset, callback<std::vector<sp::inventory_view>> done) {
  impl_->list<sp::inventory_view>(read_query_kind::products, "", limit, offset,
                                  &read_reply::products, std::move(done));
}

void read_side::saga(const std::string& saga_id, callback<std::optional<sp::saga_view>> done) {
  impl_->lookup<sp::saga_view>(read_query_kind::saga, "saga id", saga_id, &read_reply::sagas,
                               std::move(done));
}

void read_side::saga_by_correlation(const std::string& correlation_id,
                                    callback<std::optional<sp::saga_view>> done) {
  impl_->lookup<sp::saga_view>(read_query_kind::saga_by_correlation, "correlation id",
                               correlation_id, &read_reply::sagas, std::move(done));
}

void read_side::active_sagas(int limit, int offset, callback<std::vector<sp::saga_view>> done) {
  impl_->list<sp::saga_view>(read_query_kind::active_sagas, "", limit, offset, &read_reply::sagas,
                             std::move(done));
}

void read_side::failed_sagas(int limit, int offset, callback<std::vector<sp::saga_view>> done) {
  impl_->list<sp::saga_view>(read_query_kind::failed_sagas, "", limit, offset, &read_reply::sagas,
                             std::move(done));
}

void read_side::events_by_correlation(const std::string& correlation_id, int limit,
                                      callback<std::vector<sp::recorded_event>> done) {
  if (auto bad = id_error("correlation id", correlation_id)) {
    return done(unexpected{std::move(*bad)});
  }
  impl_->list<sp::recorded_event>(read_query_kind::events_by_correlation, correlation_id, limit, 0,
                                  &read_reply::events, std::move(done));
}

void read_side::events_after(std::int64_t after_position, int limit,
                             callback<std::vector<sp::recorded_event>> done) {
  if (after_position < 0) {
    return done(
        unexpected{query_error{query_errc::invalid_argument, "after must not be negative"}});
  }
  read_query q;
  q.kind = read_query_kind::events_after;
  q.after = after_position;
  q.limit = sp::clamp_query_limit(limit);
  impl_->ask<std::vector<sp::recorded_event>>(
      std::move(q),
      [](read_reply& r) {
        return query_result<std::vector<sp::recorded_event>>(std::move(r.events));
      },
      std::move(done));
}

void read_side::status(callback<read_side_status> done) {
  read_query q;
  q.kind = read_query_kind::status;
  for (const auto& m : impl_->monitors) q.names.push_back(m->status().name);
  impl_->ask<read_side_status>(
      std::move(q),
      [monitors = impl_->monitors](read_reply& r) {
        read_side_status s;
        s.journal_head = r.journal_head;
        for (const auto& m : monitors) {
          auto p = m->status();
          for (const auto& c : r.checkpoints) {
            if (c.name == p.name) p.checkpoint = c.position;
          }
          p.lag = std::max<std::int64_t>(0, s.journal_head - p.checkpoint);
          s.projections.push_back(std::move(p));
        }
        return query_result<read_side_status>(std::move(s));
      },
      std::move(done));
}

// ---- future forms: the callback forms with a promise as the callback ----

std::future<query_result<std::optional<sp::order_view>>> read_side::order(
    const std::string& order_id) {
  return as_future<std::optional<sp::order_view>>(
      [&](auto done) { order(order_id, std::move(done)); });
}

std::future<query_result<std::vector<sp::order_view>>> read_side::orders_by_customer(
    const std::string& customer_id, int limit, int offset) {
  return as_future<std::vector<sp::order_view>>(
      [&](auto done) { orders_by_customer(customer_id, limit, offset, std::move(done)); });
}

std::future<query_result<std::optional<sp::payment_view>>> read_side::payment_by_order(
    const std::string& order_id) {
  return as_future<std::optional<sp::payment_view>>(
      [&](auto done) { payment_by_order(order_id, std::move(done)); });
}

std::future<query_result<std::optional<sp::inventory_view>>> read_side::product(
    const std::string& product_id) {
  return as_future<std::optional<sp::inventory_view>>(
      [&](auto done) { product(product_id, std::move(done)); });
}

std::future<query_result<std::vector<sp::inventory_view>>> read_side::products(int limit,
                                                                               int offset) {
  return as_future<std::vector<sp::inventory_view>>(
      [&](auto done) { products(limit, offset, std::move(done)); });
}

std::future<query_result<std::optional<sp::saga_view>>> read_side::saga(
    const std::string& saga_id) {
  return as_future<std::optional<sp::saga_view>>(
      [&](auto done) { saga(saga_id, std::move(done)); });
}

std::future<query_result<std::optional<sp::saga_view>>> read_side::saga_by_correlation(
    const std::string& correlation_id) {
  return as_future<std::optional<sp::saga_view>>(
      [&](auto done) { saga_by_correlation(correlation_id, std::move(done)); });
}

std::future<query_result<std::vector<sp::saga_view>>> read_side::active_sagas(int limit,
                                                                              int offset) {
  return as_future<std::vector<sp::saga_view>>(
      [&](auto done) { active_sagas(limit, offset, std::move(done)); });
}

std::future<query_result<std::vector<sp::saga_view>>> read_side::failed_sagas(int limit,
                                                                              int offset) {
  return as_future<std::vector<sp::saga_view>>(
      [&](auto done) { failed_sagas(limit, offset, std::move(done)); });
}

std::future<query_result<std::vector<sp::recorded_event>>> read_side::events_by_correlation(
    const std::string& correlation_id, int limit) {
  return as_future<std::vector<sp::recorded_event>>(
      [&](auto done) { events_by_correlation(correlation_id, limit, std::move(done)); });
}

std::future<query_result<std::vector<sp::recorded_event>>> read_side::events_after(
    std::int64_t after_position, int limit) {
  return as_future<std::vector<sp::recorded_event>>(
      [&](auto done) { events_after(after_position, limit, std::move(done)); });
}

std::future<query_result<read_side_status>> read_side::status() {
  return as_future<read_side_status>([&](auto done) { status(std::move(done)); });
}

bool read_side::wait_caught_up(std::int64_t position, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& m : impl_->monitors) {
    if (!m->wait_for(position, deadline)) return false;
  }
  return true;
}

bool read_side::wait_caught_up_to_head(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto head = status();
  if (head.wait_until(deadline) != std::future_status::ready) return false;
  auto s = head.get();
  if (!s) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return wait_caught_up(s->journal_head, std::max(left, std::chrono::milliseconds(0)));
}

std::vector<projection_status> read_side::projection_health() const {
  std::vector<projection_status> out;
  for (const auto& m : impl_->monitors) out.push_back(m->status());
  return out;
}

}  // namespace saga::actors

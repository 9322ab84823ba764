// The read side against PostgreSQL (a fresh schema per test): views follow the commands the
// runtime commits, a restarted read side continues from its checkpoint without gaps or double
// applies, NOTIFY wakes an idle projection, an undecodable event shows in the status, two read
// sides of one name share the work, queries validate their input and everything stops promptly.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "actors/read_side.hpp"
#include "domain/saga_codec.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_admin.hpp"
#include "persistence/pg_event_store.hpp"
#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace dom = saga::domain;
namespace sg = saga::domain::sagas;

namespace saga::actors {
inline std::ostream& operator<<(std::ostream& out, query_errc code) {
  return out << to_string(code);
}
}  // namespace saga::actors

namespace {

constexpr dom::timestamp t0 = 1'700'000'000'000;

/// A schema of this test's own, migrated; dropped at the end.
struct scratch {
  std::string url;
  std::string schema;

  scratch() {
    const char* u = std::getenv("DATABASE_URL");
    BOOST_REQUIRE_MESSAGE(u != nullptr && *u != '\0',
                          "DATABASE_URL is not set: the read side tests need a PostgreSQL");
    url = u;
    static std::mt19937_64 rng{std::random_device{}()};
    schema = "read_side_test_" + std::to_string(rng() % 1'000'000'000);
    auto applied = sp::apply_migrations(url, sp::migration_options{schema});
    BOOST_REQUIRE_MESSAGE(
        applied.has_value(),
        "migrations failed: " + (applied ? std::string() : applied.error().message));
  }
  ~scratch() { (void)sp::run_sql(url, "DROP SCHEMA \"" + schema + "\" CASCADE"); }

  std::unique_ptr<sp::pg_event_store> store() const {
    sp::pg_store_options o;
    o.database_url = url;
    o.schema = schema;
    o.application_name = "read-side-test";
    return std::make_unique<sp::pg_event_store>(o);
  }
  runtime::store_factory factory() const {
    return [url = url, schema = schema]() -> std::unique_ptr<sp::event_store> {
      sp::pg_store_options o;
      o.database_url = url;
      o.schema = schema;
      o.application_name = "read-side-test-runtime";
      return std::make_unique<sp::pg_event_store>(o);
    };
  }
  read_side_options read_options() const {
    read_side_options o;
    o.database_url = url;
    o.schema = schema;
    o.idle_wait = 100ms;
    o.retry_backoff = 20ms;
    o.max_retry_backoff = 200ms;
    o.query_timeout = 5s;
    return o;
  }
};

template <class T>
T require(std::future<query_result<T>> f) {
  BOOST_REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  BOOST_REQUIRE_MESSAGE(r.has_value(), "query failed: " + (r ? std::string() : r.error().message));
  return std::move(*r);
}

template <class T>
query_error require_error(std::future<query_result<T>> f) {
  BOOST_REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  BOOST_REQUIRE(!r.has_value());
  return r.error();
}

dom::order::create create_order(const std::string& id, const std::string& customer,
                                const std::string& product, std::int64_t quantity,
                                dom::timestamp at) {
  dom::order::create c;
  c.order_id = id;
  c.customer_id = customer;
  c.items = {{product, "Widget " + product, quantity, 1500}};
  c.shipping_address = "1 Main St";
  c.correlation_id = "corr-" + id;
  c.saga_id = "saga-" + id;
  c.at = at;
  c.idempotency_key = id + "/create";
  return c;
}

std::int64_t append(sp::pg_event_store& store, const std::string& type, const std::string& stream,
                    std::int64_t expected, const std::vector<dom::encoded_event>& events,
                    const std::string& correlation_id) {
  sp::append_request r{stream, type, expected, {}};
  for (const auto& e : events) {
    sp::new_event n;
    n.event_id = sp::new_uuid();
    n.event_type = e.type;
    n.schema_version = e.schema_version;
    n.payload = e.payload;
    n.metadata.correlation_id = correlation_id;
    r.events.push_back(std::move(n));
  }
  auto ok = store.append(r);
  BOOST_REQUIRE_MESSAGE(ok.has_value(),
                        "append failed: " + (ok ? std::string() : ok.error().message));
  return ok->last_position;
}

/// Destroys `rs`, failing the test if that takes longer than `limit`.
void stop_within(std::unique_ptr<read_side>& rs, std::chrono::milliseconds limit) {
  const auto started = std::chrono::steady_clock::now();
  rs.reset();
  const auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST_MESSAGE("read side stopped in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms");
  BOOST_TEST((took < limit));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(read_side_on_postgres)

BOOST_AUTO_TEST_CASE(views_follow_committed_commands_and_the_status_shows_no_lag) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto rs = std::make_unique<read_side>(rt.system(), db.read_options());

  const command_meta meta{"corr-o1", "", "", ""};
  BOOST_REQUIRE(rt.send("p1", register_product("p1", 10, "reg-p1"), meta).ok());
  BOOST_REQUIRE(rt.send("o1", create_order("o1", "c1", "p1", 3, t0), meta).ok());
  BOOST_REQUIRE(rt.send("p1", reserve("o1", 3, "o1/reserve"), meta).ok());
  // A saga and a payment, written as their actors would.
  auto store = db.store();
  sg::saga_started started{"saga-o1",
                           "OrderProcessing",
                           "corr-o1",
                           {},
                           {"reserve_inventory", "process_payment", "confirm_order"},
                           t0,
                           std::nullopt};
  started.input.order_id = "o1";
  append(*store, "saga", "saga-saga-o1", 0,
         {dom::encode(sg::event{started}),
          dom::encode(sg::event{sg::step_started{0, sg::phase::forward, 1, 1, {0}, t0, t0 + 5}})},
         "corr-o1");
  append(*store, "payment", "payment-pay-o1", 0,
         {dom::encode(dom::payment::event{
             dom::payment::payment_processed{"pay-o1", "o1", "c1", 4500, "tx-1", t0 + 1, "k"}})},
         "corr-o1");

  BOOST_REQUIRE(rs->wait_caught_up_to_head(10s));
  auto order = require(rs->order("o1"));
  BOOST_REQUIRE(order.has_value());
  BOOST_TEST(order->status == "PENDING");
  BOOST_TEST(order->total == 4500);
  BOOST_TEST(order->customer_id == "c1");
  BOOST_REQUIRE(order->items.size() == 1u);
  BOOST_TEST(order->items[0].quantity == 3);
  auto product = require(rs->product("p1"));
  BOOST_REQUIRE(product.has_value());
  BOOST_TEST(product->available == 7);
  BOOST_TEST(product->reserved == 3);
  auto saga = require(rs->saga_by_correlation("corr-o1"));
  BOOST_REQUIRE(saga.has_value());
  BOOST_TEST(saga->saga_id == "saga-o1");
  BOOST_TEST(saga->status == "RUNNING");
  BOOST_TEST(saga->current_step == "reserve_inventory");
  BOOST_TEST(require(rs->active_sagas()).size() == 1u);
  BOOST_TEST(require(rs->failed_sagas()).empty());
  auto payment = require(rs->payment_by_order("o1"));
  BOOST_REQUIRE(payment.has_value());
  BOOST_TEST(payment->status == "PROCESSED");
  const auto trace = require(rs->events_by_correlation("corr-o1"));
  BOOST_TEST(trace.size() == 6u);
  BOOST_TEST(std::is_sorted(trace.begin(), trace.end(),
                            [](const auto& a, const auto& b) { return a.position < b.position; }));

  const auto status = require(rs->status());
  BOOST_REQUIRE(status.projections.size() == 1u);
  BOOST_TEST(status.projections[0].name == "read_models");
  BOOST_TEST(status.projections[0].running);
  BOOST_TEST(status.projections[0].checkpoint == status.journal_head);
  BOOST_TEST(status.projections[0].lag == 0);
  BOOST_TEST(status.projections[0].last_error.empty());
  BOOST_TEST(status.projections[0].events_applied == 6u);

  // The next change shows up too.
  BOOST_REQUIRE(rt.send("o1", dom::order::confirm{t0 + 10, "o1/confirm"}).ok());
  BOOST_REQUIRE(rs->wait_caught_up_to_head(10s));
  BOOST_TEST(require(rs->order("o1"))->status == "CONFIRMED");
  BOOST_TEST(require(rs->orders_by_customer("c1")).size() == 1u);
  stop_within(rs, 2s);
}

BOOST_AUTO_TEST_CASE(events_after_pages_the_journal_and_callback_forms_answer_once) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto rs = std::make_unique<read_side>(rt.system(), db.read_options());
  const command_meta meta{"corr-feed", "", "", ""};
  BOOST_REQUIRE(rt.send("p1", register_product("p1", 10, "reg-p1"), meta).ok());
  BOOST_REQUIRE(rt.send("o1", create_order("o1", "c1", "p1", 1, t0), meta).ok());
  BOOST_REQUIRE(rt.send("p1", reserve("o1", 1, "o1/reserve"), meta).ok());

  const auto all = require(rs->events_after(0, 100));
  BOOST_REQUIRE(all.size() == 3u);
  BOOST_TEST(all[0].event_type == "ProductRegistered");
  // Paging by the last position seen returns the rest, in order, without repeats.
  const auto rest = require(rs->events_after(all[0].position, 100));
  BOOST_REQUIRE(rest.size() == 2u);
  BOOST_TEST(rest[0].position == all[1].position);
  BOOST_TEST(require(rs->events_after(all[2].position, 100)).empty());
  BOOST_TEST(require(rs->events_after(0, 2)).size() == 2u);
  BOOST_TEST(require_error(rs->events_after(-1, 10)).code == query_errc::invalid_argument);

  // Callback forms: invalid input answers at once on this thread; a real query answers once.
  std::promise<query_errc> refused;
  rs->order("", [&](query_result<std::optional<sp::order_view>> r) {
    refused.set_value(r ? query_errc::internal : r.error().code);
  });
  BOOST_TEST(refused.get_future().get() == query_errc::invalid_argument);
  std::promise<std::size_t> listed;
  rs->events_after(0, 100, [&](query_result<std::vector<sp::recorded_event>> r) {
    listed.set_value(r ? r->size() : 0u);
  });
  auto listed_f = listed.get_future();
  BOOST_REQUIRE(listed_f.wait_for(10s) == std::future_status::ready);
  BOOST_TEST(listed_f.get() == 3u);

  // The runtime's callback forms answer like the blocking ones.
  std::promise<state_reply<dom::inventory::state>> product;
  rt.inventory_state("p1", [&](state_reply<dom::inventory::state> r) { product.set_value(r); });
  auto product_f = product.get_future();
  BOOST_REQUIRE(product_f.wait_for(10s) == std::future_status::ready);
  const auto p = product_f.get();
  BOOST_REQUIRE(p.ok);
  BOOST_TEST(p.state.version == 2);
  std::promise<command_reply<dom::order::event>> confirmed;
  rt.confirm_order("o1", [&](command_reply<dom::order::event> r) { confirmed.set_value(r); });
  auto confirmed_f = confirmed.get_future();
  BOOST_REQUIRE(confirmed_f.wait_for(10s) == std::future_status::ready);
  BOOST_TEST(confirmed_f.get().ok());
  BOOST_TEST(require(rs->events_after(all[2].position, 100)).size() == 1u);
  stop_within(rs, 2s);
}

BOOST_AUTO_TEST_CASE(a_restarted_read_side_continues_from_its_checkpoint) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  BOOST_REQUIRE(rt.send("hot", register_product("hot", 1000, "reg-hot")).ok());
  const auto reserve_all = [&](int from, int to) {
    std::vector<std::future<command_reply<inv::event>>> reserved;
    std::vector<std::future<command_reply<dom::order::event>>> created;
    for (int i = from; i < to; ++i) {
      const auto order = "r" + std::to_string(i);
      reserved.push_back(rt.send_async("hot", reserve(order, 1, order + "/reserve")));
      created.push_back(
          rt.send_async(order, create_order(order, "c" + std::to_string(i % 7), "hot", 1, t0 + i)));
    }
    for (auto& f : reserved) BOOST_REQUIRE(f.get().ok());
    for (auto& f : created) BOOST_REQUIRE(f.get().ok());
  };

  auto rs = std::make_unique<read_side>(rt.system(), db.read_options());
  reserve_all(0, 200);
  BOOST_REQUIRE(rs->wait_caught_up_to_head(20s));
  BOOST_TEST(require(rs->product("hot"))->reserved == 200);
  stop_within(rs, 2s);

  // While no read side runs.
  reserve_all(200, 300);
  for (int i = 0; i < 50; ++i) {
    const auto order = "r" + std::to_string(i);
    BOOST_REQUIRE(rt.send("hot", inv::release{order, "cancel", t0, order + "/release"}).ok());
    BOOST_REQUIRE(
        rt.send(order, dom::order::cancel{"cancelled", t0 + 500, order + "/cancel"}).ok());
  }

  rs = std::make_unique<read_side>(rt.system(), db.read_options());
  BOOST_REQUIRE(rs->wait_caught_up_to_head(20s));
  // Exactly what the aggregates (rebuilt from the journal by the runtime) hold.
  const auto expected = rt.inventory_state("hot");
  BOOST_REQUIRE(expected.ok);
  const auto hot = require(rs->product("hot"));
  BOOST_REQUIRE(hot.has_value());
  BOOST_TEST(hot->available == expected.state.available);
  BOOST_TEST(hot->reserved == expected.state.reserved);
  BOOST_TEST(hot->version == expected.state.version);
  BOOST_TEST(hot->reserved == 250);
  BOOST_TEST(hot->available == 750);
  for (int i = 0; i < 300; i += 37) {
    const auto id = "r" + std::to_string(i);
    const auto state = rt.order_state(id);
    BOOST_REQUIRE(state.ok);
    const auto view = require(rs->order(id));
    BOOST_REQUIRE(view.has_value());
    BOOST_TEST(view->status == dom::order::to_string(state.state.status_));
    BOOST_TEST(view->version == state.state.version);
    BOOST_TEST(view->updated_at == state.state.updated_at);
  }
  const auto status = require(rs->status());
  BOOST_TEST(status.projections[0].checkpoint == status.journal_head);
  // Counted once each: 300 reservations, 300 orders, 50 releases, 50 cancels (the
  // registration was applied by the first read side).
  BOOST_TEST(status.projections[0].events_applied == 100u * 2 + 50u * 2);
  stop_within(rs, 2s);
}

BOOST_AUTO_TEST_CASE(a_journal_notification_wakes_an_idle_projection) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto options = db.read_options();
  options.idle_wait = 5s;  // polling alone would take seconds to notice
  options.stop_timeout = 10s;
  auto rs = std::make_unique<read_side>(rt.system(), options);
  auto store = db.store();
  const auto first = append(*store, "order", "order-n1", 0,
                            {dom::encode(dom::order::event{dom::order::order_created{
                                "n1", "c1", {}, 0, "", "", "", t0, "k1"}})},
                            "");
  BOOST_REQUIRE(rs->wait_caught_up(first, 10s));
  std::this_thread::sleep_for(300ms);  // the projection now waits on LISTEN
  const auto started = std::chrono::steady_clock::now();
  const auto second = append(*store, "order", "order-n2", 0,
                             {dom::encode(dom::order::event{dom::order::order_created{
                                 "n2", "c1", {}, 0, "", "", "", t0, "k2"}})},
                             "");
  BOOST_REQUIRE(rs->wait_caught_up(second, 10s));
  const auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST_MESSAGE(
      "projected " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                   << " ms after the commit");
  BOOST_TEST((took < 2s));
  BOOST_TEST(require(rs->order("n2")).has_value());
  stop_within(rs, 7s);  // a waiting projection notices the exit after at most idle_wait
}

BOOST_AUTO_TEST_CASE(events_arriving_right_after_a_batch_wait_for_the_interval_and_go_in_one) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto options = db.read_options();
  options.idle_wait = 5s;
  options.batch_interval = 500ms;
  options.stop_timeout = 10s;
  auto rs = std::make_unique<read_side>(rt.system(), options);
  auto store = db.store();
  const auto order_event = [](const std::string& id) {
    return std::vector<dom::encoded_event>{dom::encode(
        dom::order::event{dom::order::order_created{id, "c1", {}, 0, "", "", "", t0, "k-" + id}})};
  };
  // Idle: the first event is applied at once, not after the interval.
  std::this_thread::sleep_for(300ms);
  auto started = std::chrono::steady_clock::now();
  const auto first = append(*store, "order", "order-b0", 0, order_event("b0"), "");
  BOOST_REQUIRE(rs->wait_caught_up(first, 10s));
  BOOST_TEST((std::chrono::steady_clock::now() - started < 400ms));
  const auto batches_before = require(rs->status()).projections.at(0).batches;
  // Three commits right after that batch: one batch takes them all, once the interval is over.
  started = std::chrono::steady_clock::now();
  std::int64_t last = 0;
  for (const auto* id : {"b1", "b2", "b3"}) {
    last = append(*store, "order", std::string("order-") + id, 0, order_event(id), "");
  }
  BOOST_REQUIRE(rs->wait_caught_up(last, 10s));
  const auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST_MESSAGE("burst projected after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms");
  BOOST_TEST((took >= 300ms));  // the interval (500 ms) less what passed before the burst
  const auto status = require(rs->status());
  BOOST_TEST(status.projections.at(0).batches == batches_before + 1);
  BOOST_TEST(status.projections.at(0).events_applied == 4u);
  for (const auto* id : {"b1", "b2", "b3"}) BOOST_TEST(require(rs->order(id)).has_value());
  stop_within(rs, 7s);
}

BOOST_AUTO_TEST_CASE(an_undecodable_event_stops_the_projection_and_shows_in_the_status) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto rs = std::make_unique<read_side>(rt.system(), db.read_options());
  auto store = db.store();
  const auto created = [](const std::string& id) {
    return dom::encode(
        dom::order::event{dom::order::order_created{id, "c1", {}, 0, "", "", "", t0, id}});
  };
  const auto good = append(*store, "order", "order-g1", 0, {created("g1")}, "");
  // Applied before the bad event exists (a batch holding both would be rolled back whole).
  BOOST_REQUIRE(rs->wait_caught_up(good, 10s));
  const auto bad = append(*store, "order", "order-bad", 0,
                          {dom::encoded_event{"OrderCreated", 1, R"({"schema_version":1})"}}, "");
  append(*store, "order", "order-g2", 0, {created("g2")}, "");

  BOOST_REQUIRE(
      eventually([&] { return rs->projection_health().front().consecutive_failures >= 2; }, 5s));
  const auto health = rs->projection_health().front();
  BOOST_TEST(health.running);
  BOOST_TEST(health.last_error_code == "undecodable");
  BOOST_TEST(health.error_position == bad);
  BOOST_TEST(health.last_error.find("order-bad") != std::string::npos);
  const auto status = require(rs->status());
  BOOST_TEST(status.projections[0].checkpoint == good);
  BOOST_TEST(status.projections[0].lag == status.journal_head - good);
  BOOST_TEST(status.projections[0].lag >= 2);
  BOOST_TEST(!rs->wait_caught_up(bad, 300ms));
  BOOST_TEST(require(rs->order("g1")).has_value());
  BOOST_TEST(!require(rs->order("g2")).has_value());  // never skipped past
  stop_within(rs, 2s);                                // also while backing off
}

BOOST_AUTO_TEST_CASE(two_read_sides_of_one_name_apply_every_event_exactly_once) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto a = std::make_unique<read_side>(rt.system(), db.read_options());
  auto b = std::make_unique<read_side>(rt.system(), db.read_options());
  BOOST_REQUIRE(rt.send("hot", register_product("hot", 1000, "reg-hot")).ok());
  std::vector<std::future<command_reply<inv::event>>> replies;
  for (int i = 0; i < 300; ++i) {
    const auto order = "x" + std::to_string(i);
    replies.push_back(rt.send_async("hot", reserve(order, 1, order + "/reserve")));
  }
  for (auto& f : replies) BOOST_REQUIRE(f.get().ok());
  BOOST_REQUIRE(a->wait_caught_up_to_head(20s));
  BOOST_REQUIRE(b->wait_caught_up_to_head(20s));
  const auto hot = require(a->product("hot"));
  BOOST_REQUIRE(hot.has_value());
  BOOST_TEST(hot->reserved == 300);
  BOOST_TEST(hot->available == 700);
  BOOST_TEST(hot->version == 301);
  const auto applied =
      a->projection_health().front().events_applied + b->projection_health().front().events_applied;
  BOOST_TEST(applied == 301u);
  stop_within(a, 2s);
  stop_within(b, 2s);
}

BOOST_AUTO_TEST_CASE(one_projection_per_view_keeps_four_checkpoints) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto options = db.read_options();
  options.projection_per_view = true;
  auto rs = std::make_unique<read_side>(rt.system(), options);
  BOOST_REQUIRE(rt.send("p1", register_product("p1", 5, "reg-p1")).ok());
  BOOST_REQUIRE(rt.send("o1", create_order("o1", "c1", "p1", 2, t0)).ok());
  BOOST_REQUIRE(rs->wait_caught_up_to_head(10s));
  const auto status = require(rs->status());
  BOOST_REQUIRE(status.projections.size() == 4u);
  std::vector<std::string> names;
  for (const auto& p : status.projections) {
    names.push_back(p.name);
    BOOST_TEST(p.checkpoint == status.journal_head);
  }
  BOOST_TEST((names == std::vector<std::string>{"read_models.orders", "read_models.payments",
                                                "read_models.inventory", "read_models.sagas"}));
  BOOST_TEST(require(rs->product("p1"))->available == 5);
  BOOST_TEST(require(rs->order("o1"))->status == "PENDING");
  stop_within(rs, 2s);
}

BOOST_AUTO_TEST_CASE(queries_validate_input_time_out_and_always_answer) {
  scratch db;
  runtime rt(fast_options(), db.factory());
  auto rs = std::make_unique<read_side>(rt.system(), db.read_options());
  BOOST_TEST(require_error(rs->order("")).code == query_errc::invalid_argument);
  BOOST_TEST(require_error(rs->order(std::string(sp::max_query_id_bytes + 1, 'x'))).code ==
             query_errc::invalid_argument);
  BOOST_TEST(require_error(rs->saga_by_correlation("")).code == query_errc::invalid_argument);
  BOOST_TEST(require_error(rs->orders_by_customer("c1", 10, -1)).code ==
             query_errc::invalid_argument);
  BOOST_TEST(require_error(rs->orders_by_customer("", 10, 0)).code == query_errc::invalid_argument);
  BOOST_TEST(require_error(rs->events_by_correlation("")).code == query_errc::invalid_argument);
  BOOST_TEST(require_error(rs->active_sagas(10, -2)).code == query_errc::invalid_argument);
  BOOST_TEST(!require(rs->saga("nope")).has_value());
  BOOST_TEST(require(rs->products(-7)).empty());  // clamped, not refused
  // Invalid UTF-8 is refused by the database: an error value, and the actor carries on.
  BOOST_TEST(require_error(rs->order("\xff\xfe")).code == query_errc::invalid_argument);
  BOOST_TEST(!require(rs->order("fine")).has_value());

  // A query that cannot be answered in time is a timeout value (the first one also connects).
  auto impatient_options = db.read_options();
  impatient_options.query_timeout = 1ms;
  auto impatient = std::make_unique<read_side>(rt.system(), impatient_options);
  BOOST_TEST(require_error(impatient->orders_by_customer("c1")).code == query_errc::timeout);

  // Stopping with queries in flight still answers them.
  std::vector<std::future<query_result<std::vector<sp::order_view>>>> pending;
  for (int i = 0; i < 20; ++i) pending.push_back(rs->orders_by_customer("c1"));
  stop_within(rs, 2s);
  for (auto& f : pending) {
    BOOST_REQUIRE(f.wait_for(5s) == std::future_status::ready);
    BOOST_CHECK_NO_THROW(f.get());
  }
  stop_within(impatient, 2s);
}

BOOST_AUTO_TEST_SUITE_END()

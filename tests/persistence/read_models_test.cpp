// Read models on PostgreSQL (a fresh schema per test): the projector folds every view like the
// domain does, in batches of few round trips, continues from its checkpoint without gaps or
// double applies, stops at an undecodable event, and the queries validate and page.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "domain/aggregate_codec.hpp"
#include "domain/saga_codec.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_admin.hpp"
#include "persistence/pg_event_store.hpp"
#include "persistence/read_models.hpp"

namespace sp = saga::persistence;
namespace dom = saga::domain;
namespace sg = saga::domain::sagas;
using namespace std::chrono_literals;

namespace {

constexpr dom::timestamp t0 = 1'700'000'000'000;

std::string url() {
  const char* u = std::getenv("DATABASE_URL");
  BOOST_REQUIRE_MESSAGE(u != nullptr && *u != '\0',
                        "DATABASE_URL is not set: the read model tests need a PostgreSQL");
  return u;
}

std::string random_tag() {
  static std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(rng() % 1'000'000'000);
}

/// A schema of its own with every migration applied; dropped at the end of the test.
struct scratch {
  std::string db = url();
  std::string schema = "test_rm_" + random_tag();

  scratch() {
    auto applied = sp::apply_migrations(db, sp::migration_options{schema});
    BOOST_REQUIRE_MESSAGE(
        applied.has_value(),
        "migrating " + schema + " failed: " + (applied ? std::string() : applied.error().message));
  }
  ~scratch() { (void)sp::run_sql(db, "DROP SCHEMA \"" + schema + "\" CASCADE"); }

  sp::projector_options projector(const std::string& name = "read_models") const {
    sp::projector_options o;
    o.database_url = db;
    o.schema = schema;
    o.name = name;
    o.application_name = "test-projector";
    return o;
  }
  sp::query_options queries() const {
    sp::query_options o;
    o.database_url = db;
    o.schema = schema;
    return o;
  }
  sp::pg_event_store store() const {
    sp::pg_store_options o;
    o.database_url = db;
    o.schema = schema;
    o.application_name = "test-rm-journal";
    return sp::pg_event_store(o);
  }
  /// Runs SQL with this schema first on the search path.
  sp::sql_rows sql(const std::string& statement) const {
    auto rows = sp::run_sql(db, "SET search_path TO \"" + schema + "\"; " + statement);
    BOOST_REQUIRE_MESSAGE(rows.has_value(), "SQL failed: " + statement);
    return *rows;
  }
};

sp::new_event to_new(const dom::encoded_event& e, const std::string& correlation_id) {
  sp::new_event n;
  n.event_id = sp::new_uuid();
  n.event_type = e.type;
  n.schema_version = e.schema_version;
  n.payload = e.payload;
  n.metadata.correlation_id = correlation_id;
  return n;
}

/// Appends domain events stream by stream, tracking versions; returns positions.
struct journal {
  sp::pg_event_store store;
  std::map<std::string, std::int64_t> versions;

  explicit journal(const scratch& s) : store(s.store()) {}

  std::int64_t append(const std::string& type, const std::string& stream,
                      std::vector<sp::new_event> events) {
    sp::append_request r{stream, type, versions[stream], std::move(events), {}, {}};
    auto ok = store.append(r);
    BOOST_REQUIRE_MESSAGE(ok.has_value(),
                          "append failed: " + (ok ? std::string() : ok.error().message));
    versions[stream] = ok->version;
    return ok->last_position;
  }
  /// Appends many requests in one transaction (much faster for bulk set-up).
  std::int64_t append_many(std::vector<sp::append_request> requests) {
    for (auto& r : requests) r.expected_version = versions[r.stream_id];
    auto results = store.append_batch(requests);
    std::int64_t last = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      BOOST_REQUIRE_MESSAGE(
          results[i].has_value(),
          "append failed: " + (results[i] ? std::string() : results[i].error().message));
      versions[requests[i].stream_id] = results[i]->version;
      last = std::max(last, results[i]->last_position);
    }
    return last;
  }
  std::int64_t order(const std::string& id, const dom::order::event& e,
                     const std::string& corr = "") {
    return append("order", "order-" + id, {to_new(dom::encode(e), corr)});
  }
  std::int64_t payment(const std::string& id, const dom::payment::event& e,
                       const std::string& corr = "") {
    return append("payment", "payment-" + id, {to_new(dom::encode(e), corr)});
  }
  std::int64_t product(const std::string& id, const dom::inventory::event& e,
                       const std::string& corr = "") {
    return append("inventory", "inventory-" + id, {to_new(dom::encode(e), corr)});
  }
  std::int64_t saga(const std::string& id, const std::vector<sg::event>& events,
                    const std::string& corr = "") {
    std::vector<sp::new_event> out;
    for (const auto& e : events) out.push_back(to_new(dom::encode(e), corr));
    return append("saga", "saga-" + id, std::move(out));
  }
  std::vector<sp::recorded_event> read(const std::string& stream) {
    auto events = store.read_stream(stream);
    BOOST_REQUIRE(events.has_value());
    return *events;
  }
};

dom::order::line_item item(const std::string& product, std::int64_t quantity, std::int64_t price) {
  return dom::order::line_item{product, "Widget " + product, quantity, price};
}

dom::order::order_created order_created(const std::string& id, const std::string& customer,
                                        dom::timestamp at, const std::string& corr = "corr") {
  dom::order::order_created e;
  e.order_id = id;
  e.customer_id = customer;
  e.items = {item("p1", 2, 1500), item("p2", 1, 700)};
  e.total = 3700;
  e.shipping_address = "1 Main St";
  e.correlation_id = corr;
  e.saga_id = "saga-of-" + id;
  e.at = at;
  e.idempotency_key = "create-" + id;
  return e;
}

dom::inventory::product_registered registered(const std::string& id, std::int64_t stock) {
  return dom::inventory::product_registered{id, "Widget " + id, 1500, stock, t0, "reg-" + id};
}
dom::inventory::inventory_reserved reserved(const std::string& product, const std::string& order,
                                            std::int64_t quantity, dom::timestamp at) {
  return dom::inventory::inventory_reserved{product, order, quantity, at, order + "/reserve"};
}
dom::inventory::inventory_released released(const std::string& product, const std::string& order,
                                            std::int64_t quantity, dom::timestamp at) {
  return dom::inventory::inventory_released{product,  order, quantity,
                                            "cancel", at,    order + "/release"};
}

const std::vector<std::string> step_names = {"reserve_inventory", "process_payment",
                                             "confirm_order"};

sg::saga_started saga_started(const std::string& id, const std::string& corr,
                              const std::string& order, dom::timestamp at) {
  sg::saga_started e;
  e.saga_id = id;
  e.saga_type = "OrderProcessing";
  e.correlation_id = corr;
  e.input.order_id = order;
  e.input.customer_id = "c1";
  e.input.items = {item("p1", 1, 1500)};
  e.input.total = 1500;
  e.steps = step_names;
  e.at = at;
  return e;
}
sg::step_started step_started(int step, sg::phase ph, dom::timestamp at) {
  return sg::step_started{step, ph, 1, 1, {0}, at, at + 5000};
}
sg::step_succeeded step_done(int step, dom::timestamp at) {
  return sg::step_succeeded{step, sg::phase::forward, 1, 0, true, at, std::nullopt};
}

/// Runs batches until one is not full; fails the test on an error.
sp::batch_result drain(sp::read_model_projector& p) {
  sp::batch_result total;
  for (int i = 0; i < 1000; ++i) {
    auto r = p.run_batch();
    BOOST_REQUIRE_MESSAGE(r.has_value(),
                          "run_batch failed: " + (r ? std::string() : r.error().message));
    total.events_read += r->events_read;
    total.events_applied += r->events_applied;
    total.checkpoint = r->checkpoint;
    if (!r->full) return total;
  }
  BOOST_FAIL("the projector never caught up");
  return total;
}

template <class T>
T require(saga::expected<T, sp::store_error> r) {
  BOOST_REQUIRE_MESSAGE(r.has_value(), "query failed: " + (r ? std::string() : r.error().message));
  return std::move(*r);
}

/// The state a stream folds to with the domain's own evolve (independent of the projector).
template <class State, class Decode, class Evolve>
State fold_stream(journal& j, const std::string& stream, Decode decode, Evolve evolve) {
  State s;
  for (const auto& e : j.read(stream)) {
    auto decoded = decode(dom::encoded_event{e.event_type, e.schema_version, e.payload});
    BOOST_REQUIRE(decoded.has_value());
    s = evolve(std::move(s), *decoded);
  }
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(read_models)

BOOST_AUTO_TEST_CASE(every_view_equals_the_domain_fold_and_other_streams_are_skipped) {
  scratch db;
  journal j(db);
  // Inventory: p1 10 → reserve 2 (o1) → restock 4; p2 5 → reserve 3 (o2) → failed → release.
  j.product("p1", registered("p1", 10));
  j.product("p2", registered("p2", 5));
  j.product("p1", reserved("p1", "o1", 2, t0 + 10));
  j.product("p2", reserved("p2", "o2", 3, t0 + 11));
  j.product("p2", dom::inventory::inventory_reservation_failed{
                      "p2", "o3", 9, 2, "insufficient_stock", t0 + 12, "o3/reserve"});
  j.product("p1", dom::inventory::stock_added{"p1", 4, t0 + 13, "restock-1"});
  j.product("p2", released("p2", "o2", 3, t0 + 14));
  // Orders: o1 confirmed, o2 cancelled.
  j.order("o1", order_created("o1", "c1", t0 + 1, "corr-1"), "corr-1");
  j.order("o2", order_created("o2", "c1", t0 + 2, "corr-2"), "corr-2");
  j.order("o1", dom::order::order_confirmed{"o1", t0 + 20, "o1/confirm"}, "corr-1");
  j.order("o2", dom::order::order_cancelled{"o2", "payment declined", t0 + 21, "o2/cancel"},
          "corr-2");
  // Payments: pay-o1 processed; pay-o2 processed, then refunded.
  j.payment("pay-o1",
            dom::payment::payment_processed{"pay-o1", "o1", "c1", 3700, "tx-1", t0 + 15, "k1"},
            "corr-1");
  j.payment("pay-o2",
            dom::payment::payment_processed{"pay-o2", "o2", "c1", 3700, "tx-2", t0 + 16, "k2"},
            "corr-2");
  j.payment(
      "pay-o2",
      dom::payment::payment_refunded{"pay-o2", "o2", 3700, "cancelled", "rtx-2", t0 + 22, "k3"},
      "corr-2");
  // Sagas: s1 completes, s2 compensates, s3 runs, s4 fails while compensating.
  j.saga("s1",
         {saga_started("s1", "corr-1", "o1", t0), step_started(0, sg::phase::forward, t0 + 1),
          step_done(0, t0 + 2), step_started(1, sg::phase::forward, t0 + 3), step_done(1, t0 + 4),
          step_started(2, sg::phase::forward, t0 + 5), step_done(2, t0 + 6),
          sg::saga_completed{t0 + 7}},
         "corr-1");
  // s2 as written since step starts are folded into the event before them (s1, s3 and s4 as
  // journals written before that): both kinds must project the same way.
  auto s2_started = saga_started("s2", "corr-2", "o2", t0 + 100);
  s2_started.next = step_started(0, sg::phase::forward, t0 + 100);
  auto s2_reserved = step_done(0, t0 + 102);
  s2_reserved.next = step_started(1, sg::phase::forward, t0 + 102);
  j.saga("s2",
         {s2_started, s2_reserved,
          sg::step_failed{1, sg::phase::forward, 1, 0, "declined", false, false, 0, t0 + 104},
          sg::step_failed{1, sg::phase::forward, 1, -1, "declined", false, false, 0, t0 + 104},
          sg::compensation_started{"process_payment: declined", t0 + 104,
                                   step_started(0, sg::phase::compensation, t0 + 104)},
          sg::step_compensated{0, sg::phase::compensation, 1, 0, true, t0 + 106,
                               step_started(3, sg::phase::on_compensated, t0 + 106)},
          sg::step_compensated{3, sg::phase::on_compensated, 1, 0, true, t0 + 108, std::nullopt},
          sg::saga_compensated{"process_payment: declined", t0 + 109}},
         "corr-2");
  j.saga("s3", {saga_started("s3", "corr-3", "o3", t0 + 200),
                step_started(0, sg::phase::forward, t0 + 201)});
  j.saga(
      "s4",
      {saga_started("s4", "corr-4", "o4", t0 + 300), step_started(0, sg::phase::forward, t0 + 301),
       step_done(0, t0 + 302), step_started(1, sg::phase::forward, t0 + 303),
       sg::step_failed{1, sg::phase::forward, 1, -1, "declined", false, false, 0, t0 + 304},
       sg::compensation_started{"process_payment: declined", t0 + 304, std::nullopt},
       step_started(0, sg::phase::compensation, t0 + 305),
       sg::step_failed{0, sg::phase::compensation, 1, -1, "stuck", false, false, 0, t0 + 306},
       sg::saga_failed{0, sg::phase::compensation, "compensating reserve_inventory: stuck",
                       t0 + 306}});
  // Streams no view folds: their payloads are never decoded, their positions still count.
  j.append("user", "user-u1", {to_new({"UserRegistered", 1, R"({"whatever":1})"}, "")});
  const auto last = j.append("gizmo", "gizmo-1", {to_new({"GizmoMoved", 1, R"({"x":1})"}, "")});

  sp::read_model_projector projector(db.projector());
  const auto total = drain(projector);
  BOOST_TEST(total.checkpoint == last);
  BOOST_TEST(total.events_read == 43u);
  BOOST_TEST(total.events_applied == 41u);  // all but the user and gizmo events
  const auto stored = projector.checkpoint();
  BOOST_REQUIRE(stored.has_value());
  BOOST_TEST(*stored == last);

  sp::read_model_queries q(db.queries());
  // Inventory: exact counts.
  auto p1 = require(q.product("p1"));
  BOOST_REQUIRE(p1.has_value());
  BOOST_TEST(p1->available == 12);
  BOOST_TEST(p1->reserved == 2);
  BOOST_TEST(p1->version == 3);
  BOOST_TEST(p1->name == "Widget p1");
  BOOST_TEST(p1->updated_at == t0 + 13);
  auto p2 = require(q.product("p2"));
  BOOST_REQUIRE(p2.has_value());
  BOOST_TEST(p2->available == 5);
  BOOST_TEST(p2->reserved == 0);
  BOOST_TEST(p2->version == 4);
  const auto products = require(q.products(10, 0));
  BOOST_REQUIRE(products.size() == 2u);
  BOOST_TEST(products[0].product_id == "p1");

  // Orders, against the domain fold of each stream.
  for (const auto& id : {"o1", "o2"}) {
    const auto expected =
        fold_stream<dom::order::state>(j, std::string("order-") + id, dom::decode_order_event,
                                       [](dom::order::state s, const dom::order::event& e) {
                                         return dom::order::evolve(std::move(s), e);
                                       });
    auto view = require(q.order(id));
    BOOST_REQUIRE(view.has_value());
    BOOST_TEST(view->order_id == expected.order_id);
    BOOST_TEST(view->customer_id == expected.customer_id);
    BOOST_TEST((view->items == expected.items));
    BOOST_TEST(view->total == expected.total);
    BOOST_TEST(view->status == dom::order::to_string(expected.status_));
    BOOST_TEST(view->shipping_address == expected.shipping_address);
    BOOST_TEST(view->correlation_id == expected.correlation_id);
    BOOST_TEST(view->saga_id == expected.saga_id);
    BOOST_TEST(view->failure_reason == expected.failure_reason);
    BOOST_TEST(view->created_at == expected.created_at);
    BOOST_TEST(view->updated_at == expected.updated_at);
    BOOST_TEST(view->version == expected.version);
  }
  BOOST_TEST(require(q.order("o1"))->status == "CONFIRMED");
  BOOST_TEST(require(q.order("o2"))->status == "CANCELLED");
  BOOST_TEST(require(q.order("o2"))->failure_reason == "payment declined");
  BOOST_TEST(!require(q.order("o9")).has_value());

  // Payments.
  auto pay2 = require(q.payment_by_order("o2"));
  BOOST_REQUIRE(pay2.has_value());
  BOOST_TEST(pay2->payment_id == "pay-o2");
  BOOST_TEST(pay2->status == "REFUNDED");
  BOOST_TEST(pay2->transaction_id == "tx-2");
  BOOST_TEST(pay2->refund_transaction_id == "rtx-2");
  BOOST_TEST(pay2->refund_reason == "cancelled");
  BOOST_TEST(pay2->correlation_id == "corr-2");
  BOOST_TEST(pay2->created_at == t0 + 16);
  BOOST_TEST(pay2->updated_at == t0 + 22);
  BOOST_TEST(pay2->version == 2);
  BOOST_TEST(require(q.payment_by_order("o1"))->status == "PROCESSED");

  // Sagas, against the domain fold and by name.
  for (const auto& id : {"s1", "s2", "s3", "s4"}) {
    const auto expected = fold_stream<sg::state>(
        j, std::string("saga-") + id, dom::decode_saga_event,
        [](sg::state s, const sg::event& e) { return sg::evolve(std::move(s), e); });
    auto view = require(q.saga(id));
    BOOST_REQUIRE(view.has_value());
    BOOST_TEST(view->status == sg::to_string(expected.status_));
    BOOST_TEST(view->version == expected.version);
    BOOST_TEST(view->updated_at == expected.updated_at);
    BOOST_TEST(view->started_at == expected.started_at);
    BOOST_TEST(view->failure_reason == expected.failure_reason);
    BOOST_TEST(view->compensation_reason == expected.compensation_reason);
    BOOST_REQUIRE(view->steps.size() == 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      BOOST_TEST(view->steps[i].name == step_names[i]);
      BOOST_TEST(view->steps[i].status == sg::to_string(expected.steps[i].status_));
    }
  }
  auto s1 = *require(q.saga("s1"));
  BOOST_TEST(s1.status == "COMPLETED");
  BOOST_TEST(s1.saga_type == "OrderProcessing");
  BOOST_TEST(s1.order_id == "o1");
  BOOST_TEST(s1.correlation_id == "corr-1");
  BOOST_TEST(s1.current_step == "confirm_order");
  BOOST_TEST(s1.steps[2].status == "SUCCEEDED");
  auto s2 = *require(q.saga("s2"));
  BOOST_TEST(s2.status == "COMPENSATED");
  BOOST_TEST(s2.current_step == "on_compensated");
  BOOST_TEST(s2.steps[0].status == "COMPENSATED");
  BOOST_TEST(s2.steps[1].status == "FAILED");
  BOOST_TEST(s2.steps[2].status == "PENDING");
  BOOST_TEST(s2.compensation_reason == "process_payment: declined");
  BOOST_TEST(s2.version == 8);  // one per journal event: folded starts are not counted
  auto s3 = *require(q.saga_by_correlation("corr-3"));
  BOOST_TEST(s3.saga_id == "s3");
  BOOST_TEST(s3.status == "RUNNING");
  BOOST_TEST(s3.current_step == "reserve_inventory");
  auto s4 = *require(q.saga("s4"));
  BOOST_TEST(s4.status == "FAILED");
  BOOST_TEST(s4.failure_reason == "compensating reserve_inventory: stuck");

  const auto active = require(q.sagas(sp::saga_filter::active, 50, 0));
  BOOST_REQUIRE(active.size() == 1u);
  BOOST_TEST(active[0].saga_id == "s3");
  const auto failed = require(q.sagas(sp::saga_filter::failed, 50, 0));
  BOOST_REQUIRE(failed.size() == 1u);
  BOOST_TEST(failed[0].saga_id == "s4");

  // The journal side: a correlation's events in position order.
  const auto trace = require(q.events_by_correlation("corr-2", 500));
  BOOST_TEST(trace.size() == 2u + 2u + 8u);  // order, payment, saga events of corr-2
  for (std::size_t i = 1; i < trace.size(); ++i) {
    BOOST_TEST(trace[i - 1].position < trace[i].position);
  }
  for (const auto& e : trace) BOOST_TEST(e.metadata.correlation_id == "corr-2");
  BOOST_TEST(require(q.journal_head()) == last);
  const auto checkpoints = require(q.checkpoints({"read_models", "nope"}));
  BOOST_REQUIRE(checkpoints.size() == 1u);
  BOOST_TEST(checkpoints[0].position == last);
}

// Text columns and states travel to the upsert inside one JSON document: quotes, backslashes,
// braces, commas and non-ASCII text must come back exactly.
BOOST_AUTO_TEST_CASE(view_text_round_trips_quotes_backslashes_and_unicode) {
  scratch db;
  journal j(db);
  const std::string odd = "Say \"hi\" \\ back, {a,b} [1] 안녕 ☃ \t tab";
  auto product = registered("p-odd", 3);
  product.name = odd;
  j.product("p-odd", product);
  j.order("o-odd", order_created("o-odd", "c-odd", t0 + 1, "corr-odd"), "corr-odd");
  j.order("o-odd", dom::order::order_cancelled{"o-odd", odd, t0 + 2, "o-odd/cancel"}, "corr-odd");
  j.payment("pay-o-odd",
            dom::payment::payment_processed{"pay-o-odd", "o-odd", "c-odd", 10, "tx-odd", t0 + 3,
                                            "k-odd-1"},
            "corr-odd");
  j.payment(
      "pay-o-odd",
      dom::payment::payment_refunded{"pay-o-odd", "o-odd", 10, odd, "rtx-odd", t0 + 4, "k-odd-2"},
      "corr-odd");
  sp::read_model_projector projector(db.projector());
  drain(projector);
  sp::read_model_queries q(db.queries());
  const auto p = require(q.product("p-odd"));
  BOOST_REQUIRE(p.has_value());
  BOOST_TEST(p->name == odd);
  const auto o = require(q.order("o-odd"));
  BOOST_REQUIRE(o.has_value());
  BOOST_TEST(o->failure_reason == odd);
  const auto pay = require(q.payment_by_order("o-odd"));
  BOOST_REQUIRE(pay.has_value());
  BOOST_TEST(pay->refund_reason == odd);
}

BOOST_AUTO_TEST_CASE(batches_take_a_bounded_number_of_round_trips) {
  scratch db;
  journal j(db);
  // 2,500 events over 1,250 order streams, written in a few big transactions.
  for (int chunk = 0; chunk < 5; ++chunk) {
    std::vector<sp::append_request> created, confirmed;
    for (int i = chunk * 250; i < (chunk + 1) * 250; ++i) {
      const auto id = "bulk-" + std::to_string(i);
      created.push_back({"order-" + id,
                         "order",
                         0,
                         {to_new(dom::encode(dom::order::event{
                                     order_created(id, "cust-" + std::to_string(i % 10), t0 + i)}),
                                 "")},
                         {},
                         {}});
      confirmed.push_back({"order-" + id,
                           "order",
                           0,
                           {to_new(dom::encode(dom::order::event{dom::order::order_confirmed{
                                       id, t0 + 5000 + i, id + "/confirm"}}),
                                   "")},
                           {},
                           {}});
    }
    j.append_many(std::move(created));
    j.append_many(std::move(confirmed));
  }

  sp::read_model_projector projector(db.projector());
  BOOST_REQUIRE(projector.connect().has_value());
  const auto before = projector.round_trips();
  const auto started = std::chrono::steady_clock::now();
  auto first = projector.run_batch();
  BOOST_REQUIRE_MESSAGE(first.has_value(), (first ? std::string() : first.error().message));
  BOOST_TEST(first->events_read == 2000u);
  BOOST_TEST(first->full);
  // BEGIN, lock, read, load, upsert, checkpoint, COMMIT: grouping keeps it independent of size.
  BOOST_TEST(projector.round_trips() - before <= 8u);
  const auto middle = projector.round_trips();
  auto second = projector.run_batch();
  BOOST_REQUIRE(second.has_value());
  BOOST_TEST(second->events_read == 500u);
  BOOST_TEST(!second->full);
  BOOST_TEST(projector.round_trips() - middle <= 8u);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  BOOST_TEST_MESSAGE("projected 2,500 order events in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                     << " ms");

  const auto confirmed =
      db.sql("SELECT count(*) FROM orders_view WHERE status = 'CONFIRMED' AND version = 2");
  BOOST_TEST(confirmed[0][0] == "1250");
}

BOOST_AUTO_TEST_CASE(a_restarted_projector_continues_without_gap_or_double_apply) {
  scratch db;
  journal j(db);
  std::vector<std::int64_t> positions;
  positions.push_back(j.product("hot", registered("hot", 1000)));
  for (int i = 0; i < 300; ++i) {
    positions.push_back(j.product("hot", reserved("hot", "r" + std::to_string(i), 1, t0 + i)));
  }
  {
    auto options = db.projector();
    options.batch_size = 100;
    sp::read_model_projector first(options);
    for (int i = 0; i < 2; ++i) {
      auto r = first.run_batch();
      BOOST_REQUIRE(r.has_value());
      BOOST_TEST(r->events_read == 100u);
      BOOST_TEST(r->full);
    }
    auto mid = require(sp::read_model_queries(db.queries()).product("hot"));
    BOOST_REQUIRE(mid.has_value());
    BOOST_TEST(mid->reserved == 199);  // the registration and 199 reservations
    BOOST_TEST(mid->version == 200);
  }
  // While no projector runs: more reservations and some releases.
  for (int i = 300; i < 400; ++i) {
    positions.push_back(j.product("hot", reserved("hot", "r" + std::to_string(i), 1, t0 + i)));
  }
  for (int i = 0; i < 50; ++i) {
    positions.push_back(
        j.product("hot", released("hot", "r" + std::to_string(i), 1, t0 + 1000 + i)));
  }

  // A batch that fails just before its commit changes neither the views nor the checkpoint:
  // they are written in one transaction.
  {
    auto options = db.projector();
    options.batch_size = 150;
    options.before_commit = [] { throw std::runtime_error("injected failure before commit"); };
    sp::read_model_projector failing(options);
    auto r = failing.run_batch();
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().message.find("injected failure") != std::string::npos);
    BOOST_TEST(db.sql("SELECT position FROM projection_checkpoints")[0][0] ==
               std::to_string(positions[199]));
    BOOST_TEST(db.sql("SELECT reserved, version FROM inventory_view")[0][0] == "199");
  }

  sp::read_model_projector second(db.projector());
  const auto total = drain(second);
  BOOST_TEST(total.checkpoint == positions.back());
  BOOST_TEST(total.events_read == 251u);
  BOOST_TEST(total.events_applied == 251u);
  auto hot = require(sp::read_model_queries(db.queries()).product("hot"));
  BOOST_REQUIRE(hot.has_value());
  BOOST_TEST(hot->reserved == 350);
  BOOST_TEST(hot->available == 1000 - 400 + 50);
  BOOST_TEST(hot->version == 451);

  // Moving the checkpoint back (here: deleting it) replays the journal, but rows remember
  // their stream version: nothing is applied twice.
  db.sql("DELETE FROM projection_checkpoints");
  const auto replay = drain(second);
  BOOST_TEST(replay.checkpoint == positions.back());
  BOOST_TEST(replay.events_read == 451u);
  BOOST_TEST(replay.events_applied == 0u);
  hot = require(sp::read_model_queries(db.queries()).product("hot"));
  BOOST_TEST(hot->reserved == 350);
  BOOST_TEST(hot->available == 650);
}

BOOST_AUTO_TEST_CASE(an_undecodable_event_stops_the_projection_where_it_is) {
  scratch db;
  journal j(db);
  const auto good = j.order("o1", order_created("o1", "c1", t0));
  const auto bad =
      j.append("order", "order-o2",
               {to_new({"OrderCreated", 1, R"({"schema_version":1,"orderId":"o2"})"}, "")});
  j.order("o3", order_created("o3", "c1", t0 + 1));

  sp::read_model_projector projector(db.projector());
  for (int attempt = 0; attempt < 2; ++attempt) {  // retrying does not skip it either
    auto r = projector.run_batch();
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == sp::projection_errc::undecodable));
    BOOST_TEST(r.error().position == bad);
    BOOST_TEST(r.error().message.find("order-o2") != std::string::npos);
    BOOST_TEST(db.sql("SELECT position FROM projection_checkpoints")[0][0] == "0");
    BOOST_TEST(db.sql("SELECT count(*) FROM orders_view")[0][0] == "0");  // rolled back
  }
  // One event at a time: everything before the bad event is applied, nothing after it.
  auto options = db.projector();
  options.batch_size = 1;
  sp::read_model_projector single(options);
  auto first = single.run_batch();
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(first->checkpoint == good);
  auto second = single.run_batch();
  BOOST_REQUIRE(!second.has_value());
  BOOST_TEST(second.error().position == bad);
  BOOST_TEST(db.sql("SELECT order_id FROM orders_view")[0][0] == "o1");
  BOOST_TEST(db.sql("SELECT position FROM projection_checkpoints")[0][0] == std::to_string(good));
}

BOOST_AUTO_TEST_CASE(a_view_row_missing_events_is_an_error_not_a_silent_fold) {
  scratch db;
  journal j(db);
  j.order("o1", order_created("o1", "c1", t0));
  sp::read_model_projector projector(db.projector());
  drain(projector);
  db.sql("DELETE FROM orders_view");  // the view lost the order, the checkpoint did not move
  const auto confirm = j.order("o1", dom::order::order_confirmed{"o1", t0 + 1, "o1/confirm"});
  auto r = projector.run_batch();
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST((r.error().code == sp::projection_errc::internal));
  BOOST_TEST(r.error().position == confirm);
  BOOST_TEST(r.error().message.find("version 2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(projectors_of_one_name_take_turns_and_others_keep_their_own_checkpoint) {
  scratch db;
  journal j(db);
  j.order("o1", order_created("o1", "c1", t0));
  const auto last = j.product("p1", registered("p1", 3));

  // While A holds its checkpoint (inside its batch), B of the same name finds it busy.
  sp::read_model_projector b(db.projector());
  BOOST_REQUIRE(b.connect().has_value());
  std::optional<sp::batch_result> seen_by_b;
  auto options = db.projector();
  options.before_commit = [&] {
    auto r = b.run_batch();
    if (r) seen_by_b = *r;
  };
  sp::read_model_projector a(options);
  auto ra = a.run_batch();
  BOOST_REQUIRE(ra.has_value());
  BOOST_TEST(ra->checkpoint == last);
  BOOST_REQUIRE(seen_by_b.has_value());
  BOOST_TEST(seen_by_b->busy);
  BOOST_TEST(seen_by_b->events_read == 0u);
  auto rb = b.run_batch();  // A committed: B goes on from A's checkpoint
  BOOST_REQUIRE(rb.has_value());
  BOOST_TEST(!rb->busy);
  BOOST_TEST(rb->checkpoint == last);
  BOOST_TEST(rb->events_read == 0u);

  // A projector of another name and only the inventory view: its own checkpoint, one view.
  db.sql("TRUNCATE orders_view, inventory_view");
  auto inventory_only = db.projector("inventory_only");
  inventory_only.models = sp::set_of(sp::read_model::inventory);
  sp::read_model_projector c(inventory_only);
  const auto rc = drain(c);
  BOOST_TEST(rc.checkpoint == last);
  BOOST_TEST(rc.events_read == 2u);
  BOOST_TEST(rc.events_applied == 1u);
  BOOST_TEST(db.sql("SELECT count(*) FROM inventory_view")[0][0] == "1");
  BOOST_TEST(db.sql("SELECT count(*) FROM orders_view")[0][0] == "0");
}

BOOST_AUTO_TEST_CASE(a_commit_to_the_journal_wakes_a_waiting_projector) {
  scratch db;
  journal j(db);
  sp::read_model_projector projector(db.projector());
  BOOST_REQUIRE(projector.connect().has_value());
  drain(projector);
  (void)projector.wait_for_journal(0ms);  // forget anything pending from set-up

  // Committed while nobody waits: the next wait returns at once.
  j.order("o1", order_created("o1", "c1", t0));
  auto started = std::chrono::steady_clock::now();
  auto pending = projector.wait_for_journal(5s);
  BOOST_REQUIRE(pending.has_value());
  BOOST_TEST(*pending);
  BOOST_TEST((std::chrono::steady_clock::now() - started < 1s));
  drain(projector);

  // Committed while it waits: it wakes long before its timeout.
  auto writer = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(200ms);
    return j.order("o2", order_created("o2", "c1", t0 + 1));
  });
  started = std::chrono::steady_clock::now();
  auto woken = projector.wait_for_journal(10s);
  const auto waited = std::chrono::steady_clock::now() - started;
  writer.get();
  BOOST_REQUIRE(woken.has_value());
  BOOST_TEST(*woken);
  BOOST_TEST((waited < 5s));
  BOOST_TEST(drain(projector).events_applied == 1u);

  // A statement-level trigger: one notification per transaction, not per row.
  const auto fired = db.sql(
      "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relname = 'events' AND n.nspname = current_schema() AND NOT t.tgisinternal "
      "AND (t.tgtype & 1) = 0");
  BOOST_TEST(fired[0][0] == "1");
}

BOOST_AUTO_TEST_CASE(queries_validate_input_clamp_limits_and_page_newest_first) {
  scratch db;
  journal j(db);
  std::vector<sp::append_request> orders;
  for (int i = 0; i < 520; ++i) {
    const auto id = "page-" + std::to_string(1000 + i);
    orders.push_back(
        {"order-" + id,
         "order",
         0,
         {to_new(dom::encode(dom::order::event{order_created(id, "pager", t0 + i)}), "")},
         {},
         {}});
  }
  j.append_many(std::move(orders));
  j.order("other", order_created("other", "someone-else", t0));
  sp::read_model_projector projector(db.projector());
  drain(projector);

  sp::read_model_queries q(db.queries());
  const auto all = require(q.orders_by_customer("pager", 100'000, 0));
  BOOST_TEST(all.size() == 500u);  // clamped
  BOOST_TEST(all.front().order_id == "page-1519");
  for (std::size_t i = 1; i < all.size(); ++i) {
    BOOST_TEST(all[i - 1].created_at > all[i].created_at);
  }
  BOOST_TEST(require(q.orders_by_customer("pager", 0, 0)).size() == 1u);
  BOOST_TEST(require(q.orders_by_customer("pager", -5, 0)).size() == 1u);
  const auto tail = require(q.orders_by_customer("pager", 50, 515));
  BOOST_REQUIRE(tail.size() == 5u);
  BOOST_TEST(tail.back().order_id == "page-1000");
  BOOST_TEST(require(q.orders_by_customer("nobody", 10, 0)).empty());

  const auto expect_invalid = [](const auto& r) {
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == sp::store_errc::invalid_request));
  };
  expect_invalid(q.order(""));
  expect_invalid(q.order(std::string(sp::max_query_id_bytes + 1, 'x')));
  expect_invalid(q.order(std::string("a\0b", 3)));
  expect_invalid(q.orders_by_customer("", 10, 0));
  expect_invalid(q.orders_by_customer("pager", 10, -1));
  expect_invalid(q.saga(""));
  expect_invalid(q.saga_by_correlation(std::string(10'000, 'c')));
  expect_invalid(q.events_by_correlation("", 10));
  expect_invalid(q.product(""));
  expect_invalid(q.payment_by_order(""));
  expect_invalid(q.products(10, -1));
  expect_invalid(q.sagas(sp::saga_filter::active, 10, -3));
  // The longest valid id is fine (and simply not found).
  BOOST_TEST(!require(q.order(std::string(sp::max_query_id_bytes, 'x'))).has_value());
  // Invalid UTF-8 reaches the database and comes back as an error value, not an exception.
  expect_invalid(q.order("\xff\xfe"));
  BOOST_TEST(require(q.order("page-1000")).has_value());  // the connection is still usable
}

BOOST_AUTO_TEST_CASE(a_trace_finds_a_correlations_events_in_position_order) {
  // Traces read events.correlation_id (filled by the journal writer), across streams and
  // batches, and nothing of other correlations or of events without one.
  scratch db;
  auto store = db.store();
  const std::string corr = "trace-it's \"odd\" \\ é";
  const auto event = [](const std::string& correlation) {
    sp::new_event e;
    e.event_id = sp::new_uuid();
    e.event_type = "Traced";
    e.payload = R"({"k":1})";
    e.metadata.correlation_id = correlation;
    e.metadata.causation_id = "cause";
    return e;
  };
  std::vector<std::string> expected_ids;
  const auto traced = [&] {
    auto e = event(corr);
    expected_ids.push_back(e.event_id);
    return e;
  };
  // One batch: streams interleaving the correlation with others and with none.
  std::vector<sp::append_request> batch;
  batch.push_back({"tr-a", "thing", 0, {traced(), event("other"), traced()}, {}, {}});
  batch.push_back({"tr-b", "thing", 0, {event(""), traced()}, {}, {}});
  batch.push_back({"tr-c", "thing", 0, {event("other")}, {}, {}});
  for (const auto& r : store.append_batch(batch)) {
    BOOST_REQUIRE_MESSAGE(r.has_value(), "append failed: " + (r ? "" : r.error().message));
  }
  // A later batch, a stream written first above.
  auto later = store.append_batch({{"tr-b", "thing", 2, {traced()}, {}, {}},
                                   {"tr-d", "thing", 0, {event(""), traced()}, {}, {}}});
  for (const auto& r : later) {
    BOOST_REQUIRE_MESSAGE(r.has_value(), "append failed: " + (r ? "" : r.error().message));
  }

  sp::read_model_queries q(db.queries());
  const auto trace = require(q.events_by_correlation(corr, 100));
  BOOST_REQUIRE_EQUAL(trace.size(), expected_ids.size());
  for (std::size_t i = 0; i < trace.size(); ++i) {
    BOOST_TEST(trace[i].event_id == expected_ids[i]);
    BOOST_TEST(trace[i].metadata.correlation_id == corr);
    BOOST_TEST(trace[i].metadata.causation_id == "cause");
    if (i > 0) BOOST_TEST(trace[i - 1].position < trace[i].position);
  }
  BOOST_TEST(require(q.events_by_correlation("other", 100)).size() == 2u);
  const auto limited = require(q.events_by_correlation(corr, 2));
  BOOST_REQUIRE_EQUAL(limited.size(), 2u);
  BOOST_TEST(limited[1].event_id == expected_ids[1]);
  BOOST_TEST(require(q.events_by_correlation("nobody", 100)).empty());
  // Events without one have no correlation id at all (not an empty one).
  BOOST_TEST(db.sql("SELECT count(*) FROM events WHERE correlation_id IS NULL")[0][0] == "2");
}

BOOST_AUTO_TEST_SUITE_END()

// The audits the crash tests rely on must catch what they look for: a journal settled by a real
// node passes them, and each kind of damage (a second charge, a lost refund, a lost event, stock
// drift, a wrong reservation) planted into it afterwards is reported.
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/integration/journal_checks.hpp"
#include "tests/integration/support.hpp"

namespace si = saga::integration;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(audits)

BOOST_AUTO_TEST_CASE(audits_pass_a_settled_journal_and_catch_planted_damage) {
  si::scratch_database db;
  {
    // 60 orders, 10 of them (2 × 1,500,000) declined above 2,000,000 and compensated.
    si::node_process node("node",
                          {"--database-url", db.url(), "--demo-catalog", "--load", "60",
                           "--load-concurrency", "8", "--payment-decline-above", "2000000"},
                          si::log_prefix(db));
    BOOST_REQUIRE_MESSAGE(node.wait_for_output("load placed 60 orders", 60s),
                          "the node did not place its load");
    const auto settled = si::wait_until_settled(db, 60s);
    BOOST_REQUIRE_MESSAGE(settled.settled(), settled.describe());
    BOOST_REQUIRE_EQUAL(settled.orders, 60);
    BOOST_REQUIRE_EQUAL(settled.cancelled, 10);
    BOOST_REQUIRE(si::check_stock(db, 30s).empty());  // waits for inventory_view to catch up
    node.signal(SIGTERM);
    const auto exit = node.wait_exit(30s);
    BOOST_REQUIRE(exit.has_value());
    BOOST_CHECK_MESSAGE(exit->exited && exit->code == 0, exit->describe());
  }
  const auto clean = si::audit_settled(db);
  BOOST_REQUIRE_MESSAGE(clean.empty(), "a settled journal fails the audit:" << si::describe(clean));

  const auto first = [&](const std::string& sql) {
    const auto rows = db.query(sql);
    BOOST_REQUIRE_MESSAGE(!rows.empty() && !rows[0].empty(), "no row for: " + sql);
    return rows[0][0];
  };
  const auto approved_charge = first(
      "SELECT idempotency_key FROM payment_ledger WHERE operation = 'charge' AND approved"
      " ORDER BY seq LIMIT 1");
  const auto declined_charge = first(
      "SELECT idempotency_key FROM payment_ledger WHERE operation = 'charge' AND NOT approved"
      " ORDER BY seq LIMIT 1");
  const auto reservation =
      first("SELECT min(position) FROM events WHERE event_type = 'InventoryReserved'");
  const auto order_created =
      first("SELECT min(position) FROM events WHERE event_type = 'OrderCreated'");
  const auto saga_id =
      first("SELECT payload->>'sagaId' FROM events WHERE position = " + order_created);
  const auto copy_charge = [](const std::string& key) {
    return "INSERT INTO payment_ledger (idempotency_key, operation, payment_id, order_id, amount,"
           " approved) SELECT 'planted', 'charge', payment_id, order_id, amount, true"
           " FROM payment_ledger WHERE idempotency_key = '" +
           key + "'";
  };
  const std::string remove_planted = "DELETE FROM payment_ledger WHERE idempotency_key = 'planted'";
  const auto lose_event = [](const std::string& where) {
    return "CREATE TABLE lost_events AS SELECT * FROM events WHERE " + where +
           " ORDER BY position LIMIT 1;"
           " DELETE FROM events WHERE position IN (SELECT position FROM lost_events)";
  };
  const std::string restore_event =
      "INSERT INTO events OVERRIDING SYSTEM VALUE SELECT * FROM lost_events;"
      " DROP TABLE lost_events";

  struct damage {
    std::string plant;
    std::string expected;  ///< the start of the problem the audit must report
    std::string undo;
  };
  const std::vector<damage> cases = {
      {copy_charge(approved_charge), "orders charged twice", remove_planted},
      {copy_charge(declined_charge), "CANCELLED orders that keep a net charge", remove_planted},
      {"UPDATE payment_ledger SET approved = false WHERE idempotency_key = '" + approved_charge +
           "'",
       "CONFIRMED orders without exactly one net charge",
       "UPDATE payment_ledger SET approved = true WHERE idempotency_key = '" + approved_charge +
           "'"},
      {lose_event("stream_type = 'saga' AND version = 2"), "streams whose versions are not 1..n",
       restore_event},
      {lose_event("event_type = 'OrderCreated'"), "order streams without exactly one OrderCreated",
       restore_event},
      {lose_event("event_type = 'SagaStarted'"), "saga streams without exactly one SagaStarted",
       restore_event},
      {"UPDATE events SET payload = jsonb_set(payload, '{sagaId}', '\"planted\"')"
       " WHERE position = " +
           order_created,
       "orders without a saga stream",
       "UPDATE events SET payload = jsonb_set(payload, '{sagaId}', to_jsonb('" + saga_id +
           "'::text)) WHERE position = " + order_created},
      {"UPDATE inventory_view SET available = available - 1 WHERE product_id = 'product-2'",
       "products whose stock does not add up",
       "UPDATE inventory_view SET available = available + 1 WHERE product_id = 'product-2'"},
      {"UPDATE inventory_view SET reserved = reserved + 1, available = available - 1"
       " WHERE product_id = 'product-3'",
       "products whose reserved stock is not the CONFIRMED orders' quantities",
       "UPDATE inventory_view SET reserved = reserved - 1, available = available + 1"
       " WHERE product_id = 'product-3'"},
      {"UPDATE events SET payload = jsonb_set(payload, '{quantity}',"
       " to_jsonb((payload->>'quantity')::bigint + 1)) WHERE position = " +
           reservation,
       "orders holding the wrong stock",
       "UPDATE events SET payload = jsonb_set(payload, '{quantity}',"
       " to_jsonb((payload->>'quantity')::bigint - 1)) WHERE position = " +
           reservation},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("planted: " << c.plant) {
      (void)db.query(c.plant);
      const auto found = si::audit_settled(db);
      bool reported = false;
      for (const auto& p : found) reported = reported || p.rfind(c.expected, 0) == 0;
      BOOST_CHECK_MESSAGE(
          reported, "expected '" << c.expected << "', the audit found:" << si::describe(found));
      (void)db.query(c.undo);
    }
  }
  const auto restored = si::audit_settled(db);
  BOOST_CHECK_MESSAGE(restored.empty(), "undoing the damage left:" << si::describe(restored));
}

BOOST_AUTO_TEST_SUITE_END()

// Process-level fault tests: a saga-node killed with SIGKILL while hundreds of sagas are in
// flight, or stopped with SIGTERM under load, and a second node started on the same journal
// must finish every saga without charging anyone twice, losing stock or losing an event.
#include <chrono>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/integration/journal_checks.hpp"
#include "tests/integration/support.hpp"

namespace si = saga::integration;
using namespace std::chrono_literals;

namespace {

/// The simulated gateway of every node in these tests: 5 ms per batch so that sagas overlap,
/// 5% transient failures (retried by the saga), and declines above 2,000,000 — of the demo
/// load's six order shapes only 2 × MacBook Pro (3,000,000) is above, so 1/6 of the orders
/// are declined and compensated. Node B needs the same settings as node A: the gateway
/// configuration is the node's, not the journal's.
const std::vector<std::string> gateway_flags = {"--payment-latency-ms",    "5",
                                                "--payment-failure-rate",  "0.05",
                                                "--payment-decline-above", "2000000"};

std::vector<std::string> node_args(const si::scratch_database& db, const std::string& node_id,
                                   std::vector<std::string> extra) {
  std::vector<std::string> args{"--database-url", db.url(), "--node-id", node_id};
  args.insert(args.end(), gateway_flags.begin(), gateway_flags.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// Polls until `until` holds for the journal's progress, the node exits or `timeout` passes.
template <class Predicate>
si::journal_progress poll_progress(const si::scratch_database& db, si::node_process& node,
                                   std::chrono::milliseconds timeout, Predicate until) {
  const auto deadline = si::clock_type::now() + timeout;
  for (;;) {
    auto p = si::read_progress(db);
    if (until(p) || !node.running() || si::clock_type::now() >= deadline) return p;
    std::this_thread::sleep_for(20ms);
  }
}

/// Starts a node without load on `db` whose journal is at `before`, checks that its start-up
/// recovery took up exactly the unfinished work, waits until every saga has settled (bounded),
/// audits the journal and the ledger, then stops it with SIGTERM and expects exit status 0.
void recover_and_audit(const si::scratch_database& db, const std::string& prefix,
                       const si::journal_progress& before) {
  const auto started = si::clock_type::now();
  si::node_process node_b("node-b", node_args(db, "node-b", {}), prefix);
  BOOST_REQUIRE_MESSAGE(node_b.wait_for_output("saga-node: ready", 60s),
                        "node B did not become ready");
  const auto ready_ms = si::ms_since(started);
  const auto settled = si::wait_until_settled(db, 120s);
  const auto settled_ms = si::ms_since(started);
  std::cout << "integration: recovery " << (settled.settled() ? "settled" : "NOT settled") << " "
            << settled_ms << " ms after node B started (ready after " << ready_ms
            << " ms): " << settled.describe() << std::endl;

  const std::regex recovery_line(
      "saga-node: recovery resumed (\\d+) of (\\d+) unfinished sagas, started (\\d+) of (\\d+) "
      "sagas of orders without one");
  const auto out = node_b.out();
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_search(out, m, recovery_line),
                        "node B printed no recovery summary");
  std::cout << "integration: node B: " << m.str(0) << std::endl;
  BOOST_CHECK_EQUAL(std::stoll(m[2]), before.unfinished_sagas());
  BOOST_CHECK_EQUAL(std::stoll(m[1]), before.unfinished_sagas());
  BOOST_CHECK_EQUAL(std::stoll(m[4]), before.orders_without_saga);
  BOOST_CHECK_EQUAL(std::stoll(m[3]), before.orders_without_saga);
  BOOST_CHECK_MESSAGE(node_b.err().find("saga-node: recovery: ") == std::string::npos,
                      "node B reported recovery errors");

  BOOST_REQUIRE_MESSAGE(settled.settled(), "not settled within 120 s: " << settled.describe());
  BOOST_CHECK_EQUAL(settled.orders, before.orders);
  BOOST_CHECK_EQUAL(settled.sagas, settled.orders);
  // The demo load is declined only above the limit, so every order ends confirmed or
  // compensated; a failed saga (compensation gave up) would leave its order open.
  BOOST_CHECK_EQUAL(settled.failed, 0);
  BOOST_CHECK_EQUAL(settled.completed, settled.confirmed);
  BOOST_CHECK_EQUAL(settled.compensated, settled.cancelled);
  BOOST_CHECK_GT(settled.cancelled, 0);  // declines did happen, so compensation was exercised

  const auto found = si::audit_settled(db);
  BOOST_CHECK_MESSAGE(found.empty(), "broken invariants:" << si::describe(found));

  node_b.signal(SIGTERM);
  const auto exit = node_b.wait_exit(30s);
  BOOST_REQUIRE_MESSAGE(exit.has_value(), "node B did not exit within 30 s of SIGTERM");
  BOOST_CHECK_MESSAGE(exit->exited && exit->code == 0, "node B: " << exit->describe());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(crash_recovery)

BOOST_AUTO_TEST_CASE(sigkill_with_hundreds_of_sagas_in_flight_then_recovery_finishes_all) {
  si::scratch_database db;
  const auto prefix = si::log_prefix(db);
  si::journal_progress at_kill;
  {
    si::node_process node_a(
        "node-a",
        node_args(db, "node-a", {"--demo-catalog", "--load", "3000", "--load-concurrency", "128"}),
        prefix);
    BOOST_REQUIRE_MESSAGE(node_a.wait_for_output("journal ready", 60s),
                          "node A did not migrate the journal");
    // Kill with 500 sagas in flight; should the sagas ever keep up with the load (a much
    // faster machine), kill near the end of the load anyway, and the check below tells.
    const auto loaded = poll_progress(db, node_a, 120s, [](const si::journal_progress& p) {
      return (p.sagas >= 500 && p.unfinished_sagas() >= 500) || p.orders >= 2800;
    });
    BOOST_REQUIRE_MESSAGE(node_a.running(),
                          "node A ended before the kill: " << node_a.wait_exit(0ms)->describe());
    node_a.signal(SIGKILL);
    const auto exit = node_a.wait_exit(10s);
    BOOST_REQUIRE(exit.has_value());
    BOOST_CHECK(!exit->exited && exit->signal == SIGKILL);
    // What was committed when the node died (the poll above may be a few ms old), once the
    // server has ended the killed node's sessions.
    BOOST_REQUIRE_MESSAGE(db.wait_for_no_other_sessions(30s),
                          "the killed node's sessions did not end within 30 s");
    at_kill = si::read_progress(db);
    std::cout << "integration: SIGKILL with " << at_kill.unfinished_sagas() << " unfinished sagas ("
              << at_kill.open_orders() << " open orders) at kill: " << at_kill.describe()
              << " (last poll: " << loaded.describe() << ")" << std::endl;
  }
  BOOST_REQUIRE_GE(at_kill.sagas, 500);
  BOOST_REQUIRE_GE(at_kill.unfinished_sagas(), 300);
  BOOST_REQUIRE_LT(at_kill.orders, 3000);  // killed mid-load, not after it

  recover_and_audit(db, prefix, at_kill);
}

BOOST_AUTO_TEST_CASE(sigterm_under_load_exits_zero_and_restart_finishes_all) {
  si::scratch_database db;
  const auto prefix = si::log_prefix(db);
  si::journal_progress at_stop;
  {
    si::node_process node_a(
        "node-a",
        node_args(db, "node-a", {"--demo-catalog", "--load", "100000", "--load-concurrency", "64"}),
        prefix);
    BOOST_REQUIRE_MESSAGE(node_a.wait_for_output("saga-node: ready", 60s),
                          "node A did not become ready");
    const auto loaded = poll_progress(db, node_a, 120s, [](const si::journal_progress& p) {
      return p.sagas >= 300 && p.unfinished_sagas() >= 50;
    });
    BOOST_REQUIRE_MESSAGE(node_a.running(), "node A ended before SIGTERM");
    BOOST_TEST_MESSAGE("SIGTERM at " << loaded.describe());
    const auto signalled = si::clock_type::now();
    node_a.signal(SIGTERM);
    const auto exit = node_a.wait_exit(30s);
    const auto drain_ms = si::ms_since(signalled);
    BOOST_REQUIRE_MESSAGE(exit.has_value(), "node A did not exit within 30 s of SIGTERM");
    BOOST_CHECK_MESSAGE(exit->exited && exit->code == 0, "node A: " << exit->describe());
    const auto out = node_a.out();
    BOOST_CHECK(out.find("SIGTERM received, draining") != std::string::npos);
    BOOST_CHECK(out.find("saga-node: stopped") != std::string::npos);
    // The load stopped early: a SIGTERM that waited for 100,000 orders would have timed out.
    BOOST_CHECK(out.find("load placed 100000 orders") == std::string::npos);
    BOOST_CHECK_MESSAGE(db.wait_for_no_other_sessions(0ms),
                        "node A exited 0 but its sessions are still open");
    at_stop = si::read_progress(db);
    std::cout << "integration: SIGTERM drained in " << drain_ms << " ms; at exit "
              << at_stop.describe() << std::endl;
  }
  BOOST_REQUIRE_GE(at_stop.orders, 300);
  recover_and_audit(db, prefix, at_stop);
}

BOOST_AUTO_TEST_SUITE_END()

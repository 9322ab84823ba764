// The payment ledger contract (run on the in-memory and the PostgreSQL ledger, each test on a
// fresh ledger: a fresh schema for PostgreSQL) and the simulated gateway over each of them:
// idempotency, declines, refunds, simulated failures, invalid input, double-charge detection.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include "persistence/payment_gateway.hpp"
#include "persistence/pg_admin.hpp"
#include "tests/persistence/support.hpp"

namespace sp = saga::persistence;
using namespace saga::persistence::test;

namespace {

/// A fresh in-memory ledger per test.
struct memory_ledger_backend {
  static constexpr const char* name = "memory";
  std::shared_ptr<sp::payment_ledger> shared = sp::make_memory_ledger();
  std::shared_ptr<sp::payment_ledger> open() { return shared; }
};

/// DATABASE_URL. These tests migrate only schemas of their own, never the default one.
std::string ledger_database_url() {
  const char* url = std::getenv("DATABASE_URL");
  BOOST_REQUIRE_MESSAGE(url != nullptr && *url != '\0',
                        "DATABASE_URL is not set: the payment ledger tests need a PostgreSQL "
                        "(script/test starts a private cluster)");
  return url;
}

/// A throwaway schema, migrated, dropped at the end of the test.
struct ledger_schema {
  std::string url = ledger_database_url();
  std::string name;
  ledger_schema() {
    static std::atomic<int> counter{0};
    name = "test_ledger_" + run_tag() + "_" + std::to_string(counter.fetch_add(1));
    const auto applied = sp::apply_migrations(url, sp::migration_options{name});
    BOOST_REQUIRE_MESSAGE(
        applied.has_value(),
        "migrating " + name + " failed: " + (applied ? std::string() : applied.error().message));
  }
  ~ledger_schema() { (void)sp::run_sql(url, "DROP SCHEMA IF EXISTS " + name + " CASCADE"); }
  ledger_schema(const ledger_schema&) = delete;
  ledger_schema& operator=(const ledger_schema&) = delete;
};

/// A fresh PostgreSQL ledger per test; open() gives another connection to the same table.
struct pg_ledger_backend {
  static constexpr const char* name = "postgres";
  ledger_schema schema;
  std::shared_ptr<sp::payment_ledger> shared = open();
  std::shared_ptr<sp::payment_ledger> open() { return sp::make_pg_ledger(schema.url, schema.name); }
};

using backends = boost::mpl::list<memory_ledger_backend, pg_ledger_backend>;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string unique_key(const std::string& what) { return unique_stream("key-" + what); }

sp::gateway_request charge(const std::string& key, const std::string& order, std::int64_t amount) {
  sp::gateway_request r;
  r.operation = sp::gateway_operation::charge;
  r.idempotency_key = key;
  r.payment_id = "pay-" + order;
  r.order_id = order;
  r.customer_id = "cust-1";
  r.amount = amount;
  return r;
}

sp::gateway_request refund(const std::string& key, const std::string& order, std::int64_t amount,
                           const std::string& reason) {
  auto r = charge(key, order, amount);
  r.operation = sp::gateway_operation::refund;
  r.reason = reason;
  return r;
}

sp::ledger_entry entry(const std::string& key, const std::string& order, bool approved,
                       sp::gateway_operation op = sp::gateway_operation::charge) {
  sp::ledger_entry e;
  e.operation = op;
  e.idempotency_key = key;
  e.payment_id = "pay-" + order;
  e.order_id = order;
  e.amount = 1200;
  e.approved = approved;
  e.transaction_id = approved ? "tx-" + key : "";
  e.reason = approved ? "" : "declined for a test";
  return e;
}

sp::gateway_options options(std::int64_t decline_above = 100'000, double failure_rate = 0.0) {
  sp::gateway_options o;
  o.decline_above = decline_above;
  o.failure_rate = failure_rate;
  o.seed = 42;
  return o;
}

std::vector<sp::ledger_entry> entries_of(sp::payment_ledger& ledger, const std::string& order) {
  auto entries = ledger.entries_of_order(order);
  BOOST_REQUIRE_MESSAGE(entries.has_value(),
                        "entries_of_order failed: " + (entries ? std::string() : entries.error()));
  return *entries;
}

std::vector<std::string> charged_twice(sp::payment_ledger& ledger) {
  auto orders = ledger.orders_charged_twice();
  BOOST_REQUIRE_MESSAGE(orders.has_value(), "orders_charged_twice failed: " +
                                                (orders ? std::string() : orders.error()));
  return *orders;
}

void require_ok(const sp::gateway_result& r) {
  BOOST_REQUIRE_MESSAGE(r.ok, "gateway call failed: " + r.error);
}

sp::gateway_request void_of(const std::string& key, const std::string& charge_key,
                            const std::string& order, std::int64_t amount) {
  auto r = charge(key, order, amount);
  r.operation = sp::gateway_operation::void_charge;
  r.charge_key = charge_key;
  r.reason = "order cancelled";
  return r;
}

sp::void_request void_request(const std::string& charge_key, const std::string& refund_key,
                              const std::string& order) {
  sp::void_request v;
  v.charge_key = charge_key;
  v.refund_key = refund_key;
  v.payment_id = "pay-" + order;
  v.order_id = order;
  v.amount = 1200;
  v.reason = "order cancelled";
  v.refund_transaction_id = "rf-" + refund_key;
  return v;
}

std::vector<sp::void_outcome> voided(sp::payment_ledger& ledger,
                                     const std::vector<sp::void_request>& requests) {
  auto out = ledger.void_charges(requests);
  BOOST_REQUIRE_MESSAGE(out.has_value(),
                        "void_charges failed: " + (out ? std::string() : out.error()));
  BOOST_REQUIRE_EQUAL(out->size(), requests.size());
  return *out;
}

/// Approved charges minus approved refunds of an order.
int net_charges(sp::payment_ledger& ledger, const std::string& order) {
  int net = 0;
  for (const auto& e : entries_of(ledger, order)) {
    if (e.approved) net += e.operation == sp::gateway_operation::charge ? 1 : -1;
  }
  return net;
}

/// A ledger whose record() and void_charges() fail the next `failures` calls, then forward.
class failing_ledger final : public sp::payment_ledger {
 public:
  failing_ledger(std::shared_ptr<sp::payment_ledger> target, int failures)
      : target_(std::move(target)), failures_(failures) {}
  saga::expected<std::vector<sp::ledger_entry>, std::string> record(
      const std::vector<sp::ledger_entry>& entries) override {
    if (failures_ > 0) {
      --failures_;
      return saga::unexpected{std::string("connection refused (injected)")};
    }
    return target_->record(entries);
  }
  saga::expected<std::vector<sp::void_outcome>, std::string> void_charges(
      const std::vector<sp::void_request>& requests) override {
    if (failures_ > 0) {
      --failures_;
      return saga::unexpected{std::string("connection refused (injected)")};
    }
    return target_->void_charges(requests);
  }
  saga::expected<std::vector<sp::ledger_entry>, std::string> entries_of_order(
      const std::string& order) override {
    return target_->entries_of_order(order);
  }
  saga::expected<std::vector<std::string>, std::string> orders_charged_twice() override {
    return target_->orders_charged_twice();
  }

 private:
  std::shared_ptr<sp::payment_ledger> target_;
  int failures_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(payment_ledger_contract)

BOOST_AUTO_TEST_CASE_TEMPLATE(record_stores_each_field_and_the_first_writer_wins, B, backends) {
  B backend;
  auto ledger = backend.open();
  const auto order = unique_key("order");
  // Keys that would break a hand-built array literal or SQL if quoting were wrong.
  const std::vector<std::string> keys = {"plain-" + order, "quote\"and\\back,{brace}-" + order,
                                         "NULL", " spaced " + order, "héllo-✓-" + order};
  std::vector<sp::ledger_entry> batch;
  for (const auto& k : keys) batch.push_back(entry(k, order, true));
  batch[1].operation = sp::gateway_operation::refund;
  batch[2].approved = false;
  batch[2].transaction_id.clear();
  batch[2].reason = "amount exceeds limit";
  batch[3].recorded_at_ms = 12345;  // ignored: the ledger stamps the time
  const auto before = now_ms();
  const auto stored = ledger->record(batch);
  BOOST_REQUIRE_MESSAGE(stored.has_value(), (stored ? std::string() : stored.error()));
  BOOST_REQUIRE_EQUAL(stored->size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& s = (*stored)[i];
    BOOST_TEST(s.idempotency_key == batch[i].idempotency_key);
    BOOST_TEST((s.operation == batch[i].operation));
    BOOST_TEST(s.payment_id == batch[i].payment_id);
    BOOST_TEST(s.order_id == order);
    BOOST_TEST(s.amount == 1200);
    BOOST_TEST(s.approved == batch[i].approved);
    BOOST_TEST(s.transaction_id == batch[i].transaction_id);
    BOOST_TEST(s.reason == batch[i].reason);
    BOOST_TEST(!s.replayed);
    BOOST_TEST(s.recorded_at_ms >= before - 1000);
    BOOST_TEST(s.recorded_at_ms <= now_ms() + 1000);
  }
  // The same keys again, with other contents: the stored entries come back, marked replayed.
  auto again = batch;
  for (auto& e : again) {
    e.amount = 999;
    e.transaction_id = "tx-other";
  }
  const auto replay = ledger->record(again);
  BOOST_REQUIRE(replay.has_value());
  BOOST_REQUIRE_EQUAL(replay->size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    BOOST_TEST((*replay)[i].replayed);
    BOOST_TEST((*replay)[i].amount == 1200);
    BOOST_TEST((*replay)[i].transaction_id == batch[i].transaction_id);
    BOOST_TEST((*replay)[i].recorded_at_ms == (*stored)[i].recorded_at_ms);
  }
  // Entries of one call come back in key order (byte order).
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  const auto rows = entries_of(*ledger, order);
  BOOST_REQUIRE_EQUAL(rows.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) BOOST_TEST(rows[i].idempotency_key == sorted[i]);
  // Later calls come after earlier ones whatever their keys.
  BOOST_REQUIRE(ledger->record({entry("\x01-first-by-bytes-" + order, order, true)}).has_value());
  BOOST_TEST(entries_of(*ledger, order).back().idempotency_key == "\x01-first-by-bytes-" + order);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_key_twice_in_one_batch_is_stored_once, B, backends) {
  B backend;
  auto ledger = backend.open();
  const auto order = unique_key("order");
  auto first = entry("dup-" + order, order, true);
  auto second = first;
  second.transaction_id = "tx-second";
  const auto other = entry("other-" + order, order, false);
  const auto stored = ledger->record({first, other, second});
  BOOST_REQUIRE(stored.has_value());
  BOOST_REQUIRE_EQUAL(stored->size(), 3u);
  BOOST_TEST(!(*stored)[0].replayed);
  BOOST_TEST(!(*stored)[1].replayed);
  BOOST_TEST((*stored)[2].replayed);
  BOOST_TEST((*stored)[2].transaction_id == first.transaction_id);
  BOOST_TEST(entries_of(*ledger, order).size() == 2u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_invalid_entry_fails_the_call_and_records_nothing, B, backends) {
  B backend;
  auto ledger = backend.open();
  const auto order = unique_key("order");
  const auto good = entry("good-" + order, order, true);
  auto check = [&](sp::ledger_entry bad, const std::string& expected) {
    const auto r = ledger->record({good, bad});
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "an invalid entry was accepted: " + expected);
    BOOST_TEST_MESSAGE(r.error());
    BOOST_TEST(r.error().find("entry 1") != std::string::npos);
    BOOST_TEST(r.error().find(expected) != std::string::npos, r.error());
  };
  auto bad = good;
  bad.idempotency_key.clear();
  check(bad, "idempotency_key must not be empty");
  bad = good;
  bad.idempotency_key = std::string(1025, 'k');
  check(bad, "idempotency_key is 1025 bytes");
  bad = good;
  bad.amount = -1;
  check(bad, "amount must not be negative");
  bad = good;
  bad.order_id = "order-\xff";
  check(bad, "order_id must be UTF-8");
  bad = good;
  bad.reason = std::string("nul\0inside", 10);
  check(bad, "reason must be UTF-8");
  bad = good;
  bad.operation = static_cast<sp::gateway_operation>(7);
  check(bad, "operation must be charge or refund");
  BOOST_TEST(entries_of(*ledger, order).empty());
  // A key of exactly 1 KiB is fine.
  auto longest = good;
  longest.idempotency_key = std::string(1024 - order.size(), 'k') + order;
  BOOST_TEST(ledger->record({longest}).has_value());
  const auto empty = ledger->record({});
  BOOST_REQUIRE(empty.has_value());
  BOOST_TEST(empty->empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(orders_charged_twice_counts_approved_charges_net_of_refunds, B,
                              backends) {
  B backend;
  auto ledger = backend.open();
  using op = sp::gateway_operation;
  const auto once = unique_key("once");
  const auto twice = unique_key("twice");
  const auto refunded = unique_key("refunded");
  const auto declined = unique_key("declined");
  // Clean orders: one charge; a declined charge and an approved one; charge, refund, charge.
  BOOST_REQUIRE(ledger->record({entry(once + "-a", once, true)}).has_value());
  BOOST_REQUIRE(ledger
                    ->record({entry(declined + "-a", declined, false),
                              entry(declined + "-b", declined, false),
                              entry(declined + "-c", declined, true)})
                    .has_value());
  BOOST_REQUIRE(ledger
                    ->record({entry(refunded + "-a", refunded, true),
                              entry(refunded + "-r", refunded, true, op::refund),
                              entry(refunded + "-b", refunded, true)})
                    .has_value());
  BOOST_TEST(charged_twice(*ledger).empty());
  // The planted double charge: two approved charges under different keys, same order.
  BOOST_REQUIRE(ledger->record({entry(twice + "-a", twice, true)}).has_value());
  BOOST_TEST(charged_twice(*ledger).empty());
  BOOST_REQUIRE(ledger->record({entry(twice + "-b", twice, true)}).has_value());
  BOOST_TEST(charged_twice(*ledger) == std::vector<std::string>{twice});
  // A third charge of the refunded order makes it net two.
  BOOST_REQUIRE(ledger->record({entry(refunded + "-c", refunded, true)}).has_value());
  auto expected = std::vector<std::string>{twice, refunded};
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(charged_twice(*ledger) == expected);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_writers_of_the_same_keys_agree, B, backends) {
  B backend;
  const auto order = unique_key("race");
  constexpr int rounds = 8;
  constexpr int per_round = 40;
  constexpr int writers = 3;
  std::vector<std::map<std::string, std::string>> seen(writers);  // key → transaction id
  std::vector<std::string> errors(writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto ledger = backend.open();  // PostgreSQL: a connection of its own
      std::mt19937 shuffle(static_cast<unsigned>(w) + 1);
      for (int round = 0; round < rounds; ++round) {
        // Every writer sends the same keys at about the same time, each in its own order: the
        // ledger must neither deadlock nor lose the rows another writer won.
        std::vector<sp::ledger_entry> batch;
        for (int i = 0; i < per_round; ++i) {
          const int k = round * per_round + i;
          auto e = entry(order + "-" + std::to_string(k), order, true);
          e.transaction_id = "tx-" + std::to_string(w) + "-" + std::to_string(k);
          batch.push_back(e);
        }
        std::shuffle(batch.begin(), batch.end(), shuffle);
        const auto stored = ledger->record(batch);
        if (!stored) {
          errors[static_cast<std::size_t>(w)] = stored.error();
          return;
        }
        for (const auto& s : *stored) {
          seen[static_cast<std::size_t>(w)][s.idempotency_key] = s.transaction_id;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) BOOST_REQUIRE_MESSAGE(e.empty(), e);
  for (int w = 1; w < writers; ++w) BOOST_TEST((seen[0] == seen[static_cast<std::size_t>(w)]));
  const auto rows = entries_of(*backend.open(), order);
  BOOST_TEST(rows.size() == static_cast<std::size_t>(rounds * per_round));
  for (const auto& row : rows) BOOST_TEST(seen[0][row.idempotency_key] == row.transaction_id);
}

// ---- voids ----

BOOST_AUTO_TEST_CASE_TEMPLATE(a_void_before_the_charge_bars_it_with_a_tombstone, B, backends) {
  B backend;
  auto& ledger = *backend.shared;
  const auto order = unique_key("void-first");
  const auto charge_key = order + "-charge";
  const auto first = voided(ledger, {void_request(charge_key, order + "-refund", order)});
  BOOST_TEST(first[0].error.empty());
  BOOST_TEST(!first[0].refunded);
  BOOST_TEST(!first[0].replayed);
  BOOST_TEST(first[0].charge.idempotency_key == charge_key);
  BOOST_TEST(first[0].charge.reason == sp::voided_before_charge);
  BOOST_TEST(!first[0].charge.approved);

  // The charge arrives late: it gets the tombstone, never an approval.
  auto late = ledger.record({entry(charge_key, order, true)});
  BOOST_REQUIRE(late.has_value());
  BOOST_TEST(late->front().replayed);
  BOOST_TEST(!late->front().approved);
  BOOST_TEST(late->front().reason == sp::voided_before_charge);
  BOOST_TEST((late->front().operation == sp::gateway_operation::charge));

  // The void again: the same answer, nothing written.
  const auto again = voided(ledger, {void_request(charge_key, order + "-refund", order)});
  BOOST_TEST(!again[0].refunded);
  BOOST_TEST(again[0].replayed);
  const auto rows = entries_of(ledger, order);
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].amount == 1200);
  BOOST_TEST(rows[0].payment_id == "pay-" + order);
  BOOST_TEST(net_charges(ledger, order) == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_void_after_an_approved_charge_refunds_it_once, B, backends) {
  B backend;
  auto& ledger = *backend.shared;
  const auto order = unique_key("charge-first");
  const auto charge_key = order + "-charge";
  auto charged = entry(charge_key, order, true);
  charged.amount = 4321;
  BOOST_REQUIRE(ledger.record({charged}).has_value());

  const auto first = voided(ledger, {void_request(charge_key, order + "-refund", order)});
  BOOST_TEST(first[0].error.empty());
  BOOST_REQUIRE(first[0].refunded);
  BOOST_TEST(!first[0].replayed);
  BOOST_TEST(first[0].charge.transaction_id == charged.transaction_id);
  BOOST_TEST((first[0].refund.operation == sp::gateway_operation::refund));
  BOOST_TEST(first[0].refund.idempotency_key == order + "-refund");
  BOOST_TEST(first[0].refund.amount == 4321);  // the charge's amount, not the request's
  BOOST_TEST(first[0].refund.approved);
  BOOST_TEST(first[0].refund.transaction_id == "rf-" + order + "-refund");
  BOOST_TEST(first[0].refund.reason == "order cancelled");
  BOOST_TEST(net_charges(ledger, order) == 0);

  // The same void again replays its refund.
  const auto again = voided(ledger, {void_request(charge_key, order + "-refund", order)});
  BOOST_REQUIRE(again[0].refunded);
  BOOST_TEST(again[0].replayed);
  BOOST_TEST(again[0].refund.transaction_id == first[0].refund.transaction_id);
  // A void under another refund key finds the charge already refunded: no second refund.
  const auto other = voided(ledger, {void_request(charge_key, order + "-refund-2", order)});
  BOOST_REQUIRE(other[0].refunded);
  BOOST_TEST(other[0].replayed);
  BOOST_TEST(other[0].refund.idempotency_key == order + "-refund");
  BOOST_TEST(entries_of(ledger, order).size() == 2u);
  BOOST_TEST(net_charges(ledger, order) == 0);
  BOOST_TEST(charged_twice(ledger).empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_void_of_a_declined_charge_finds_nothing_charged, B, backends) {
  B backend;
  auto& ledger = *backend.shared;
  const auto order = unique_key("declined");
  BOOST_REQUIRE(ledger.record({entry(order + "-charge", order, false)}).has_value());
  const auto out = voided(ledger, {void_request(order + "-charge", order + "-refund", order)});
  BOOST_TEST(!out[0].refunded);
  BOOST_TEST(out[0].replayed);
  BOOST_TEST(out[0].charge.reason == "declined for a test");
  BOOST_TEST(entries_of(ledger, order).size() == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(voids_of_one_batch_run_in_order, B, backends) {
  B backend;
  auto& ledger = *backend.shared;
  const auto order = unique_key("batch");
  BOOST_REQUIRE(ledger.record({entry(order + "-paid", order, true)}).has_value());
  const auto out = voided(ledger, {void_request(order + "-unpaid", order + "-r1", order),
                                   void_request(order + "-paid", order + "-r2", order),
                                   void_request(order + "-unpaid", order + "-r3", order),
                                   void_request(order + "-paid", order + "-r2", order)});
  BOOST_TEST(!out[0].refunded);
  BOOST_TEST(!out[0].replayed);  // the tombstone
  BOOST_TEST(out[1].refunded);
  BOOST_TEST(!out[1].replayed);
  BOOST_TEST(!out[2].refunded);
  BOOST_TEST(out[2].replayed);  // saw the tombstone of the first
  BOOST_TEST(out[3].refunded);
  BOOST_TEST(out[3].replayed);
  BOOST_TEST(out[3].refund.transaction_id == out[1].refund.transaction_id);
  BOOST_TEST(entries_of(ledger, order).size() == 3u);
  BOOST_TEST(net_charges(ledger, order) == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(misused_keys_and_invalid_voids_are_clear_errors, B, backends) {
  B backend;
  auto& ledger = *backend.shared;
  const auto order = unique_key("misuse");
  BOOST_REQUIRE(
      ledger
          .record({entry(order + "-a-refund", order, true, sp::gateway_operation::refund),
                   entry(order + "-charge", order, true), entry(order + "-other", order, true)})
          .has_value());
  // The charge key holds a refund; the refund key holds a charge. Per request, nothing written.
  const auto out = voided(ledger, {void_request(order + "-a-refund", order + "-r", order),
                                   void_request(order + "-charge", order + "-other", order)});
  BOOST_TEST(out[0].error.find("not a charge") != std::string::npos);
  BOOST_TEST(out[1].error.find("not an approved refund") != std::string::npos);
  BOOST_TEST(entries_of(ledger, order).size() == 3u);

  // Invalid input fails the whole call before anything is written.
  auto empty_key = void_request("", order + "-r", order);
  auto same_keys = void_request(order + "-x", order + "-x", order);
  auto no_order = void_request(order + "-y", order + "-r", order);
  no_order.order_id.clear();
  auto no_tx = void_request(order + "-z", order + "-r", order);
  no_tx.refund_transaction_id.clear();
  for (const auto& bad : {empty_key, same_keys, no_order, no_tx}) {
    const auto refused =
        ledger.void_charges({void_request(order + "-fine", order + "-r9", order), bad});
    BOOST_REQUIRE(!refused.has_value());
    BOOST_TEST(refused.error().find("void 1 is invalid") != std::string::npos, refused.error());
  }
  BOOST_TEST(entries_of(ledger, order).size() == 3u);
  BOOST_TEST(voided(ledger, {}).empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(charges_and_voids_racing_on_the_same_keys_net_to_zero, B, backends) {
  B backend;
  const auto order = unique_key("void-race");
  constexpr int keys = 120;
  std::map<std::string, sp::ledger_entry> charged;  // what the charging side was answered
  std::map<std::string, sp::void_outcome> voids;    // what the voiding side was answered
  std::string charge_error, void_error;
  // Both sides walk the same keys in lockstep (neither more than one call ahead); the voider
  // starts at the other end, so the first half is charged first, the second half voided first,
  // and the keys where they meet truly race.
  std::atomic<int> charger_done{0}, voider_done{0};
  const auto step = [](std::atomic<int>& mine, const std::atomic<int>& theirs, int n) {
    if (n > 0) mine.store(n);
    while (theirs.load() + 1 < n) std::this_thread::yield();
  };
  std::thread charger([&] {
    auto ledger = backend.open();
    for (int k = 0; k < keys; ++k) {
      step(charger_done, voider_done, k);
      const auto key = order + "-c" + std::to_string(k);
      const auto stored = ledger->record({entry(key, order, true)});
      if (!stored) {
        charge_error = stored.error();
        charger_done.store(keys);  // never leave the other side waiting
        return;
      }
      charged[key] = stored->front();
    }
  });
  std::thread voider([&] {
    auto ledger = backend.open();
    for (int k = keys - 1; k >= 0; --k) {
      step(voider_done, charger_done, keys - 1 - k);
      const auto key = order + "-c" + std::to_string(k);
      const auto out =
          ledger->void_charges({void_request(key, order + "-r" + std::to_string(k), order)});
      if (!out) {
        void_error = out.error();
        voider_done.store(keys);
        return;
      }
      voids[key] = out->front();
    }
  });
  charger.join();
  voider.join();

  BOOST_REQUIRE_MESSAGE(charge_error.empty(), charge_error);
  BOOST_REQUIRE_MESSAGE(void_error.empty(), void_error);
  int voided_first = 0, charged_first = 0;
  for (const auto& [key, c] : charged) {
    const auto& v = voids.at(key);
    BOOST_TEST(v.error.empty());
    if (c.approved) {
      // The charge won: the void must have refunded exactly it.
      ++charged_first;
      BOOST_TEST(v.refunded);
      BOOST_TEST(v.charge.transaction_id == c.transaction_id);
    } else {
      // The void won: the charge was declined by the tombstone.
      ++voided_first;
      BOOST_TEST(c.reason == sp::voided_before_charge);
      BOOST_TEST(!v.refunded);
    }
  }
  BOOST_TEST_MESSAGE(B::name << ": charged first " << charged_first << ", voided first "
                             << voided_first);
  BOOST_TEST(charged_first > 0);
  BOOST_TEST(voided_first > 0);
  BOOST_TEST(net_charges(*backend.shared, order) == 0);
  BOOST_TEST(entries_of(*backend.shared, order).size() ==
             static_cast<std::size_t>(keys + charged_first));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_voids_of_one_charge_refund_it_once, B, backends) {
  B backend;
  const auto order = unique_key("void-void");
  constexpr int charges = 30;
  constexpr int voiders = 3;
  {
    std::vector<sp::ledger_entry> batch;
    for (int k = 0; k < charges; ++k) {
      batch.push_back(entry(order + "-c" + std::to_string(k), order, true));
      batch.back().payment_id = "pay-" + batch.back().idempotency_key;  // a payment per charge
    }
    BOOST_REQUIRE(backend.shared->record(batch).has_value());
  }
  std::vector<std::string> errors(voiders);
  std::vector<std::thread> threads;
  for (int w = 0; w < voiders; ++w) {
    threads.emplace_back([&, w] {
      auto ledger = backend.open();
      for (int k = 0; k < charges; ++k) {
        // Each voider uses refund keys of its own: only the per-payment net stops a second
        // refund. Every charge is its own payment here.
        auto v = void_request(order + "-c" + std::to_string(k),
                              order + "-w" + std::to_string(w) + "-" + std::to_string(k), order);
        const auto out = ledger->void_charges({v});
        if (!out || !out->front().refunded) {
          errors[static_cast<std::size_t>(w)] = out ? "not refunded" : out.error();
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) BOOST_REQUIRE_MESSAGE(e.empty(), e);
  const auto rows = entries_of(*backend.shared, order);
  BOOST_TEST(rows.size() == static_cast<std::size_t>(2 * charges));  // one refund per charge
  std::map<std::string, int> refunds_per_payment;
  for (const auto& row : rows) {
    if (row.operation == sp::gateway_operation::refund) ++refunds_per_payment[row.payment_id];
  }
  BOOST_TEST(refunds_per_payment.size() == static_cast<std::size_t>(charges));
  for (const auto& [payment, n] : refunds_per_payment) BOOST_TEST(n == 1, payment);
  BOOST_TEST(net_charges(*backend.shared, order) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(simulated_gateway)

BOOST_AUTO_TEST_CASE_TEMPLATE(the_same_key_twice_is_charged_once_and_replayed, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.open(), options());
  const auto order = unique_key("order");
  const auto key = "saga-1/payment/charge-" + order;
  const auto first = gateway->execute({charge(key, order, 5000)});
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  require_ok(first[0]);
  BOOST_TEST(first[0].answer.approved);
  BOOST_TEST(first[0].answer.transaction_id.rfind("tx-", 0) == 0);
  BOOST_TEST(first[0].answer.transaction_id.size() == 3u + 36u);  // tx-<uuid>
  BOOST_TEST(first[0].answer.reason.empty());
  BOOST_TEST(!first[0].replayed);

  const auto second = gateway->execute({charge(key, order, 5000)});
  require_ok(second[0]);
  BOOST_TEST(second[0].replayed);
  BOOST_TEST(second[0].answer.approved);
  BOOST_TEST(second[0].answer.transaction_id == first[0].answer.transaction_id);

  // Twice in one batch, through another gateway on the same ledger: the same answer, once.
  auto other = sp::make_simulated_gateway(backend.open(), options());
  const auto key2 = key + "-2";
  const auto both = other->execute({charge(key2, order, 700), charge(key2, order, 700)});
  require_ok(both[0]);
  require_ok(both[1]);
  BOOST_TEST(!both[0].replayed);
  BOOST_TEST(both[1].replayed);
  BOOST_TEST(both[0].answer.transaction_id == both[1].answer.transaction_id);

  const auto rows = entries_of(*backend.open(), order);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0].idempotency_key == key);
  BOOST_TEST(rows[0].transaction_id == first[0].answer.transaction_id);
  BOOST_TEST(rows[0].amount == 5000);
  BOOST_TEST(rows[0].payment_id == "pay-" + order);
  BOOST_TEST(rows[1].idempotency_key == key2);
  // Two keys, two approved charges of one order: exactly what the audit must flag.
  BOOST_TEST(charged_twice(*backend.open()) == std::vector<std::string>{order});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(charges_above_the_limit_are_declined_and_recorded, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.open(), options(10'000));
  const auto order = unique_key("order");
  const auto r = gateway->execute({charge(order + "-at", order, 10'000),
                                   charge(order + "-above", order, 10'001),
                                   refund(order + "-refund", order, 50'000, "big refund")});
  BOOST_REQUIRE_EQUAL(r.size(), 3u);
  for (const auto& x : r) require_ok(x);
  BOOST_TEST(r[0].answer.approved);  // the limit itself is allowed
  BOOST_TEST(!r[1].answer.approved);
  BOOST_TEST(r[1].answer.reason == "amount exceeds limit");
  BOOST_TEST(r[1].answer.transaction_id.empty());
  BOOST_TEST(r[2].answer.approved);  // refunds are never declined
  const auto rows = entries_of(*backend.open(), order);
  BOOST_REQUIRE_EQUAL(rows.size(), 3u);
  BOOST_TEST(rows[0].idempotency_key == order + "-above");  // key order within one call
  BOOST_TEST(!rows[0].approved);
  BOOST_TEST(rows[0].reason == "amount exceeds limit");
  BOOST_TEST(rows[1].approved);
  // A declined key stays declined, even under a higher limit.
  auto lenient = sp::make_simulated_gateway(backend.open(), options(1'000'000));
  const auto again = lenient->execute({charge(order + "-above", order, 10'001)});
  require_ok(again[0]);
  BOOST_TEST(again[0].replayed);
  BOOST_TEST(!again[0].answer.approved);
  BOOST_TEST(again[0].answer.reason == "amount exceeds limit");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(refunds_are_recorded_with_their_own_transaction_id, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.open(), options());
  const auto order = unique_key("order");
  const auto charged = gateway->execute({charge(order + "-charge", order, 2500)});
  require_ok(charged[0]);
  const auto refunded =
      gateway->execute({refund(order + "-refund", order, 2500, "order cancelled")});
  require_ok(refunded[0]);
  BOOST_TEST(refunded[0].answer.approved);
  BOOST_TEST(refunded[0].answer.transaction_id.rfind("rf-", 0) == 0);
  BOOST_TEST(refunded[0].answer.transaction_id != charged[0].answer.transaction_id);
  BOOST_TEST(refunded[0].answer.reason.empty());  // a reason is only for declines
  const auto rows = entries_of(*backend.open(), order);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST((rows[0].operation == sp::gateway_operation::charge));
  BOOST_TEST((rows[1].operation == sp::gateway_operation::refund));
  BOOST_TEST(rows[1].approved);
  BOOST_TEST(rows[1].amount == 2500);
  BOOST_TEST(rows[1].reason == "order cancelled");
  BOOST_TEST(rows[1].transaction_id == refunded[0].answer.transaction_id);
  // Charged, refunded, charged again: net one charge, not a double charge.
  const auto recharged = gateway->execute({charge(order + "-charge-2", order, 2500)});
  require_ok(recharged[0]);
  BOOST_TEST(charged_twice(*backend.open()).empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(simulated_failures_record_nothing, B, backends) {
  B backend;
  const auto order = unique_key("order");
  auto always = sp::make_simulated_gateway(backend.open(), options(100'000, 1.0));
  std::vector<sp::gateway_request> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(charge(order + "-" + std::to_string(i), order, 10));
  batch.push_back(refund(order + "-r", order, 10, "x"));
  for (const auto& r : always->execute(batch)) {
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.error == "gateway unavailable (simulated)");
  }
  BOOST_TEST(entries_of(*backend.open(), order).empty());
  // The failed keys were not used up: a healthy gateway charges them now.
  auto healthy = sp::make_simulated_gateway(backend.open(), options());
  for (const auto& r : healthy->execute(batch)) {
    require_ok(r);
    BOOST_TEST(!r.replayed);
  }
  BOOST_TEST(entries_of(*backend.open(), order).size() == batch.size());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_partial_failure_rate_fails_some_and_records_the_rest, B, backends) {
  B backend;
  const auto order = unique_key("order");
  auto gateway = sp::make_simulated_gateway(backend.open(), options(100'000, 0.5));
  std::vector<sp::gateway_request> batch;
  for (int i = 0; i < 400; ++i) batch.push_back(charge(order + "-" + std::to_string(i), order, 1));
  const auto results = gateway->execute(batch);
  std::set<std::string> recorded;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok) {
      recorded.insert(batch[i].idempotency_key);
    } else {
      BOOST_TEST(results[i].error == "gateway unavailable (simulated)");
    }
  }
  // 400 fair coin flips: 200 ± 60 is over six standard deviations.
  BOOST_TEST(recorded.size() > 140u);
  BOOST_TEST(recorded.size() < 260u);
  std::set<std::string> rows;
  for (const auto& e : entries_of(*backend.open(), order)) rows.insert(e.idempotency_key);
  BOOST_TEST((rows == recorded));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(invalid_requests_fail_alone_in_a_mixed_batch, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.open(), options());
  const auto order = unique_key("order");
  std::vector<sp::gateway_request> batch;
  batch.push_back(charge(order + "-ok-1", order, 100));
  batch.push_back(charge("", order, 100));
  batch.push_back(charge(std::string(1025, 'k'), order, 100));
  batch.push_back(charge(order + "-negative", order, -5));
  batch.push_back(charge(order + "-utf8", order, 100));
  batch.back().customer_id = "cust-\xc3\x28";  // broken two-byte sequence
  batch.push_back(charge(order + "-no-order", "", 100));
  batch.push_back(refund(order + "-ok-2", order, 100, "fine"));
  const std::vector<std::string> expected_errors = {
      "",
      "idempotency_key must not be empty",
      "idempotency_key is 1025 bytes; the limit is 1024",
      "amount must not be negative",
      "customer_id must be UTF-8",
      "order_id must not be empty",
      ""};
  const auto results = gateway->execute(batch);
  BOOST_REQUIRE_EQUAL(results.size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (expected_errors[i].empty()) {
      require_ok(results[i]);
      BOOST_TEST(results[i].answer.approved);
    } else {
      BOOST_TEST(!results[i].ok);
      BOOST_TEST(results[i].error.rfind("invalid gateway request: ", 0) == 0, results[i].error);
      BOOST_TEST(results[i].error.find(expected_errors[i]) != std::string::npos, results[i].error);
    }
  }
  const auto rows = entries_of(*backend.open(), order);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0].idempotency_key == order + "-ok-1");
  BOOST_TEST(rows[1].idempotency_key == order + "-ok-2");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_ledger_failure_fails_the_whole_batch, B, backends) {
  B backend;
  auto ledger = std::make_shared<failing_ledger>(backend.open(), 1);
  auto gateway = sp::make_simulated_gateway(ledger, options());
  const auto order = unique_key("order");
  const std::vector<sp::gateway_request> batch = {
      charge(order + "-a", order, 1), charge("", order, 1), charge(order + "-b", order, 1)};
  const auto failed = gateway->execute(batch);
  BOOST_TEST(!failed[0].ok);
  BOOST_TEST(failed[0].error == "payment ledger unavailable: connection refused (injected)");
  BOOST_TEST(failed[1].error.find("idempotency_key must not be empty") != std::string::npos);
  BOOST_TEST(!failed[2].ok);
  BOOST_TEST(entries_of(*ledger, order).empty());
  const auto retried = gateway->execute(batch);
  require_ok(retried[0]);
  require_ok(retried[2]);
  BOOST_TEST(!retried[0].replayed);
  BOOST_TEST(entries_of(*ledger, order).size() == 2u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_void_refunds_a_charge_whose_answer_was_lost, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.shared, options());
  const auto order = unique_key("gw-void");
  const auto charged = gateway->execute({charge(order + "-charge", order, 2500)});
  require_ok(charged[0]);
  BOOST_REQUIRE(charged[0].answer.approved);
  // The answer is "lost"; the compensation voids the charge by its key.
  const auto v = gateway->execute({void_of(order + "-refund", order + "-charge", order, 2500)});
  require_ok(v[0]);
  BOOST_TEST(!v[0].replayed);
  BOOST_REQUIRE(v[0].voided.refunded);
  BOOST_TEST(v[0].voided.charge_transaction_id == charged[0].answer.transaction_id);
  BOOST_TEST(v[0].voided.amount == 2500);
  BOOST_TEST(v[0].voided.refund_transaction_id.rfind("rf-", 0) == 0);
  BOOST_TEST(v[0].answer.approved);
  BOOST_TEST(v[0].answer.transaction_id == v[0].voided.refund_transaction_id);
  const auto again = gateway->execute({void_of(order + "-refund", order + "-charge", order, 2500)});
  require_ok(again[0]);
  BOOST_TEST(again[0].replayed);
  BOOST_TEST(again[0].voided.refund_transaction_id == v[0].voided.refund_transaction_id);
  BOOST_TEST(net_charges(*backend.shared, order) == 0);
  BOOST_TEST(charged_twice(*backend.shared).empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_charge_after_its_void_is_declined, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.shared, options());
  const auto order = unique_key("gw-late");
  const auto v = gateway->execute({void_of(order + "-refund", order + "-charge", order, 2500)});
  require_ok(v[0]);
  BOOST_TEST(!v[0].voided.refunded);
  BOOST_TEST(v[0].voided.reason == sp::voided_before_charge);
  BOOST_TEST(!v[0].answer.approved);
  const auto late = gateway->execute({charge(order + "-charge", order, 2500)});
  require_ok(late[0]);
  BOOST_TEST(late[0].replayed);
  BOOST_TEST(!late[0].answer.approved);
  BOOST_TEST(late[0].answer.reason == sp::voided_before_charge);
  BOOST_TEST(net_charges(*backend.shared, order) == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(in_one_batch_charges_go_before_voids, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.shared, options());
  const auto order = unique_key("gw-batch");
  // Whichever comes first in the batch, the charge is recorded first and the void refunds it.
  const auto out = gateway->execute(
      {void_of(order + "-r1", order + "-c1", order, 100), charge(order + "-c1", order, 100),
       charge(order + "-c2", order, 100), void_of(order + "-r2", order + "-c2", order, 100)});
  for (const auto& r : out) require_ok(r);
  BOOST_TEST(out[1].answer.approved);
  BOOST_TEST(out[2].answer.approved);
  BOOST_TEST(out[0].voided.refunded);
  BOOST_TEST(out[0].voided.charge_transaction_id == out[1].answer.transaction_id);
  BOOST_TEST(out[3].voided.refunded);
  BOOST_TEST(net_charges(*backend.shared, order) == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(invalid_voids_are_refused_alone, B, backends) {
  B backend;
  auto gateway = sp::make_simulated_gateway(backend.shared, options());
  const auto order = unique_key("gw-bad");
  auto keyless = void_of(order + "-r", "", order, 100);
  auto same = void_of(order + "-r", order + "-r", order, 100);
  auto charge_with_key = charge(order + "-c", order, 100);
  charge_with_key.charge_key = order + "-x";
  const auto out = gateway->execute(
      {keyless, same, charge_with_key, void_of(order + "-ok", order + "-c9", order, 100)});
  BOOST_TEST(out[0].error.find("charge_key must not be empty") != std::string::npos, out[0].error);
  BOOST_TEST(out[1].error.find("must differ") != std::string::npos, out[1].error);
  BOOST_TEST(out[2].error.find("only for void_charge") != std::string::npos, out[2].error);
  require_ok(out[3]);
  BOOST_TEST(entries_of(*backend.shared, order).size() == 1u);  // the tombstone of the valid one
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_ledger_failure_fails_the_voids_and_records_nothing, B, backends) {
  B backend;
  auto ledger = std::make_shared<failing_ledger>(backend.open(), 1);
  auto gateway = sp::make_simulated_gateway(ledger, options());
  const auto order = unique_key("gw-void-fail");
  const auto failed = gateway->execute({void_of(order + "-r", order + "-c", order, 100)});
  BOOST_TEST(!failed[0].ok);
  BOOST_TEST(failed[0].error == "payment ledger unavailable: connection refused (injected)");
  BOOST_TEST(entries_of(*ledger, order).empty());
  require_ok(gateway->execute({void_of(order + "-r", order + "-c", order, 100)})[0]);
  BOOST_TEST(entries_of(*ledger, order).size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_ledger_without_voids_answers_an_error) {
  // A test double that only records: the default void_charges refuses clearly.
  class recording_only final : public sp::payment_ledger {
   public:
    saga::expected<std::vector<sp::ledger_entry>, std::string> record(
        const std::vector<sp::ledger_entry>& entries) override {
      return entries;
    }
    saga::expected<std::vector<sp::ledger_entry>, std::string> entries_of_order(
        const std::string&) override {
      return std::vector<sp::ledger_entry>{};
    }
    saga::expected<std::vector<std::string>, std::string> orders_charged_twice() override {
      return std::vector<std::string>{};
    }
  };
  auto gateway = sp::make_simulated_gateway(std::make_shared<recording_only>(), options());
  const auto out = gateway->execute({void_of("r", "c", "o", 1)});
  BOOST_TEST(!out[0].ok);
  BOOST_TEST(out[0].error.find("cannot void charges") != std::string::npos, out[0].error);
}

BOOST_AUTO_TEST_CASE(latency_is_paid_once_per_batch) {
  auto o = options();
  o.latency_ms = 60;
  auto gateway = sp::make_simulated_gateway(sp::make_memory_ledger(), o);
  std::vector<sp::gateway_request> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(charge("lat-" + std::to_string(i), "o-lat", 1));
  const auto start = std::chrono::steady_clock::now();
  for (const auto& r : gateway->execute(batch)) require_ok(r);
  const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  BOOST_TEST(took_ms >= 60);
  BOOST_TEST(took_ms < 300);  // not 10 × 60 ms
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  auto ledger = sp::make_memory_ledger();
  auto make = [&](sp::gateway_options o) { (void)sp::make_simulated_gateway(ledger, o); };
  auto bad = options();
  bad.failure_rate = 1.5;
  BOOST_CHECK_THROW(make(bad), std::invalid_argument);
  bad.failure_rate = -0.1;
  BOOST_CHECK_THROW(make(bad), std::invalid_argument);
  bad.failure_rate = std::nan("");
  BOOST_CHECK_THROW(make(bad), std::invalid_argument);
  bad = options();
  bad.decline_above = -1;
  BOOST_CHECK_THROW(make(bad), std::invalid_argument);
  bad = options();
  bad.latency_ms = -1;
  BOOST_CHECK_THROW(make(bad), std::invalid_argument);
  BOOST_CHECK_THROW((void)sp::make_simulated_gateway(nullptr, options()), std::invalid_argument);
  BOOST_CHECK_NO_THROW(make(options(0, 1.0)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pg_payment_ledger)

BOOST_AUTO_TEST_CASE(a_lost_connection_fails_one_call_and_the_next_reconnects) {
  pg_ledger_backend backend;
  auto ledger = backend.open();
  const auto order = unique_key("order");
  BOOST_REQUIRE(ledger->record({entry(order + "-1", order, true)}).has_value());
  const auto killed = sp::run_sql(
      backend.schema.url,
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = "
      "'saga-ledger/" +
          backend.schema.name + "'");
  BOOST_REQUIRE_MESSAGE(killed.has_value(), (killed ? std::string() : killed.error().message));
  BOOST_REQUIRE_EQUAL((*killed)[0][0], "2");  // this ledger's and the backend's shared one
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto lost = ledger->record({entry(order + "-2", order, true)});
  BOOST_REQUIRE(!lost.has_value());
  BOOST_TEST(lost.error().rfind("payment ledger: ", 0) == 0, lost.error());
  const auto again = ledger->record({entry(order + "-2", order, true)});
  BOOST_REQUIRE_MESSAGE(again.has_value(), (again ? std::string() : again.error()));
  BOOST_TEST(!(*again)[0].replayed);
  BOOST_TEST(entries_of(*ledger, order).size() == 2u);
}

BOOST_AUTO_TEST_CASE(the_schema_argument_selects_the_table) {
  pg_ledger_backend a;
  pg_ledger_backend b;
  const auto order = unique_key("order");
  BOOST_REQUIRE(a.open()->record({entry(order + "-1", order, true)}).has_value());
  BOOST_TEST(entries_of(*a.open(), order).size() == 1u);
  BOOST_TEST(entries_of(*b.open(), order).empty());
  const auto rows =
      sp::run_sql(a.schema.url, "SELECT count(*) FROM " + a.schema.name +
                                    ".payment_ledger WHERE order_id = '" + order + "'");
  BOOST_REQUIRE(rows.has_value());
  BOOST_TEST((*rows)[0][0] == "1");
}

BOOST_AUTO_TEST_CASE(an_unmigrated_schema_or_a_bad_url_is_a_clear_error) {
  const auto url = ledger_database_url();
  try {
    (void)sp::make_pg_ledger(url, "no_such_schema_" + run_tag());
    BOOST_FAIL("a ledger opened without its table");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("payment_ledger") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW((void)sp::make_pg_ledger("postgresql://nobody@127.0.0.1:1/none"),
                    std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

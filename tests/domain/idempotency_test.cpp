// Bounded idempotency memory: the value type itself (order, capacity, eviction, equality,
// copies), replay inside the window, safety of forgotten keys for every keyed aggregate, and
// what the memory costs in a snapshot.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "domain/aggregate_codec.hpp"
#include "domain/idempotency.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/payment.hpp"
#include "tests/domain/given.hpp"

namespace d = saga::domain;
namespace inventory = saga::domain::inventory;
namespace order = saga::domain::order;
namespace payment = saga::domain::payment;
using rc = saga::domain::rejection_code;
using saga::domain::max_remembered_keys;
using saga::test::accepted;
using saga::test::expect_rejection;
using saga::test::expect_replay;
using saga::test::only_event;

namespace {

using memory = d::idempotency_memory<inventory::event>;

inventory::event added(const std::string& key, std::int64_t quantity = 1) {
  return inventory::stock_added{"p-1", quantity, 10, key};
}

std::vector<std::string> keys_of(const memory& m) {
  std::vector<std::string> out;
  for (const auto& entry : m) out.push_back(entry.key);
  return out;
}

/// A UUID-shaped id (36 characters) that differs for every `n` and `tag`, for realistic sizes.
std::string uuid_like(std::uint64_t n, unsigned tag) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-a%03x-%012llx", tag,
                static_cast<unsigned>(n % 65536), static_cast<unsigned>((n >> 16) % 4096),
                tag % 4096, static_cast<unsigned long long>(n));
  return buf;
}

/// The bytes the idempotency memory adds to an inventory snapshot.
std::size_t memory_bytes(const inventory::state& s) {
  inventory::state without = s;
  without.handled = memory{};
  return d::encode_state(s).size() - d::encode_state(without).size();
}

/// A registered inventory whose memory holds at most `capacity` keys.
inventory::state product(std::int64_t stock, std::size_t capacity = max_remembered_keys,
                         const std::string& product_id = "p-1") {
  inventory::state s;
  s.handled = memory(capacity);
  return inventory::evolve(std::move(s), inventory::product_registered{
                                             product_id, "Keyboard", 15000, stock, 1, "register"});
}

/// Decides `c` on `s`, requires acceptance and applies the new events.
template <class State, class Command>
State run(State s, const Command& c) {
  const auto d = accepted(decide(s, c));
  return saga::test::apply(std::move(s), d);
}

/// The same state with a memory that has forgotten every key (the worst case a retry can meet).
template <class State>
State forgetting_everything(State s) {
  s.handled = decltype(s.handled)(1);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(idempotency_memory_value)

BOOST_AUTO_TEST_CASE(keys_are_kept_in_insertion_order_with_their_events) {
  memory m(8);
  BOOST_TEST(m.empty());
  m.remember("zeta", added("zeta", 1));
  m.remember("alpha", added("alpha", 2));
  m.remember("mid", added("mid", 3));
  BOOST_TEST(m.size() == 3u);
  BOOST_TEST((keys_of(m) == std::vector<std::string>{"zeta", "alpha", "mid"}));
  const auto* events = m.find("alpha");
  BOOST_REQUIRE(events != nullptr);
  BOOST_REQUIRE_EQUAL(events->size(), 1u);
  BOOST_TEST(std::get<inventory::stock_added>(events->front()).quantity == 2);
  BOOST_TEST(m.find("unknown") == nullptr);
  BOOST_TEST(!m.contains("unknown"));
  BOOST_TEST(m.contains("mid"));
}

BOOST_AUTO_TEST_CASE(the_oldest_key_is_forgotten_once_the_memory_is_full) {
  memory m(3);
  for (const char* k : {"a", "b", "c"}) m.remember(k, added(k));
  BOOST_TEST(m.size() == 3u);
  m.remember("d", added("d"));
  BOOST_TEST(m.size() == 3u);
  BOOST_TEST(!m.contains("a"));
  BOOST_TEST((keys_of(m) == std::vector<std::string>{"b", "c", "d"}));
  // Many more: never above capacity, always the newest three, and each still found.
  for (int i = 0; i < 1000; ++i) {
    const auto k = "k" + std::to_string(i);
    m.remember(k, added(k, i + 1));
    BOOST_REQUIRE_EQUAL(m.size(), 3u);
  }
  BOOST_TEST((keys_of(m) == std::vector<std::string>{"k997", "k998", "k999"}));
  for (int i = 997; i < 1000; ++i) {
    const auto* events = m.find("k" + std::to_string(i));
    BOOST_REQUIRE(events != nullptr);
    BOOST_TEST(std::get<inventory::stock_added>(events->front()).quantity == i + 1);
  }
  BOOST_TEST(m.find("k996") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_known_key_gets_more_events_but_keeps_its_age) {
  memory m(2);
  m.remember("a", added("a", 1));
  m.remember("b", added("b"));
  m.remember("a", added("a", 2));  // a second event of the same command
  BOOST_REQUIRE(m.find("a") != nullptr);
  BOOST_TEST(m.find("a")->size() == 2u);
  BOOST_TEST(m.size() == 2u);
  m.remember("c", added("c"));  // "a" is still the oldest
  BOOST_TEST(!m.contains("a"));
  BOOST_TEST((keys_of(m) == std::vector<std::string>{"b", "c"}));
}

BOOST_AUTO_TEST_CASE(an_empty_key_is_never_remembered) {
  memory m(2);
  m.remember("", added(""));
  BOOST_TEST(m.empty());
  BOOST_TEST(m.find("") == nullptr);
}

BOOST_AUTO_TEST_CASE(capacity_defaults_to_the_limit_and_is_at_least_one) {
  BOOST_TEST(memory().capacity() == max_remembered_keys);
  BOOST_TEST(inventory::state{}.handled.capacity() == max_remembered_keys);
  BOOST_TEST(order::state{}.handled.capacity() == max_remembered_keys);
  BOOST_TEST(payment::state{}.handled.capacity() == max_remembered_keys);
  memory one(0);
  BOOST_TEST(one.capacity() == 1u);
  one.remember("a", added("a"));
  BOOST_TEST(one.contains("a"));  // an immediate retry is still recognised
  one.remember("b", added("b"));
  BOOST_TEST((keys_of(one) == std::vector<std::string>{"b"}));
}

BOOST_AUTO_TEST_CASE(equality_covers_capacity_keys_events_and_order) {
  memory a(4), b(4);
  BOOST_TEST((a == b));
  a.remember("x", added("x"));
  BOOST_TEST((a != b));
  b.remember("x", added("x"));
  BOOST_TEST((a == b));
  a.remember("y", added("y"));
  a.remember("z", added("z"));
  b.remember("z", added("z"));
  b.remember("y", added("y"));
  BOOST_TEST((a != b));  // same keys, other order: they would forget differently
  memory c(4), e(4);
  c.remember("x", added("x", 1));
  e.remember("x", added("x", 2));
  BOOST_TEST((c != e));  // other events
  memory f(5);
  f.remember("x", added("x", 1));
  BOOST_TEST((c != f));  // other capacity
}

BOOST_AUTO_TEST_CASE(copies_are_independent_and_keep_finding_their_keys) {
  memory original(3);
  for (const char* k : {"a", "b", "c", "d"}) original.remember(k, added(k));  // "a" evicted
  memory copy = original;
  BOOST_TEST((copy == original));
  original.remember("e", added("e"));
  original.remember("f", added("f"));
  BOOST_TEST((keys_of(original) == std::vector<std::string>{"d", "e", "f"}));
  BOOST_TEST((keys_of(copy) == std::vector<std::string>{"b", "c", "d"}));
  BOOST_REQUIRE(copy.find("b") != nullptr);
  BOOST_TEST(!copy.contains("e"));
  copy.remember("g", added("g"));  // the copy forgets on its own, from its own oldest
  BOOST_TEST((keys_of(copy) == std::vector<std::string>{"c", "d", "g"}));

  memory assigned(1);
  assigned = original;
  BOOST_TEST((assigned == original));
  BOOST_REQUIRE(assigned.find("e") != nullptr);
  memory moved = std::move(assigned);
  BOOST_TEST((moved == original));
  BOOST_REQUIRE(moved.find("f") != nullptr);
  moved.remember("h", added("h"));
  BOOST_TEST((keys_of(moved) == std::vector<std::string>{"e", "f", "h"}));
  // A moved-from memory is empty and works again from scratch.
  BOOST_TEST(assigned.empty());  // NOLINT(bugprone-use-after-move): the documented contract
  assigned.remember("i", added("i"));
  assigned.remember("j", added("j"));
  BOOST_TEST((keys_of(assigned) == std::vector<std::string>{"i", "j"}));
  BOOST_REQUIRE(assigned.find("i") != nullptr);
  memory target(3);
  target = std::move(moved);
  BOOST_TEST(moved.empty());  // NOLINT(bugprone-use-after-move)
  BOOST_TEST((keys_of(target) == std::vector<std::string>{"e", "f", "h"}));
}

BOOST_AUTO_TEST_CASE(an_empty_memory_copies_and_assigns_like_a_full_one) {
  // An empty memory holds no storage: copying it, or assigning it over a full one, must
  // still give an empty memory of the right capacity that remembers and forgets normally.
  const memory empty(2);
  memory copy = empty;
  BOOST_TEST(copy.empty());
  BOOST_TEST(copy.capacity() == 2u);
  BOOST_TEST((copy == empty));
  BOOST_TEST((copy.begin() == copy.end()));
  memory full(5);
  for (const char* k : {"a", "b", "c"}) full.remember(k, added(k));
  full = empty;
  BOOST_TEST(full.empty());
  BOOST_TEST(full.capacity() == 2u);
  BOOST_TEST(!full.contains("a"));
  for (const char* k : {"x", "y", "z"}) full.remember(k, added(k));
  BOOST_TEST((keys_of(full) == std::vector<std::string>{"y", "z"}));
  BOOST_TEST(empty.empty());  // the source is untouched
  memory moved = memory(3);
  BOOST_TEST(moved.capacity() == 3u);
  BOOST_TEST(moved.find("x") == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounded_idempotency)

// ---- inventory: a hot product handles a key per order, so it does forget ----

BOOST_AUTO_TEST_CASE(a_key_replays_for_exactly_max_remembered_keys_keys) {
  // A reserve that failed for lack of stock is a durable answer inside the window.
  auto s = product(0);
  s = run(std::move(s), inventory::reserve{"o-0", 1, 100, "k-0"});
  BOOST_REQUIRE(s.reservations.empty());
  s = run(std::move(s), inventory::restock{5000, 101, "restock"});
  for (std::size_t i = 2; i < max_remembered_keys; ++i)
    s = run(std::move(s),
            inventory::reserve{"o-" + std::to_string(i), 1, 102, "k-" + std::to_string(i)});
  BOOST_TEST(s.handled.size() == max_remembered_keys);
  const auto& d = expect_replay(decide(s, inventory::reserve{"o-0", 1, 100, "k-0"}), 1);
  BOOST_TEST(std::holds_alternative<inventory::inventory_reservation_failed>(d.earlier.front()));

  // One key more and it is gone: the retry is decided afresh. Harmless, as the first attempt
  // changed nothing; here the restock lets it succeed.
  s = run(std::move(s), inventory::reserve{"o-new", 1, 103, "k-new"});
  BOOST_TEST(s.handled.size() == max_remembered_keys);
  BOOST_TEST(!s.handled.contains("k-0"));
  BOOST_TEST(s.handled.contains("restock"));
  const auto& e = only_event<inventory::inventory_reserved>(
      decide(s, inventory::reserve{"o-0", 1, 100, "k-0"}));
  BOOST_TEST(e.order_id == "o-0");
}

BOOST_AUTO_TEST_CASE(a_forgotten_reserve_key_never_holds_stock_twice) {
  auto s = product(100'000);
  const inventory::reserve first{"o-1", 3, 500, "saga-1/reserve_inventory/reserve"};
  const auto original = only_event<inventory::inventory_reserved>(decide(s, first));
  s = evolve(std::move(s), original);
  for (std::size_t i = 0; i < max_remembered_keys; ++i)
    s = run(std::move(s), inventory::reserve{"other-" + std::to_string(i), 1, 600,
                                             "saga-x" + std::to_string(i) + "/reserve"});
  BOOST_REQUIRE(!s.handled.contains(first.idempotency_key));
  const auto available = s.available;
  const auto version = s.version;

  // The saga's re-send (same key, same stamped `at`) gets the very event it first caused.
  const auto& d = expect_replay(decide(s, first), 1);
  BOOST_TEST((d.earlier.front() == inventory::event{original}));
  s = saga::test::apply(std::move(s), d);
  BOOST_TEST(s.available == available);
  BOOST_TEST(s.reservations.at("o-1") == 3);
  BOOST_TEST(s.version == version);
  // Another quantity for the same order is refused, never added.
  expect_rejection(decide(s, inventory::reserve{"o-1", 4, 500, first.idempotency_key}),
                   rc::already_processed, "o-1");
}

BOOST_AUTO_TEST_CASE(a_forgotten_release_key_finds_nothing_to_undo) {
  auto s = product(10, 2);
  s = run(std::move(s), inventory::reserve{"o-1", 4, 1, "r-1"});
  const inventory::release undo{"o-1", "payment declined", 2, "saga-1/release"};
  s = run(std::move(s), undo);
  BOOST_REQUIRE(s.available == 10);
  s = run(std::move(s), inventory::restock{1, 3, "restock-a"});
  s = run(std::move(s), inventory::restock{1, 4, "restock-b"});
  BOOST_REQUIRE(!s.handled.contains(undo.idempotency_key));
  const auto& again = accepted(decide(s, undo));
  BOOST_TEST(again.events.empty());  // a success the saga accepts, and nothing given back twice
  BOOST_TEST(!again.replayed);
  BOOST_TEST(saga::test::apply(s, again).available == 12);
}

BOOST_AUTO_TEST_CASE(a_forgotten_reserve_after_its_release_is_decided_as_new) {
  // Documents the edge the business state cannot see: once released, the order holds nothing,
  // so a reserve whose key is gone reserves again. Sagas never re-send a forward step after
  // compensation started, so only the window protects against stale duplicates here.
  auto s = forgetting_everything(product(10));
  s = run(std::move(s), inventory::reserve{"o-1", 4, 1, "r-1"});
  s = run(std::move(s), inventory::release{"o-1", "x", 2, "rel-1"});
  s = forgetting_everything(std::move(s));
  BOOST_TEST(
      only_event<inventory::inventory_reserved>(decide(s, inventory::reserve{"o-1", 4, 1, "r-1"}))
          .quantity == 4);
}

// ---- payment and order record a handful of keys, but forgetting is still safe ----

BOOST_AUTO_TEST_CASE(a_forgotten_charge_key_never_charges_twice) {
  const payment::gateway_answer approved{true, "tx-2", ""};
  const payment::process charge{"pay-1", "o-1", "c-1", 35000, 1000, "saga-1/process", approved};
  // A memory of one key: the declined first attempt's key is pushed out by the second attempt.
  payment::state s;
  s.handled = d::idempotency_memory<payment::event>(1);
  auto declined_attempt = charge;
  declined_attempt.idempotency_key = "saga-0/process";
  declined_attempt.gateway = payment::gateway_answer{false, "", "card declined"};
  s = run(std::move(s), declined_attempt);
  s = run(std::move(s), charge);
  BOOST_REQUIRE(!s.handled.contains("saga-0/process"));
  BOOST_REQUIRE(payment::to_string(s.status_) == "PROCESSED");
  // The payment actor first decides without a gateway answer and only charges when that is the
  // sole objection: a forgotten key must be refused before that point.
  auto probe = declined_attempt;
  probe.gateway = std::nullopt;
  expect_rejection(decide(s, probe), rc::already_processed, "already processed");
  expect_rejection(decide(s, declined_attempt), rc::already_processed, "pay-1");

  // The charge's own key forgotten: still refused, before and after a refund.
  auto forgot = forgetting_everything(s);
  auto charge_probe = charge;
  charge_probe.gateway = std::nullopt;
  expect_rejection(decide(forgot, charge_probe), rc::already_processed, "pay-1");
  expect_rejection(decide(forgot, charge), rc::already_processed, "pay-1");
  const payment::refund refund{"cancelled", 2000, "saga-1/refund",
                               payment::gateway_answer{true, "rtx-1", ""}};
  s = forgetting_everything(run(std::move(s), refund));
  expect_rejection(decide(s, charge_probe), rc::already_refunded, "pay-1");
  auto refund_probe = refund;
  refund_probe.gateway = std::nullopt;
  expect_rejection(decide(s, refund_probe), rc::already_refunded, "pay-1");
  expect_rejection(decide(s, refund), rc::already_refunded, "pay-1");
  BOOST_TEST(s.version == 3);
}

BOOST_AUTO_TEST_CASE(forgotten_order_keys_never_create_confirm_or_cancel_twice) {
  const order::create create{
      "o-1", "c-1", {{"p-1", "Keyboard", 1, 15000}}, "Seoul", "corr-1", "saga-1", 1000, "create-1"};
  const order::confirm confirm{2000, "saga-1/confirm_order/confirm"};
  const order::cancel cancel{"payment declined", 3000, "saga-1/on_compensated/cancel"};

  auto confirmed = run(run(order::state{}, create), confirm);
  confirmed = forgetting_everything(std::move(confirmed));
  expect_rejection(decide(confirmed, create), rc::already_exists, "o-1");
  expect_rejection(decide(confirmed, confirm), rc::already_confirmed, "o-1");

  auto cancelled = forgetting_everything(run(run(order::state{}, create), cancel));
  expect_rejection(decide(cancelled, cancel), rc::already_cancelled, "o-1");
  expect_rejection(decide(cancelled, confirm), rc::already_cancelled, "o-1");
  expect_rejection(decide(cancelled, create), rc::already_exists, "o-1");
}

// ---- snapshots ----

BOOST_AUTO_TEST_CASE(an_inventory_snapshot_stays_bounded_over_100k_orders) {
  // Realistic worst case: UUID saga, order and product ids, keys that name the product
  // (multi-product orders), i.e. 99-character keys, and a saga-style release reason. Each order
  // reserves 1-3 and is released 40 orders later (compensated or cancelled); with 60 in stock
  // a good part of the reserves fail. Plain checks inside the loop: Boost assertions would
  // dominate the run time.
  const auto product_id = uuid_like(7, 0x9d);
  auto s = product(60, max_remembered_keys, product_id);
  const std::int64_t t0 = 1'700'000'000'000;
  const auto key = [&](std::uint64_t order, const char* action) {
    return uuid_like(order, 0x5a) + "/reserve_inventory/" + action + "/" + product_id;
  };
  const auto step = [&](const inventory::command& c) {
    auto d = decide(s, c);
    if (!d) return false;
    s = saga::test::apply(std::move(s), *d);
    return true;
  };
  constexpr std::uint64_t orders = 100'000, lag = 40;
  std::size_t bytes_at_10k = 0, largest = 0, failed = 0, refused = 0;
  for (std::uint64_t i = 0; i < orders + lag; ++i) {
    const auto at = t0 + static_cast<std::int64_t>(i);
    if (i < orders) {
      const auto version = s.version;  // every reserve records an outcome, never a replay
      if (!step(inventory::reserve{uuid_like(i, 0x0d), static_cast<std::int64_t>(1 + i % 3), at,
                                   key(i, "reserve")}) ||
          s.version == version)
        ++refused;
      if (s.reservations.count(uuid_like(i, 0x0d)) == 0) ++failed;
    }
    if (i >= lag && !step(inventory::release{uuid_like(i - lag, 0x0d),
                                             "process_payment: payment declined by the gateway", at,
                                             key(i - lag, "release")}))
      ++refused;
    largest = std::max(largest, s.handled.size());
    if (i == 10'000) bytes_at_10k = memory_bytes(s);
  }
  const auto bytes = memory_bytes(s);
  const auto snapshot = d::encode_state(s).size();
  BOOST_TEST_MESSAGE("idempotency memory in an inventory snapshot: "
                     << bytes << " bytes for " << s.handled.size() << " keys ("
                     << bytes / s.handled.size() << " per key); whole snapshot " << snapshot
                     << " bytes after " << orders << " orders (" << failed
                     << " reserves failed for lack of stock)");
  BOOST_TEST(refused == 0u);
  BOOST_TEST(failed > 0u);
  BOOST_TEST(failed < orders / 2);
  BOOST_TEST(s.reservations.empty());
  BOOST_TEST(s.available == 60);
  BOOST_TEST(largest == max_remembered_keys);
  BOOST_TEST(s.handled.size() == max_remembered_keys);
  // The memory is what a hot product's snapshot is made of, and it does not grow with the
  // orders: the same at 10k as at 100k (the mix of events shifts a little, hence the 1%).
  BOOST_TEST(bytes < 384u * 1024u);
  BOOST_TEST(bytes <= bytes_at_10k + bytes_at_10k / 100);
  BOOST_TEST(snapshot < 384u * 1024u);
}

BOOST_AUTO_TEST_CASE(a_snapshot_keeps_the_memory_order_and_forgets_from_the_right_end) {
  auto s = product(100);
  for (const char* k : {"zeta", "alpha", "mid"}) s = run(std::move(s), inventory::restock{1, 5, k});
  const auto text = d::encode_state(s);
  const auto back = d::decode_inventory_state(text);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((back->handled == s.handled));
  BOOST_TEST(
      (keys_of(back->handled) == std::vector<std::string>{"register", "zeta", "alpha", "mid"}));
  BOOST_TEST(d::encode_state(*back) == text);

  // After recovery the oldest key is still the first to go.
  auto restored = *back;
  for (std::size_t i = 0; i < max_remembered_keys - 3; ++i)
    restored = run(std::move(restored), inventory::restock{1, 6, "more-" + std::to_string(i)});
  BOOST_TEST(!restored.handled.contains("register"));
  BOOST_TEST(restored.handled.contains("zeta"));
  restored = run(std::move(restored), inventory::restock{1, 6, "one-more"});
  BOOST_TEST(!restored.handled.contains("zeta"));
  BOOST_TEST(restored.handled.contains("alpha"));
}

BOOST_AUTO_TEST_CASE(embedded_events_do_not_repeat_their_key) {
  auto s = product(100);
  const std::string key = "saga-42/reserve_inventory/reserve";
  s = run(std::move(s), inventory::reserve{"o-1", 1, 5, key});
  const auto text = d::encode_state(s);
  std::size_t count = 0;
  for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) ++count;
  BOOST_TEST(count == 1u);
  BOOST_TEST(text.find("idempotencyKey") == std::string::npos);

  // An event remembered under another key than its own (not something evolve does) keeps it.
  inventory::state odd;
  odd.handled.remember("entry-key", inventory::stock_added{"p-1", 1, 2, "own-key"});
  const auto back = d::decode_inventory_state(d::encode_state(odd));
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((back->handled == odd.handled));
  BOOST_TEST(
      std::get<inventory::stock_added>(back->handled.find("entry-key")->front()).idempotency_key ==
      "own-key");
}

BOOST_AUTO_TEST_CASE(a_snapshot_with_more_keys_than_the_limit_keeps_the_newest) {
  inventory::state s;
  s.handled = memory(max_remembered_keys + 5);
  s = inventory::evolve(std::move(s),
                        inventory::product_registered{"p-1", "Keyboard", 1, 0, 1, "k-0"});
  for (std::size_t i = 1; i < max_remembered_keys + 5; ++i)
    s = inventory::evolve(std::move(s), added("k-" + std::to_string(i)));
  BOOST_REQUIRE_EQUAL(s.handled.size(), max_remembered_keys + 5);
  const auto back = d::decode_inventory_state(d::encode_state(s));
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(back->handled.capacity() == max_remembered_keys);
  BOOST_TEST(back->handled.size() == max_remembered_keys);
  BOOST_TEST(back->handled.begin()->key == "k-5");
  BOOST_TEST(back->handled.contains("k-" + std::to_string(max_remembered_keys + 4)));
  BOOST_TEST(!back->handled.contains("k-4"));
}

BOOST_AUTO_TEST_CASE(a_snapshot_of_the_older_unbounded_shape_still_decodes) {
  // "handled" as an object map with full payloads, as written before the memory was bounded.
  const std::string old = R"({"available":7,"handled":{
      "k-reg":[{"type":"ProductRegistered","payload":{"productId":"p-1","name":"Keyboard",
        "price":15000,"initialStock":10,"at":1,"idempotencyKey":"k-reg","schema_version":1}}],
      "saga-1/reserve":[{"type":"InventoryReserved","payload":{"productId":"p-1","orderId":"o-1",
        "quantity":3,"at":2,"idempotencyKey":"saga-1/reserve","schema_version":1}}]},
    "name":"Keyboard","price":15000,"productId":"p-1","registered":true,"reserved":3,
    "reservations":{"o-1":3},"schema_version":1,"version":2})";
  const auto back = d::decode_inventory_state(old);
  BOOST_REQUIRE_MESSAGE(back.has_value(), (back.has_value() ? "" : back.error().message));
  BOOST_TEST(back->handled.size() == 2u);
  BOOST_TEST(back->handled.capacity() == max_remembered_keys);
  const auto& d1 =
      expect_replay(decide(*back, inventory::reserve{"o-1", 3, 2, "saga-1/reserve"}), 1);
  BOOST_TEST((d1.earlier.front() == inventory::event{inventory::inventory_reserved{
                                        "p-1", "o-1", 3, 2, "saga-1/reserve"}}));
  // Re-encoding writes the new shape, which decodes to the same memory.
  const auto again = d::decode_inventory_state(d::encode_state(*back));
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST((again->handled == back->handled));

  // The old shape's embedded versions are still checked.
  auto bad = old;
  bad.replace(bad.find("\"schema_version\":1}}],\n      \"saga-1"), 18, "\"schema_version\":9");
  const auto refused = d::decode_inventory_state(bad);
  BOOST_REQUIRE(!refused.has_value());
  BOOST_TEST(refused.error().field == "handled[k-reg][0].payload.schema_version");
}

BOOST_AUTO_TEST_CASE(a_corrupt_memory_in_a_snapshot_names_the_field) {
  auto s = product(10);
  s = run(std::move(s), inventory::restock{1, 2, "k-a"});
  const auto text = d::encode_state(s);
  const auto expect_field = [](const std::string& json, const std::string& field) {
    const auto r = d::decode_inventory_state(json);
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "expected a decode error for " << field);
    BOOST_TEST(r.error().field == field);
  };
  const auto replace = [&](const std::string& from, const std::string& to) {
    auto out = text;
    const auto at = out.find(from);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, "'" << from << "' not in " << text);
    return out.replace(at, from.size(), to);
  };
  expect_field(replace("\"key\":\"k-a\"", "\"key\":\"register\""), "handled[1].key");  // twice
  expect_field(replace("\"key\":\"k-a\"", "\"key\":\"\""), "handled[1].key");
  expect_field(replace("\"key\":\"k-a\"", "\"key\":7"), "handled[1].key");
  expect_field(replace("\"key\":\"k-a\"", "\"clef\":\"k-a\""), "handled[1].key");
  expect_field(replace("\"type\":\"StockAdded\"", "\"type\":\"StockLost\""),
               "handled[1].events[0].type");
  expect_field(replace("\"quantity\":1", "\"quantity\":\"1\""),
               "handled[1].events[0].payload.quantity");
  expect_field(replace("\"handled\":[", "\"handled\":[3,"), "handled[0]");
  const auto events_at = text.rfind("\"events\":[", text.find("\"key\":\"k-a\""));
  BOOST_REQUIRE(events_at != std::string::npos);
  auto empty_events = text;
  const auto close = empty_events.find("]", events_at);
  empty_events.replace(events_at, close + 1 - events_at, "\"events\":[]");
  expect_field(empty_events, "handled[1].events");
  expect_field(replace("\"handled\":[", "\"handled\":5,\"was\":["), "handled");
  // An embedded version, when present, is checked.
  expect_field(replace("\"quantity\":1", "\"quantity\":1,\"schema_version\":2"),
               "handled[1].events[0].payload.schema_version");
}

BOOST_AUTO_TEST_SUITE_END()

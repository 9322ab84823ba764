// Token buckets per key: burst, refill, Retry-After rounding, independence of keys, bounded
// memory with least-recently-used eviction, and thread safety. A fake clock keeps every case
// deterministic (no sleeps).
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "http/auth/rate_limiter.hpp"

using saga::http::auth::rate_limiter;
using namespace std::chrono_literals;

namespace {

/// A steady_clock time the test moves by hand.
struct fake_clock {
  std::shared_ptr<std::chrono::steady_clock::time_point> now =
      std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  rate_limiter::clock_fn fn() const {
    return [t = now] { return *t; };
  }
  template <class Duration>
  void advance(Duration d) {
    *now += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  }
};

/// How many of `n` immediate acquires of `key` pass.
int passes(rate_limiter& limiter, const std::string& key, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i)
    if (!limiter.acquire(key)) ++ok;
  return ok;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(auth_rate_limiter)

BOOST_AUTO_TEST_CASE(a_fresh_key_may_spend_its_burst_then_is_refused) {
  fake_clock clock;
  rate_limiter limiter(1.0, 3, 100, clock.fn());
  BOOST_TEST(passes(limiter, "ann", 3) == 3);
  const auto wait = limiter.acquire("ann");
  BOOST_REQUIRE(wait.has_value());
  BOOST_TEST(wait->count() == 1);
}

BOOST_AUTO_TEST_CASE(tokens_come_back_at_the_configured_rate) {
  fake_clock clock;
  rate_limiter limiter(2.0, 2, 100, clock.fn());  // one token per 500 ms
  BOOST_TEST(passes(limiter, "k", 2) == 2);
  BOOST_TEST(limiter.acquire("k").has_value());
  clock.advance(499ms);
  BOOST_TEST(limiter.acquire("k").has_value());
  clock.advance(1ms);
  BOOST_TEST(!limiter.acquire("k").has_value());
  BOOST_TEST(limiter.acquire("k").has_value());
}

BOOST_AUTO_TEST_CASE(retry_after_is_the_wait_for_one_token_rounded_up) {
  fake_clock clock;
  rate_limiter login(10.0 / 60.0, 10, 100, clock.fn());  // 10 per minute: a token every 6 s
  BOOST_TEST(passes(login, "ann@example.com", 10) == 10);
  auto wait = login.acquire("ann@example.com");
  BOOST_REQUIRE(wait.has_value());
  BOOST_TEST(wait->count() == 6);
  clock.advance(2500ms);
  wait = login.acquire("ann@example.com");
  BOOST_REQUIRE(wait.has_value());
  BOOST_TEST(wait->count() == 4);  // 3.5 s left → 4
  clock.advance(3400ms);
  wait = login.acquire("ann@example.com");
  BOOST_REQUIRE(wait.has_value());
  BOOST_TEST(wait->count() == 1);  // 0.1 s left → at least 1
  clock.advance(100ms);
  BOOST_TEST(!login.acquire("ann@example.com").has_value());

  rate_limiter slow(0.4, 1, 100, clock.fn());  // a token every 2.5 s
  BOOST_TEST(!slow.acquire("x").has_value());
  wait = slow.acquire("x");
  BOOST_REQUIRE(wait.has_value());
  BOOST_TEST(wait->count() == 3);
}

BOOST_AUTO_TEST_CASE(retry_after_is_at_least_one_second_for_fast_rates) {
  fake_clock clock;
  rate_limiter limiter(100.0, 1, 100, clock.fn());  // next token after 10 ms
  BOOST_TEST(!limiter.acquire("k").has_value());
  const auto wait = limiter.acquire("k");
  BOOST_REQUIRE(wait.has_value());
  BOOST_TEST(wait->count() == 1);
}

BOOST_AUTO_TEST_CASE(refused_requests_cost_nothing) {
  fake_clock clock;
  rate_limiter limiter(1.0, 1, 100, clock.fn());
  BOOST_TEST(!limiter.acquire("k").has_value());
  for (int i = 0; i < 50; ++i) BOOST_TEST(limiter.acquire("k").has_value());
  clock.advance(1s);  // exactly the Retry-After announced, despite 50 refusals meanwhile
  BOOST_TEST(!limiter.acquire("k").has_value());
}

BOOST_AUTO_TEST_CASE(an_idle_key_refills_only_up_to_its_burst) {
  fake_clock clock;
  rate_limiter limiter(5.0, 4, 100, clock.fn());
  BOOST_TEST(passes(limiter, "k", 4) == 4);
  clock.advance(1h);
  BOOST_TEST(passes(limiter, "k", 100) == 4);
}

BOOST_AUTO_TEST_CASE(keys_have_independent_buckets) {
  fake_clock clock;
  rate_limiter limiter(1.0, 2, 100, clock.fn());
  BOOST_TEST(passes(limiter, "user-1", 5) == 2);
  BOOST_TEST(passes(limiter, "user-2", 5) == 2);
  BOOST_TEST(passes(limiter, "10.0.0.1", 5) == 2);
  BOOST_TEST(limiter.acquire("user-1").has_value());
}

BOOST_AUTO_TEST_CASE(memory_is_bounded_by_max_keys) {
  fake_clock clock;
  rate_limiter small(1.0, 1, 5, clock.fn());
  for (int i = 0; i < 1000; ++i) (void)small.acquire("key-" + std::to_string(i));
  BOOST_TEST(small.tracked_keys() == 5u);

  rate_limiter sharded(1.0, 1, 20000, clock.fn());  // 16 shards
  for (int i = 0; i < 50000; ++i) (void)sharded.acquire("key-" + std::to_string(i));
  BOOST_TEST(sharded.tracked_keys() <= 20000u);
  BOOST_TEST(sharded.tracked_keys() >= 19000u);  // shards fill up before they evict
}

BOOST_AUTO_TEST_CASE(the_least_recently_used_key_is_forgotten_first) {
  fake_clock clock;
  rate_limiter limiter(1.0, 1, 2, clock.fn());
  BOOST_TEST(!limiter.acquire("a").has_value());
  BOOST_TEST(!limiter.acquire("b").has_value());
  BOOST_TEST(limiter.acquire("a").has_value());   // touches a: b is now the oldest
  BOOST_TEST(!limiter.acquire("c").has_value());  // evicts b
  BOOST_TEST(limiter.acquire("a").has_value());   // a is still remembered (and empty)
  BOOST_TEST(!limiter.acquire("b").has_value());  // b was forgotten: a fresh bucket
  BOOST_TEST(limiter.tracked_keys() == 2u);
}

BOOST_AUTO_TEST_CASE(invalid_settings_are_refused) {
  BOOST_CHECK_THROW(rate_limiter(0.0, 10), std::invalid_argument);
  BOOST_CHECK_THROW(rate_limiter(-1.0, 10), std::invalid_argument);
  BOOST_CHECK_THROW(rate_limiter(std::nan(""), 10), std::invalid_argument);
  BOOST_CHECK_THROW(rate_limiter(1.0, 0.5), std::invalid_argument);
  BOOST_CHECK_THROW(rate_limiter(1.0, 10, 0), std::invalid_argument);
  BOOST_CHECK_THROW(rate_limiter(1.0, 10, 10, rate_limiter::clock_fn{}), std::invalid_argument);
  BOOST_CHECK_NO_THROW(rate_limiter(1.0, 1, 1));
}

BOOST_AUTO_TEST_CASE(concurrent_callers_never_overspend_a_bucket) {
  fake_clock clock;  // frozen: no refill while the threads run
  rate_limiter limiter(1.0, 100, 100000, clock.fn());
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (!limiter.acquire("shared")) allowed.fetch_add(1);
        (void)limiter.acquire("own-" + std::to_string(t) + "-" + std::to_string(i % 50));
      }
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(allowed.load() == 100);
  BOOST_TEST(limiter.tracked_keys() == 201u);
}

BOOST_AUTO_TEST_SUITE_END()

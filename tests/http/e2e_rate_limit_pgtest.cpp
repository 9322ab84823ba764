// Rate limits over HTTP against a saga-node started with low limits: repeated logins for one
// email and rapid order creation end in 429 problems with a Retry-After header.
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/http/support.hpp"

namespace ht = saga::http_test;
using ht::bearer;
using ht::json;
using ht::str;
using namespace std::chrono_literals;

namespace {

/// Checks a 429 problem with Retry-After: a whole number of seconds >= 1.
void check_limited(const ht::response& r) {
  ht::check_problem(r, 429);
  const auto retry = r.header("Retry-After").value_or("");
  const bool numeric = !retry.empty() && std::all_of(retry.begin(), retry.end(), ::isdigit);
  BOOST_CHECK_MESSAGE(numeric && std::stoll(retry) >= 1,
                      "429 without a Retry-After of >= 1 s: " << r.describe());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_rate_limit)

BOOST_AUTO_TEST_CASE(logins_and_order_creation_are_limited_with_retry_after) {
  ht::node_options o;
  o.name = "rate-limited";
  o.relaxed_rate_limits = false;
  o.extra_args = {"--rate-limit-login-per-minute", "5", "--rate-limit-orders-per-second", "1",
                  "--rate-limit-orders-burst",     "3"};
  ht::http_node node(o);
  auto c = node.make_client();
  // Two logins of the five per minute: the customer's and nothing else before the hammering.
  const auto u = node.new_customer("limited");

  // Orders: a burst of 3, then 429 until a token refills (1 per second).
  std::vector<ht::response> answers;
  for (int i = 0; i < 8; ++i) {
    answers.push_back(c.post("/orders", ht::small_order_body(), {bearer(u.token)}));
  }
  int accepted = 0;
  const ht::response* limited = nullptr;
  for (const auto& a : answers) {
    if (a.status == 202) ++accepted;
    if (a.status == 429 && limited == nullptr) limited = &a;
    BOOST_CHECK_MESSAGE(a.status == 202 || a.status == 429,
                        "expected 202 or 429 from " << a.describe());
  }
  BOOST_CHECK_MESSAGE(
      accepted >= 3 && accepted <= 5,
      "expected the burst of 3 (plus at most a refill or two) accepted, got " << accepted);
  BOOST_REQUIRE_MESSAGE(limited != nullptr, "8 rapid orders with a burst of 3 were never limited");
  check_limited(*limited);

  // Logins: one email hammered with a wrong password ends in 429, and then even the right
  // password is refused until Retry-After has passed.
  std::vector<ht::response> logins;
  for (int i = 0; i < 12; ++i) {
    logins.push_back(c.post("/auth/login",
                            json{{"email", u.email}, {"password", "wrong-" + std::to_string(i)}}));
  }
  const ht::response* login_limited = nullptr;
  for (const auto& l : logins) {
    BOOST_CHECK_MESSAGE(l.status == 401 || l.status == 429,
                        "expected 401 or 429 from " << l.describe());
    if (l.status == 429 && login_limited == nullptr) login_limited = &l;
  }
  BOOST_CHECK_MESSAGE(logins.front().status == 401, logins.front().describe());
  BOOST_REQUIRE_MESSAGE(
      login_limited != nullptr,
      "12 logins at 5 per minute were never limited; last: " << logins.back().describe());
  check_limited(*login_limited);
  check_limited(c.post("/auth/login", json{{"email", u.email}, {"password", u.password}}));
}

BOOST_AUTO_TEST_SUITE_END()

// quiet_clock (actors/quiet_clock.hpp): CAF's timers on a clock that wakes its thread only when
// the next due time moves earlier. Delayed messages and request timeouts arrive on time and in
// due order (a timer earlier than every pending one included), answered requests do not time
// out, timers of actors that are gone are dropped, and many timers from many threads all fire.
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/quiet_clock.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct quiet_config : caf::actor_system_config {
  explicit quiet_config(bool sharing) {
    set("scheduler.max-threads", 2);
    saga::actors::use_quiet_clock(*this, sharing);
  }
};

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(quiet_clock)

BOOST_AUTO_TEST_CASE(delayed_messages_arrive_on_time_in_due_order) {
  for (const bool sharing : {true, false}) {
    quiet_config config(sharing);
    caf::actor_system system(config);
    caf::scoped_actor self(system);
    const auto start = clock_type::now();
    // The later one first: the clock sleeps until 400 ms, and the 60 ms one must wake it.
    self->delayed_send(self, 400ms, std::string("late"));
    self->delayed_send(self, 60ms, std::string("early"));
    std::vector<std::pair<std::string, double>> got;
    for (int i = 0; i < 2; ++i) {
      self->receive([&](const std::string& what) { got.emplace_back(what, ms_since(start)); },
                    caf::after(std::chrono::seconds(5)) >> [] {});
    }
    BOOST_TEST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].first == "early");
    BOOST_TEST(got[0].second >= 59.0);
    BOOST_TEST(got[0].second < 300.0);  // not held back until the later timer
    BOOST_TEST(got[1].first == "late");
    BOOST_TEST(got[1].second >= 399.0);
  }
}

BOOST_AUTO_TEST_CASE(request_timeouts_fire_only_for_unanswered_requests) {
  quiet_config config(true);
  caf::actor_system system(config);
  // Every spawned function takes an argument: CAF 0.17 dereferences a null argument tuple when
  // it starts a function actor without any (UBSan reports it).
  auto answers =
      system.spawn([](caf::event_based_actor*,
                      int step) -> caf::behavior { return {[step](int x) { return x + step; }}; },
                   1);
  auto silent = system.spawn(
      [](caf::event_based_actor* self, int) -> caf::behavior {
        return {[=](int) -> caf::result<int> { return self->make_response_promise<int>(); }};
      },
      0);
  struct tally {
    std::atomic<int> answered{0};
    std::atomic<int> errors_after_answers{0};
    std::atomic<int> silent_answers{0};
    std::atomic<bool> silent_timed_out{false};
    std::atomic<double> silent_after_ms{0};
    std::promise<void> done;
  } t;
  system.spawn(
      [&](caf::event_based_actor* self, int requests) -> caf::behavior {
        for (int i = 0; i < requests; ++i) {
          self->request(answers, 150ms, i)
              .then([&t, i](int x) { t.answered += x == i + 1 ? 1 : 0; },
                    [&t](caf::error&) { ++t.errors_after_answers; });
        }
        const auto start = clock_type::now();
        self->request(silent, 100ms, 1)
            .then([&t](int) { ++t.silent_answers; },
                  [&t, start](caf::error& e) {
                    t.silent_timed_out = e == caf::sec::request_timeout;
                    t.silent_after_ms = ms_since(start);
                  });
        // Well past every timeout: answered requests must not have reported one meanwhile.
        self->delayed_send(self, 400ms, std::string("done"));
        return {[&t, self](const std::string&) {
          t.done.set_value();
          self->quit();
        }};
      },
      50);
  BOOST_REQUIRE(t.done.get_future().wait_for(10s) == std::future_status::ready);
  BOOST_TEST(t.answered.load() == 50);
  BOOST_TEST(t.errors_after_answers.load() == 0);
  BOOST_TEST(t.silent_answers.load() == 0);
  BOOST_TEST(t.silent_timed_out.load());
  BOOST_TEST(t.silent_after_ms.load() >= 99.0);
  BOOST_TEST(t.silent_after_ms.load() < 400.0);
  caf::anon_send_exit(answers, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(silent, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(timers_of_actors_that_are_gone_are_dropped) {
  quiet_config config(true);
  caf::actor_system system(config);
  std::atomic<int> fired{0};
  for (int i = 0; i < 100; ++i) {
    // Each arms a timer and a timed request to itself, then quits before either is due.
    system.spawn(
        [&fired](caf::event_based_actor* self, int) -> caf::behavior {
          self->delayed_send(self, 50ms, std::string("tick"));
          self->request(caf::actor{self}, 50ms, 1).then([](int) {}, [](caf::error&) {});
          self->send(self, std::string("quit"));
          return {[=, &fired](const std::string& what) {
                    if (what == "tick") ++fired;
                    self->quit();
                  },
                  [](int) -> caf::result<int> { return caf::skip; }};
        },
        i);
  }
  std::this_thread::sleep_for(150ms);
  BOOST_TEST(fired.load() == 0);
}  // the system shuts down with nothing pending

BOOST_AUTO_TEST_CASE(timers_from_many_threads_all_fire) {
  quiet_config config(true);
  caf::actor_system system(config);
  std::atomic<int> fired{0};
  auto counter =
      system.spawn([&fired](caf::event_based_actor*,
                            int) -> caf::behavior { return {[&fired](int) { ++fired; }}; },
                   0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&system, &counter, t] {
      caf::scoped_actor self(system);
      for (int i = 0; i < 500; ++i) {
        // Due times spread over 0..99 ms, in no particular order.
        self->delayed_send(counter, std::chrono::milliseconds((i * 37 + t * 11) % 100), i);
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto deadline = clock_type::now() + 5s;
  while (fired.load() < 2000 && clock_type::now() < deadline) std::this_thread::sleep_for(10ms);
  BOOST_TEST(fired.load() == 2000);
  caf::anon_send_exit(counter, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()

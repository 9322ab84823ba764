// Test helpers for aggregate specs: given past events → when a command → then new events or
// a rejection. decide/evolve are found by argument-dependent lookup on the state type.
// Single-threaded test code.
#pragma once

#include <boost/test/unit_test.hpp>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "domain/rejection.hpp"

namespace saga::test {

/// A state folded from past events, ready to receive a command.
template <class State>
struct scenario {
  State state;

  /// Runs decide on the folded state.
  template <class Command>
  auto when(const Command& cmd) const {
    return decide(state, cmd);
  }
};

/// Folds `history` with evolve, as an aggregate actor does when it recovers.
template <class State, class Event>
scenario<State> given(const std::vector<Event>& history) {
  State s;
  for (const auto& e : history) s = evolve(std::move(s), e);
  return scenario<State>{std::move(s)};
}

/// Applies the new events of an accepted decision to `s`.
template <class State, class Event>
State apply(State s, const domain::decision<Event>& d) {
  for (const auto& e : d.events) s = evolve(std::move(s), e);
  return s;
}

/// "rejection <code>: <message>" or "acceptance"; Boost builds messages even when a check
/// passes, so this must not touch error() of an accepted result.
template <class T>
std::string describe(const domain::result<T>& r) {
  if (r.has_value()) return "acceptance";
  return "rejection " + std::string(domain::to_string(r.error().code)) + ": " + r.error().message;
}

// The helpers below return copies so that `const auto& e = only_event<T>(scenario.when(c));`
// stays valid after the temporary result is gone.

/// Requires acceptance and returns the decision (prints the rejection otherwise).
template <class Event>
domain::decision<Event> accepted(const domain::result<domain::decision<Event>>& r) {
  BOOST_REQUIRE_MESSAGE(r.has_value(), "expected acceptance, got " << describe(r));
  return r.value();
}

/// Requires a fresh (not replayed) decision with exactly one event, of type `T`.
template <class T, class Event>
T only_event(const domain::result<domain::decision<Event>>& r) {
  const auto d = accepted(r);
  BOOST_REQUIRE(!d.replayed);
  BOOST_REQUIRE(d.earlier.empty());
  BOOST_REQUIRE_EQUAL(d.events.size(), 1u);
  const T* e = std::get_if<T>(&d.events.front());
  BOOST_REQUIRE_MESSAGE(e != nullptr,
                        "the event has another type (index " << d.events.front().index() << ")");
  return *e;
}

/// Requires a rejection with `code` whose message mentions `mentions`.
template <class Event>
void expect_rejection(const domain::result<domain::decision<Event>>& r, domain::rejection_code code,
                      const std::string& mentions) {
  BOOST_REQUIRE_MESSAGE(!r.has_value(), "expected rejection "
                                            << std::string(domain::to_string(code)) << ", got "
                                            << describe(r));
  BOOST_TEST(std::string(domain::to_string(r.error().code)) ==
             std::string(domain::to_string(code)));
  BOOST_CHECK_MESSAGE(r.error().message.find(mentions) != std::string::npos,
                      "message '" << r.error().message << "' should mention '" << mentions << "'");
}

/// Requires a replay: no new events, `replayed` set and `count` earlier events.
template <class Event>
domain::decision<Event> expect_replay(const domain::result<domain::decision<Event>>& r,
                                      std::size_t count) {
  BOOST_REQUIRE_MESSAGE(r.has_value(), "expected a replay, got " << describe(r));
  const auto& d = r.value();
  BOOST_TEST(d.replayed);
  BOOST_TEST(d.events.empty());
  BOOST_REQUIRE_EQUAL(d.earlier.size(), count);
  BOOST_TEST(&d.outcome() == &d.earlier);
  return d;
}

}  // namespace saga::test

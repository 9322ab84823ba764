// Rules shared by every aggregate's decide(): text limits and encoding, and the
// idempotent-replay lookup. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "domain/idempotency.hpp"
#include "domain/rejection.hpp"

namespace saga::domain {

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points above
/// U+10FFFF) without NUL: JSON needs UTF-8 and PostgreSQL text/jsonb refuse U+0000, so
/// decide() refuses anything else and every accepted event can be stored without loss.
[[nodiscard]] bool is_valid_text(std::string_view text) noexcept;

/// Length and encoding rules for a text field named `field`; `required` also refuses "".
[[nodiscard]] std::optional<rejection> text_error(const std::string& field,
                                                  const std::string& value, bool required);

/// The earlier outcome when `key` is still remembered. Aggregates check it before any other
/// rule so a retried command gets the same answer even after the state moved on; once the key
/// has been forgotten, their business rules must keep the retry harmless.
template <class Event>
[[nodiscard]] std::optional<decision<Event>> replay(const idempotency_memory<Event>& handled,
                                                    const std::string& key) {
  if (key.empty()) return std::nullopt;
  const auto* earlier = handled.find(key);
  if (earlier == nullptr) return std::nullopt;
  decision<Event> d;
  d.replayed = true;
  d.earlier = *earlier;
  return d;
}

/// The idempotency key carried by a command or event variant whose alternatives all have one.
template <class Variant>
[[nodiscard]] const std::string& key_of(const Variant& v) noexcept {
  return std::visit([](const auto& x) -> const std::string& { return x.idempotency_key; }, v);
}

/// The bookkeeping every keyed aggregate's evolve() does after applying `e`: count the
/// version and remember the event under its idempotency key (the oldest key may be forgotten).
template <class State, class Event>
[[nodiscard]] State record_applied(State s, const Event& e) {
  ++s.version;
  const auto& key = key_of(e);
  s.handled.remember(key, e);
  return s;
}

/// A decision that emits exactly `e` (call as emit<event>(…)).
template <class Event, class Alternative>
[[nodiscard]] decision<Event> emit(Alternative e) {
  decision<Event> d;
  d.events.emplace_back(std::move(e));
  return d;
}

}  // namespace saga::domain

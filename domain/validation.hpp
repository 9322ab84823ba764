// Rules shared by every aggregate's decide(): text limits and encoding, and the
// idempotent-replay lookup. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/rejection.hpp"

namespace saga::domain {

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points above
/// U+10FFFF) without NUL: JSON needs UTF-8 and PostgreSQL text/jsonb refuse U+0000, so
/// decide() refuses anything else and every accepted event can be stored without loss.
[[nodiscard]] bool is_valid_text(std::string_view text) noexcept;

/// Length and encoding rules for a text field named `field`; `required` also refuses "".
[[nodiscard]] std::optional<rejection> text_error(const std::string& field,
                                                  const std::string& value, bool required);

/// The earlier outcome when `key` was handled before. Aggregates check it before any other
/// rule so a retried command gets the same answer even after the state moved on.
template <class Event>
[[nodiscard]] std::optional<decision<Event>> replay(
    const std::unordered_map<std::string, std::vector<Event>>& handled, const std::string& key) {
  if (key.empty()) return std::nullopt;
  auto it = handled.find(key);
  if (it == handled.end()) return std::nullopt;
  decision<Event> d;
  d.replayed = true;
  d.earlier = it->second;
  return d;
}

/// A decision that emits exactly `e` (call as emit<event>(…)).
template <class Event, class Alternative>
[[nodiscard]] decision<Event> emit(Alternative e) {
  decision<Event> d;
  d.events.emplace_back(std::move(e));
  return d;
}

}  // namespace saga::domain

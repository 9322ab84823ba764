// Small value types shared by all aggregates. Pure; no clock: time arrives in commands.
#pragma once

#include <cstdint>
#include <string>

namespace saga::domain {

/// Milliseconds since the Unix epoch (UTC). Supplied by the caller, never read here.
using timestamp = std::int64_t;

/// Limits every aggregate enforces (the HTTP layer mirrors them for early 4xx).
inline constexpr std::int64_t max_item_quantity = 1000;
inline constexpr std::size_t max_order_items = 100;
inline constexpr std::size_t max_text_bytes = 1024;

}  // namespace saga::domain

// Money as int64 minor units with overflow-checked arithmetic. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>

namespace saga::domain {

/// An amount in minor units (e.g. won or cents). Never a floating-point value.
using money = std::int64_t;

/// a + b, or nullopt when the sum does not fit.
[[nodiscard]] inline std::optional<money> checked_add(money a, money b) noexcept {
  money out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

/// a * b, or nullopt when the product does not fit.
[[nodiscard]] inline std::optional<money> checked_mul(money a, std::int64_t b) noexcept {
  money out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

}  // namespace saga::domain

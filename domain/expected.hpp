// A minimal C++17 stand-in for std::expected: either a value or an error.
// Value type; not thread-safe beyond what T and E are. Used across layers so
// that business rejections and infrastructure errors are values, not exceptions.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace saga {

/// Wraps an error so that `expected<T, E>` can be built from it unambiguously.
template <class E>
struct unexpected {
  E error;
};

template <class E>
unexpected(E) -> unexpected<E>;

/// Holds either a `T` (success) or an `E` (failure).
template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;

  expected(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  template <class G, class = std::enable_if_t<std::is_constructible_v<E, G>>>
  expected(unexpected<G> err)  // NOLINT
      : data_(std::in_place_index<1>, E(std::move(err.error))) {}

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  [[nodiscard]] T& value() & {
    assert(has_value());
    return std::get<0>(data_);
  }
  [[nodiscard]] const T& value() const& {
    assert(has_value());
    return std::get<0>(data_);
  }
  [[nodiscard]] T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(data_));
  }
  [[nodiscard]] const E& error() const& {
    assert(!has_value());
    return std::get<1>(data_);
  }
  [[nodiscard]] E& error() & {
    assert(!has_value());
    return std::get<1>(data_);
  }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, E> data_;
};

}  // namespace saga

#include "domain/validation.hpp"

#include <cstdint>

#include "domain/types.hpp"

namespace saga::domain {

bool is_valid_text(std::string_view text) noexcept {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0u) == 0xE0u) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;  // stray continuation byte, 0xC0/0xC1 (overlong) or above U+10FFFF
    }
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    i += len;
  }
  return true;
}

std::optional<rejection> text_error(const std::string& field, const std::string& value,
                                    bool required) {
  using rc = rejection_code;
  if (required && value.empty())
    return rejection{rc::invalid_argument, field + " must not be empty"};
  if (value.size() > max_text_bytes)
    return rejection{rc::invalid_argument, field + " is " + std::to_string(value.size()) +
                                               " bytes; the limit is " +
                                               std::to_string(max_text_bytes)};
  if (!is_valid_text(value))
    return rejection{rc::invalid_argument, field + " must be UTF-8 without NUL characters"};
  return std::nullopt;
}

}  // namespace saga::domain

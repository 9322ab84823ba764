// Access tokens: JWT signed with HMAC-SHA256 (HS256, via cpp-jwt) carrying sub, email, role,
// iss, aud, iat and exp. Verification pins the algorithm to HS256. A jwt_codec is immutable
// after construction, so any thread may use one concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "domain/expected.hpp"
#include "domain/user.hpp"

namespace saga::http::auth {

struct jwt_settings {
  std::string secret;  ///< HMAC key; must not be empty
  std::string issuer = "saga-engine";
  std::string audience = "saga-api";
  std::chrono::seconds ttl{3600};
};

/// Who a verified token speaks for.
struct principal {
  std::string user_id;
  std::string email;
  domain::user::role role = domain::user::role::customer;
  std::int64_t expires_at = 0;  ///< epoch seconds
};

/// Tokens longer than this are refused before any parsing.
inline constexpr std::size_t max_token_bytes = 8192;

/// Issues and verifies HS256 tokens with one secret, issuer and audience.
class jwt_codec {
 public:
  /// Throws std::invalid_argument for an empty secret or a non-positive ttl.
  explicit jwt_codec(jwt_settings settings);

  /// A token for `who`, issued at `now_s` (epoch seconds), expiring at now_s + ttl.
  /// Throws std::invalid_argument if a claim cannot be encoded (text that is not UTF-8).
  [[nodiscard]] std::string issue(const principal& who, std::int64_t now_s) const;

  /// The principal of a valid token, or why it is not valid: malformed, another algorithm
  /// (including `none`), bad signature, expired at `now_s` (and by the wall clock), wrong or
  /// missing iss/aud, missing sub or role. Never throws.
  [[nodiscard]] expected<principal, std::string> verify(std::string_view token,
                                                        std::int64_t now_s) const;

  [[nodiscard]] const jwt_settings& settings() const noexcept { return settings_; }

 private:
  jwt_settings settings_;
};

/// Tokens that passed jwt_codec::verify, so that a client's every request does not pay for a
/// whole verification again (two JSON decodes and two HMACs: about 5% of the server's CPU under
/// order load). Keyed by the whole token, so a hit needs the exact bytes of a token that was
/// verified, signature included: it proves what verify proved. Expiry is checked on every hit.
/// Bounded: when full, it starts afresh. Thread-safe.
class verified_tokens {
 public:
  explicit verified_tokens(std::size_t capacity) : capacity_(capacity) {}

  /// The principal of `token` if it was verified and has not expired at `now_s`.
  [[nodiscard]] std::optional<principal> find(std::string_view token, std::int64_t now_s);
  /// Remembers a token that verify accepted for `who`.
  void insert(std::string_view token, const principal& who);
  [[nodiscard]] std::size_t size() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, principal> entries_;
};

}  // namespace saga::http::auth

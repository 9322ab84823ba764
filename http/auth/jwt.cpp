#include "http/auth/jwt.hpp"

#include <array>
#include <limits>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <sodium.h>
#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>

namespace saga::http::auth {

namespace {

using json = nlohmann::json;

constexpr char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64url_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string b64url_encode(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8) | data[i + 2];
    out.push_back(b64url_alphabet[(v >> 18) & 63]);
    out.push_back(b64url_alphabet[(v >> 12) & 63]);
    out.push_back(b64url_alphabet[(v >> 6) & 63]);
    out.push_back(b64url_alphabet[v & 63]);
  }
  if (size - i == 1) {
    const unsigned v = unsigned{data[i]} << 16;
    out.push_back(b64url_alphabet[(v >> 18) & 63]);
    out.push_back(b64url_alphabet[(v >> 12) & 63]);
  } else if (size - i == 2) {
    const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8);
    out.push_back(b64url_alphabet[(v >> 18) & 63]);
    out.push_back(b64url_alphabet[(v >> 12) & 63]);
    out.push_back(b64url_alphabet[(v >> 6) & 63]);
  }
  return out;
}

// Strict unpadded base64url: only the URL alphabet, no impossible lengths, zero spare bits.
std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (const char c : in) {
    const int v = b64url_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// The three non-empty base64url segments of a compact JWS, or nullopt. cpp-jwt indexes its
// decoding table with raw chars (negative for bytes >= 0x80) and asserts on odd shapes, so
// nothing reaches it before this check.
std::optional<std::array<std::string_view, 3>> split_token(std::string_view token) {
  if (token.empty() || token.size() > max_token_bytes) return std::nullopt;
  std::array<std::string_view, 3> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto dot = i < 2 ? token.find('.', start) : token.size();
    if (dot == std::string_view::npos || dot == start) return std::nullopt;
    parts[i] = token.substr(start, dot - start);
    start = dot + 1;
  }
  for (const auto& p : parts)
    for (const char c : p)
      if (b64url_value(c) < 0) return std::nullopt;
  return parts;
}

std::optional<json> decode_object(std::string_view segment) {
  const auto text = b64url_decode(segment);
  if (!text) return std::nullopt;
  auto parsed = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  return parsed;
}

// HMAC-SHA256 of "header.payload", base64url-encoded as the signature segment must be.
std::string hs256_signature(const std::string& secret, std::string_view signing_input) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size());
  crypto_auth_hmacsha256_update(
      &state, reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_final(&state, mac.data());
  sodium_memzero(&state, sizeof state);
  return b64url_encode(mac.data(), mac.size());
}

bool is_integer(const json& v) noexcept { return v.is_number_integer(); }

std::optional<std::int64_t> int_claim(const json& payload, const char* name) {
  const auto it = payload.find(name);
  if (it == payload.end() || !is_integer(*it)) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  return it->get<std::int64_t>();
}

const std::string* string_claim(const json& payload, const char* name) {
  const auto it = payload.find(name);
  if (it == payload.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

std::string library_refusal(const std::error_code& ec) {
  if (ec == jwt::VerificationErrc::TokenExpired) return "token has expired";
  if (ec == jwt::VerificationErrc::InvalidIssuer) return "token issuer is not accepted";
  if (ec == jwt::VerificationErrc::InvalidAudience) return "token audience is not accepted";
  if (ec == jwt::VerificationErrc::InvalidSignature) return "token signature is invalid";
  if (ec == jwt::VerificationErrc::InvalidAlgorithm || ec == jwt::AlgorithmErrc::NoneAlgorithmUsed)
    return "token algorithm must be HS256";
  return "token is not valid: " + ec.message();
}

}  // namespace

jwt_codec::jwt_codec(jwt_settings settings) : settings_(std::move(settings)) {
  if (settings_.secret.empty()) throw std::invalid_argument("JWT secret must not be empty");
  if (settings_.ttl.count() <= 0) throw std::invalid_argument("JWT ttl must be positive");
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
}

std::string jwt_codec::issue(const principal& who, std::int64_t now_s) const {
  try {
    jwt::jwt_object token{jwt::params::algorithm("HS256"), jwt::params::secret(settings_.secret)};
    token.add_claim("sub", who.user_id)
        .add_claim("email", who.email)
        .add_claim("role", std::string(domain::user::to_string(who.role)))
        .add_claim("iss", settings_.issuer)
        .add_claim("aud", settings_.audience)
        .add_claim("iat", now_s)
        .add_claim("exp", now_s + static_cast<std::int64_t>(settings_.ttl.count()));
    std::error_code ec;
    auto text = token.signature(ec);
    if (ec) throw std::invalid_argument("cannot sign token: " + ec.message());
    return text;
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("cannot encode token claims: ") + e.what());
  }
}

expected<principal, std::string> jwt_codec::verify(std::string_view token,
                                                   std::int64_t now_s) const {
  using result = expected<principal, std::string>;
  const auto fail = [](std::string why) -> result { return unexpected{std::move(why)}; };
  try {
    const auto parts = split_token(token);
    if (!parts) return fail("token is malformed");
    const auto header = decode_object((*parts)[0]);
    if (!header) return fail("token header is malformed");
    // The algorithm is ours to choose, not the token's: anything but exactly HS256 (none, HS512,
    // RS256 with our secret as a "public key"…) is refused before any signature check.
    const auto* alg = string_claim(*header, "alg");
    if (alg == nullptr || *alg != "HS256") return fail("token algorithm must be HS256");
    if (const auto typ = header->find("typ"); typ != header->end() && *typ != "JWT")
      return fail("token type must be JWT");
    if (header->contains("crit")) return fail("token header has critical extensions");

    // Constant-time comparison: a byte-by-byte compare would leak how much of a forged
    // signature is right.
    const auto signing_input = token.substr(0, (*parts)[0].size() + 1 + (*parts)[1].size());
    const auto expected_sig = hs256_signature(settings_.secret, signing_input);
    const auto& given_sig = (*parts)[2];
    if (given_sig.size() != expected_sig.size() ||
        sodium_memcmp(given_sig.data(), expected_sig.data(), expected_sig.size()) != 0) {
      return fail("token signature is invalid");
    }

    // The library's own verification, pinned to HS256: signature, iss, aud and exp (against
    // the wall clock). Ours above and below is stricter; both must agree.
    std::error_code ec;
    const auto decoded = jwt::decode(
        jwt::string_view(token.data(), token.size()), jwt::params::algorithms({"HS256"}), ec,
        jwt::params::secret(settings_.secret), jwt::params::issuer(settings_.issuer),
        jwt::params::aud(settings_.audience), jwt::params::verify(true));
    if (ec) return fail(library_refusal(ec));
    if (decoded.header().algo() != jwt::algorithm::HS256)
      return fail("token algorithm must be HS256");

    const auto payload = decode_object((*parts)[1]);
    if (!payload) return fail("token payload is malformed");
    const auto exp = int_claim(*payload, "exp");
    if (!exp) return fail("token has no expiry (exp)");
    if (now_s >= *exp) return fail("token has expired");
    const auto* iss = string_claim(*payload, "iss");
    if (iss == nullptr || *iss != settings_.issuer) return fail("token issuer is not accepted");
    const auto* aud = string_claim(*payload, "aud");
    if (aud == nullptr || *aud != settings_.audience) return fail("token audience is not accepted");
    const auto* sub = string_claim(*payload, "sub");
    if (sub == nullptr || sub->empty()) return fail("token has no subject (sub)");
    const auto* role_name = string_claim(*payload, "role");
    const auto role = role_name != nullptr ? domain::user::parse_role(*role_name) : std::nullopt;
    if (!role) return fail("token has no valid role");
    const auto* email = string_claim(*payload, "email");
    if (email == nullptr) return fail("token has no email");

    principal who;
    who.user_id = *sub;
    who.email = *email;
    who.role = *role;
    who.expires_at = *exp;
    return who;
  } catch (const std::exception& e) {
    return fail(std::string("token is not valid: ") + e.what());
  } catch (...) {
    return fail("token is not valid");
  }
}

std::optional<principal> verified_tokens::find(std::string_view token, std::int64_t now_s) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = entries_.find(std::string(token));
  if (it == entries_.end()) return std::nullopt;
  if (now_s >= it->second.expires_at) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void verified_tokens::insert(std::string_view token, const principal& who) {
  if (capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (entries_.size() >= capacity_) entries_.clear();
  entries_.insert_or_assign(std::string(token), who);
}

std::size_t verified_tokens::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace saga::http::auth

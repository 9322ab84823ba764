// JWT HS256: issue/verify round trip, expiry, issuer and audience, and every forgery we know of:
// alg none (any spelling), other algorithms (HS512, RS256 key confusion), tampered payloads,
// wrong secrets, missing claims and malformed text. Forged tokens are built by hand here (own
// base64url and OpenSSL HMAC), independently of the code under test.
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <boost/test/unit_test.hpp>

#include "http/auth/jwt.hpp"

namespace auth = saga::http::auth;
using saga::domain::user::role;

namespace {

const std::string secret = "test-secret-of-reasonable-length-0123456789";

std::string b64url(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out.push_back(abc[(v >> s) & 63]);
  }
  if (in.size() - i == 1) {
    const unsigned v = byte(i) << 16;
    out.push_back(abc[(v >> 18) & 63]);
    out.push_back(abc[(v >> 12) & 63]);
  } else if (in.size() - i == 2) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(abc[(v >> 18) & 63]);
    out.push_back(abc[(v >> 12) & 63]);
    out.push_back(abc[(v >> 6) & 63]);
  }
  return out;
}

std::string hmac(const EVP_MD* md, const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

/// header.payload.signature with the given JSON texts, signed by `md` (nullptr: no signature).
std::string forge(const std::string& header, const std::string& payload,
                  const EVP_MD* md = EVP_sha256(), const std::string& key = secret) {
  const auto input = b64url(header) + "." + b64url(payload);
  return input + "." + (md != nullptr ? b64url(hmac(md, key, input)) : "");
}

std::int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";

/// A payload with every claim right, for `now`, with `extra` spliced in (JSON members).
std::string claims(std::int64_t now, const std::string& extra = "",
                   const std::string& role_name = "customer") {
  return R"({"sub":"user-1","email":"ann@example.com","role":")" + role_name +
         R"(","iss":"saga-engine","aud":"saga-api","iat":)" + std::to_string(now) + R"(,"exp":)" +
         std::to_string(now + 600) + extra + "}";
}

auth::jwt_codec codec(const std::string& key = secret, const std::string& iss = "saga-engine",
                      const std::string& aud = "saga-api") {
  auth::jwt_settings s;
  s.secret = key;
  s.issuer = iss;
  s.audience = aud;
  s.ttl = std::chrono::seconds(3600);
  return auth::jwt_codec(s);
}

auth::principal ann() { return auth::principal{"user-1", "ann@example.com", role::customer, 0}; }

void expect_refused(const std::string& token, const std::string& fragment,
                    std::int64_t now = wall_now()) {
  const auto r = codec().verify(token, now);
  BOOST_TEST_CONTEXT("token " << token.substr(0, 200)) {
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().find(fragment) != std::string::npos, r.error());
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(auth_jwt)

BOOST_AUTO_TEST_CASE(an_issued_token_verifies_to_its_principal) {
  const auto now = wall_now();
  auto admin = ann();
  admin.role = role::admin;
  admin.email = "Ädmin@example.com";
  const auto token = codec().issue(admin, now);
  const auto r = codec().verify(token, now);
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r.has_value() ? std::string() : r.error()));
  BOOST_TEST(r->user_id == "user-1");
  BOOST_TEST(r->email == "Ädmin@example.com");
  BOOST_TEST((r->role == role::admin));
  BOOST_TEST(r->expires_at == now + 3600);
}

BOOST_AUTO_TEST_CASE(an_issued_token_is_a_plain_hs256_jws) {
  const auto now = wall_now();
  const auto token = codec().issue(ann(), now);
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  BOOST_REQUIRE(second != std::string::npos);
  BOOST_TEST(token.find('.', second + 1) == std::string::npos);
  // Our own HMAC over the first two segments reproduces the signature.
  BOOST_TEST(token.substr(second + 1) ==
             b64url(hmac(EVP_sha256(), secret, token.substr(0, second))));
}

BOOST_AUTO_TEST_CASE(a_hand_made_token_with_correct_claims_verifies) {
  // Proves the forging helpers agree with the codec, so the refusals below are meaningful.
  const auto now = wall_now();
  const auto r = codec().verify(forge(hs256, claims(now)), now);
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r.has_value() ? std::string() : r.error()));
  BOOST_TEST(r->email == "ann@example.com");
  BOOST_TEST(codec().verify(forge(R"({"alg":"HS256"})", claims(now)), now).has_value());
}

BOOST_AUTO_TEST_CASE(a_token_expires_at_exp) {
  const auto now = wall_now();
  const auto token = codec().issue(ann(), now);
  BOOST_TEST(codec().verify(token, now + 3599).has_value());
  expect_refused(token, "expired", now + 3600);
  expect_refused(token, "expired", now + 100000);
}

BOOST_AUTO_TEST_CASE(a_token_expired_by_the_wall_clock_is_refused_whatever_now_s_says) {
  const auto long_ago = wall_now() - 7200;
  const auto token = codec().issue(ann(), long_ago);  // exp = one hour ago
  expect_refused(token, "expired", long_ago + 10);
}

BOOST_AUTO_TEST_CASE(alg_none_is_refused_in_every_spelling) {
  const auto now = wall_now();
  for (const std::string alg : {"none", "None", "NONE", "nOnE"}) {
    const auto header = R"({"alg":")" + alg + R"(","typ":"JWT"})";
    expect_refused(forge(header, claims(now), nullptr), "malformed");  // "h.p.": no signature
    // Even with a signature that is right for HS256 over the same bytes.
    expect_refused(forge(header, claims(now)), "HS256");
    // And without the trailing dot.
    expect_refused(b64url(header) + "." + b64url(claims(now)), "malformed");
  }
  expect_refused(forge(R"({"typ":"JWT"})", claims(now)), "HS256");
  expect_refused(forge(R"({"alg":null})", claims(now)), "HS256");
  expect_refused(forge(R"({"alg":256})", claims(now)), "HS256");
  expect_refused(forge(R"({"alg":"hs256"})", claims(now)), "HS256");
}

BOOST_AUTO_TEST_CASE(other_algorithms_are_refused_even_with_a_valid_signature) {
  const auto now = wall_now();
  expect_refused(forge(R"({"alg":"HS512","typ":"JWT"})", claims(now), EVP_sha512()), "HS256");
  expect_refused(forge(R"({"alg":"HS384","typ":"JWT"})", claims(now), EVP_sha384()), "HS256");
  // Key confusion: RS256 "verified" with the HMAC secret as if it were a public key.
  expect_refused(forge(R"({"alg":"RS256","typ":"JWT"})", claims(now)), "HS256");
  expect_refused(forge(R"({"alg":"ES256","typ":"JWT"})", claims(now)), "HS256");
}

BOOST_AUTO_TEST_CASE(a_tampered_payload_or_a_foreign_secret_fails_the_signature) {
  const auto now = wall_now();
  const auto token = codec().issue(ann(), now);
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  // Same signature, payload promoted to admin.
  const auto tampered =
      b64url(hs256) + "." + b64url(claims(now, "", "admin")) + token.substr(second);
  expect_refused(tampered, "signature");
  // Signature of another secret.
  expect_refused(forge(hs256, claims(now), EVP_sha256(), "another-secret"), "signature");
  expect_refused(codec("another-secret").issue(ann(), now), "signature");
  // One flipped character of the signature; the signature cut short; an empty signature.
  auto flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  expect_refused(flipped, "signature");
  expect_refused(token.substr(0, token.size() - 2), "signature");
  expect_refused(token.substr(0, second + 1), "malformed");
}

BOOST_AUTO_TEST_CASE(issuer_and_audience_must_match) {
  const auto now = wall_now();
  expect_refused(codec(secret, "someone-else").issue(ann(), now), "issuer");
  expect_refused(codec(secret, "saga-engine", "other-api").issue(ann(), now), "audience");
  const std::string base =
      R"({"sub":"user-1","email":"a@b.c","role":"customer","exp":)" + std::to_string(now + 600);
  expect_refused(forge(hs256, base + R"(,"aud":"saga-api"})"), "issuer");
  expect_refused(forge(hs256, base + R"(,"iss":"saga-engine"})"), "audience");
  expect_refused(forge(hs256, base + R"(,"iss":"saga-engine","aud":["saga-api"]})"), "");
  expect_refused(forge(hs256, base + R"(,"iss":7,"aud":"saga-api"})"), "");
}

BOOST_AUTO_TEST_CASE(subject_role_email_and_expiry_are_required) {
  const auto now = wall_now();
  const auto tail = R"(,"iss":"saga-engine","aud":"saga-api","exp":)" + std::to_string(now + 600);
  expect_refused(forge(hs256, R"({"email":"a@b.c","role":"customer")" + tail + "}"), "sub");
  expect_refused(forge(hs256, R"({"sub":"","email":"a@b.c","role":"customer")" + tail + "}"),
                 "sub");
  expect_refused(forge(hs256, R"({"sub":42,"email":"a@b.c","role":"customer")" + tail + "}"),
                 "sub");
  expect_refused(forge(hs256, R"({"sub":"u","email":"a@b.c")" + tail + "}"), "role");
  expect_refused(forge(hs256, R"({"sub":"u","email":"a@b.c","role":"root")" + tail + "}"), "role");
  expect_refused(forge(hs256, R"({"sub":"u","role":"admin")" + tail + "}"), "email");
  expect_refused(
      forge(hs256,
            R"({"sub":"u","email":"a@b.c","role":"admin","iss":"saga-engine","aud":"saga-api"})"),
      "exp");
  expect_refused(
      forge(
          hs256,
          R"({"sub":"u","email":"a@b.c","role":"admin","iss":"saga-engine","aud":"saga-api","exp":")" +
              std::to_string(now + 600) + "\"}"),
      "");
  expect_refused(
      forge(
          hs256,
          R"({"sub":"u","email":"a@b.c","role":"admin","iss":"saga-engine","aud":"saga-api","exp":1.5e12})"),
      "exp");
}

BOOST_AUTO_TEST_CASE(header_extensions_we_do_not_understand_are_refused) {
  const auto now = wall_now();
  expect_refused(forge(R"({"alg":"HS256","typ":"JWE"})", claims(now)), "type");
  expect_refused(forge(R"({"alg":"HS256","crit":["b64"],"b64":false})", claims(now)), "critical");
}

BOOST_AUTO_TEST_CASE(malformed_text_is_refused_without_crashing) {
  const auto now = wall_now();
  const auto good = codec().issue(ann(), now);
  const std::vector<std::string> bad = {
      "",
      "abc",
      "a.b",
      "a..c",
      "..",
      "...",
      "a.b.c.d",
      good + ".",
      good + "=",
      "\xff\xfe.\x80\x81.\xc3\xa9",       // bytes >= 0x80 (cpp-jwt would index with them)
      std::string("ab\0cd.ef.gh", 11),    // NUL
      "eyJhbGciOiJIUzI1NiJ9.e30.A+B/C=",  // standard base64, padding
      "a.b.c",                            // segments that are not JSON
      b64url("[1,2]") + "." + b64url("{}") + ".sig",  // header not an object
      b64url(hs256) + "." + b64url("not json") + ".sig",
      std::string(auth::max_token_bytes + 1, 'a'),
      " " + good,
      "Bearer " + good,
  };
  for (const auto& token : bad) {
    const auto r = codec().verify(token, now);
    BOOST_TEST(!r.has_value(), "accepted: " << token.substr(0, 80));
  }
  // A well-signed token whose payload is not JSON.
  expect_refused(forge(hs256, "definitely not json"), "");
  // Sanity: the good token itself passes.
  BOOST_TEST(codec().verify(good, now).has_value());
}

BOOST_AUTO_TEST_CASE(settings_are_checked_at_construction) {
  BOOST_CHECK_THROW(codec(""), std::invalid_argument);
  auth::jwt_settings s;
  s.secret = "x";
  s.ttl = std::chrono::seconds(0);
  BOOST_CHECK_THROW(auth::jwt_codec{s}, std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(claims_that_are_not_utf8_cannot_be_issued) {
  auto bad = ann();
  bad.email = "\xff\xfe@example.com";
  BOOST_CHECK_THROW((void)codec().issue(bad, wall_now()), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_verified_token_is_known_until_it_expires_and_only_byte_for_byte) {
  const auto now = wall_now();
  const auto token = codec().issue(ann(), now);
  const auto verified = codec().verify(token, now);
  BOOST_REQUIRE(verified.has_value());
  auth::verified_tokens tokens(2);
  BOOST_TEST(!tokens.find(token, now).has_value());
  tokens.insert(token, *verified);

  const auto known = tokens.find(token, now + 10);
  BOOST_REQUIRE(known.has_value());
  BOOST_TEST(known->user_id == "user-1");
  BOOST_TEST(known->expires_at == now + 3600);
  // Another signature (or any other byte) is another token, verified afresh by the caller.
  auto forged = token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  BOOST_TEST(!tokens.find(forged, now).has_value());
  BOOST_TEST(!codec().verify(forged, now).has_value());
  // At exp it is gone.
  BOOST_TEST(!tokens.find(token, now + 3600).has_value());
  BOOST_TEST(tokens.size() == 0u);

  // Bounded.
  tokens.insert(token, *verified);
  tokens.insert(codec().issue(ann(), now + 1), *verified);
  tokens.insert(codec().issue(ann(), now + 2), *verified);
  BOOST_TEST(tokens.size() <= 2u);
}

BOOST_AUTO_TEST_SUITE_END()

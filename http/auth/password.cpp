#include "http/auth/password.hpp"

#include <stdexcept>

#include <sodium.h>

namespace saga::http::auth {

namespace {

// sodium_init() must run before any other libsodium call; a function-local static makes the
// first caller run it exactly once even when several threads race here.
void ensure_sodium() {
  static const int ready = sodium_init();
  if (ready < 0) throw std::runtime_error("libsodium failed to initialize");
}

}  // namespace

std::string hash_password(std::string_view password) {
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("argon2id hashing failed (out of memory)");
  }
  return std::string(out);
}

bool verify_password(std::string_view password, const std::string& encoded_hash) {
  ensure_sodium();
  // libsodium reads a NUL-terminated string of at most STRBYTES - 1 characters; anything longer
  // (or holding a NUL) is not a hash it produced.
  if (encoded_hash.empty() || encoded_hash.size() >= crypto_pwhash_STRBYTES ||
      encoded_hash.find('\0') != std::string::npos) {
    return false;
  }
  // Only argon2id hashes are ours; refusing others keeps a weaker stored algorithm from passing.
  if (encoded_hash.compare(0, 10, "$argon2id$") != 0) return false;
  return crypto_pwhash_str_verify(encoded_hash.c_str(), password.data(), password.size()) == 0;
}

}  // namespace saga::http::auth

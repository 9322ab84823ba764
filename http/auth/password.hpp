// Password hashing: argon2id (libsodium's crypto_pwhash_str with the interactive limits), in the
// self-describing PHC string format. Stateless and thread-safe; each call takes ~50-100 ms and
// 64 MiB, so call it from worker threads only, never from HTTP or CAF threads.
#pragma once

#include <string>
#include <string_view>

namespace saga::http::auth {

/// The argon2id hash of `password` as a PHC string ("$argon2id$v=19$m=65536,t=2,p=1$…").
/// Throws std::runtime_error if libsodium cannot start or runs out of memory.
[[nodiscard]] std::string hash_password(std::string_view password);

/// True when `password` matches `encoded_hash`; false for a wrong password or a malformed hash.
[[nodiscard]] bool verify_password(std::string_view password, const std::string& encoded_hash);

}  // namespace saga::http::auth

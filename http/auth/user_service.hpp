// Registration, login and the bootstrap admin. The blocking work (argon2id hashing, PostgreSQL)
// runs on the service's own worker threads, never on HTTP or CAF threads; each worker owns its
// own database connection. Public methods are thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "domain/expected.hpp"
#include "domain/types.hpp"
#include "domain/user.hpp"

namespace saga::http::auth {

/// An account as the API shows it (never the password hash).
struct user_record {
  std::string user_id;
  std::string email;  ///< lower-cased (ASCII letters)
  std::string name;
  domain::user::role role = domain::user::role::customer;
  domain::timestamp created_at = 0;  ///< ms since the Unix epoch
};

enum class auth_errc {
  invalid_argument,  ///< malformed e-mail, password or name (422)
  email_taken,       ///< registration with an e-mail that has an account (409)
  bad_credentials,   ///< unknown e-mail or wrong password: deliberately not told apart (401)
  unavailable,       ///< database down, queue full or service stopping (503)
};

struct auth_error {
  auth_errc code = auth_errc::unavailable;
  std::string message;  ///< safe to show to the client: no SQL, never a password
};

using user_result = expected<user_record, auth_error>;

/// Input limits (bytes).
inline constexpr std::size_t min_password_bytes = 8;
inline constexpr std::size_t max_password_bytes = 1024;
inline constexpr std::size_t max_email_bytes = 1024;
inline constexpr std::size_t max_name_bytes = 1024;

/// Why `email` is not an acceptable address (name@domain, UTF-8, no spaces), or "" if it is.
[[nodiscard]] std::string email_problem(const std::string& email);

/// Accounts over PostgreSQL (table `users`; migrations must already be applied).
class user_service {
 public:
  /// Starts `workers` threads (at least one); connections open lazily. At most `max_pending`
  /// requests wait for a worker; beyond that requests are refused as unavailable at once.
  explicit user_service(std::string database_url, std::string schema = "", std::size_t workers = 2,
                        std::size_t max_pending = 1024);
  /// Stops the workers after their current request; queued requests are answered unavailable.
  ~user_service();
  user_service(const user_service&) = delete;
  user_service& operator=(const user_service&) = delete;

  /// Creates an account with a fresh UUID. `done` runs exactly once: on a worker thread, or on
  /// the calling thread before this returns when the input is invalid or the queue is full.
  void register_user(std::string email, std::string password, std::string name,
                     domain::user::role role, std::function<void(user_result)> done);

  /// Checks credentials; unknown e-mail and wrong password give the same bad_credentials and
  /// cost the same hash verification. `done` runs as for register_user.
  void login(std::string email, std::string password, std::function<void(user_result)> done);

  /// Start-up bootstrap, blocking (its own connection, on the calling thread): creates the admin
  /// if the e-mail is unknown; for an existing admin, the configured password wins (its hash is
  /// replaced when it no longer matches), so restarts are idempotent; an existing customer with
  /// this e-mail is an error, never silently promoted.
  [[nodiscard]] user_result ensure_admin(const std::string& email, const std::string& password);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::http::auth

// Accounts of the HTTP API in PostgreSQL (table `users`, migration 0005_users.sql): insert and
// look up by e-mail or id. One connection per instance, opened lazily and re-opened after a
// failure. NOT thread-safe: an instance is owned by one thread (a user_service worker).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/expected.hpp"
#include "domain/types.hpp"
#include "domain/user.hpp"
#include "persistence/event_store.hpp"

namespace saga::persistence {

/// A stored account.
struct user_row {
  std::string user_id;
  std::string email;  ///< normalized (see normalize_email)
  std::string name;
  std::string password_hash;
  domain::user::role role = domain::user::role::customer;
  domain::timestamp created_at = 0;  ///< ms since the Unix epoch, set by the database
};

/// An account to insert; the e-mail is normalized by the store.
struct new_user {
  std::string user_id;
  std::string email;
  std::string name;
  std::string password_hash;
  domain::user::role role = domain::user::role::customer;
};

enum class user_errc {
  email_taken,      ///< another account has this e-mail (compared after normalization)
  id_taken,         ///< another account has this user id
  invalid_request,  ///< the row breaks a table rule (empty id, text too long, bad UTF-8…)
  unavailable,      ///< the database cannot be reached or is overloaded; retry later
  internal,         ///< a bug or a broken database (e.g. migrations not applied)
};

/// Short stable name of an error code, for logs and tests.
[[nodiscard]] const char* to_string(user_errc code) noexcept;

struct user_error {
  user_errc code = user_errc::internal;
  std::string message;
};

/// The stored form of an e-mail: ASCII letters lower-cased, everything else kept, so that
/// "Ann@Example.com" and "ann@example.com" are one account whatever the database locale.
[[nodiscard]] std::string normalize_email(std::string_view email);

struct user_store_options {
  std::string database_url;
  /// Schema holding the `users` table; empty = the connection's default search_path.
  std::string schema;
  std::string application_name = "saga-users";
};

/// The PostgreSQL account store. E-mail uniqueness is the table's UNIQUE index, so concurrent
/// inserts of one e-mail (from any number of processes) end with exactly one account.
class pg_user_store {
 public:
  explicit pg_user_store(user_store_options options);
  ~pg_user_store();
  pg_user_store(const pg_user_store&) = delete;
  pg_user_store& operator=(const pg_user_store&) = delete;

  /// Inserts `user` and returns the stored row (with created_at), or email_taken / id_taken.
  [[nodiscard]] expected<user_row, user_error> insert(const new_user& user);
  /// The account with this e-mail (normalized before the lookup), or nullopt.
  [[nodiscard]] expected<std::optional<user_row>, user_error> find_by_email(std::string_view email);
  /// The account with this id, or nullopt.
  [[nodiscard]] expected<std::optional<user_row>, user_error> find_by_id(
      const std::string& user_id);
  /// Replaces an account's password hash; false when no account has this id.
  [[nodiscard]] expected<bool, user_error> set_password_hash(const std::string& user_id,
                                                             const std::string& password_hash);
  /// Connects now if not connected (otherwise the next call does); fails clearly when the
  /// `users` table is missing.
  [[nodiscard]] expected<done, user_error> connect();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::persistence

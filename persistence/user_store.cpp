#include "persistence/user_store.hpp"

#include <cstdint>
#include <stdexcept>
#include <utility>

#include <pqxx/pqxx>

#include "persistence/pg_error.hpp"

namespace saga::persistence {

namespace {

#define SAGA_USER_COLUMNS \
  "user_id, email, name, password_hash, role, (extract(epoch FROM created_at) * 1000)::bigint"

constexpr const char* insert_stmt = "saga_user_insert";
// ON CONFLICT on the e-mail index waits for a concurrent insert of the same e-mail and then
// returns no row, so a duplicate is an ordinary answer rather than an aborted transaction.
constexpr const char* insert_sql =
    "INSERT INTO users (user_id, email, name, password_hash, role) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (email) DO NOTHING RETURNING " SAGA_USER_COLUMNS;

constexpr const char* by_email_stmt = "saga_user_by_email";
constexpr const char* by_email_sql = "SELECT " SAGA_USER_COLUMNS " FROM users WHERE email = $1";

constexpr const char* by_id_stmt = "saga_user_by_id";
constexpr const char* by_id_sql = "SELECT " SAGA_USER_COLUMNS " FROM users WHERE user_id = $1";

constexpr const char* set_hash_stmt = "saga_user_set_hash";
constexpr const char* set_hash_sql = "UPDATE users SET password_hash = $2 WHERE user_id = $1";

#undef SAGA_USER_COLUMNS

user_error error_from(const detail::classified_error& c) {
  switch (c.error.code) {
    case store_errc::retryable:
      return user_error{user_errc::unavailable, c.error.message};
    case store_errc::invalid_request:
      return user_error{user_errc::invalid_request, c.error.message};
    case store_errc::version_conflict:
    case store_errc::internal:
      break;
  }
  return user_error{user_errc::internal, c.error.message};
}

user_row row_from(const pqxx::row& r) {
  user_row u;
  u.user_id = r[0].c_str();
  u.email = r[1].c_str();
  u.name = r[2].c_str();
  u.password_hash = r[3].c_str();
  const auto role = domain::user::parse_role(r[4].c_str());
  // The table's CHECK allows only known roles; anything else means the schema drifted.
  if (!role)
    throw std::runtime_error(std::string("users row has unknown role '") + r[4].c_str() + "'");
  u.role = *role;
  u.created_at = r[5].as<std::int64_t>();
  return u;
}

}  // namespace

const char* to_string(user_errc code) noexcept {
  switch (code) {
    case user_errc::email_taken:
      return "email_taken";
    case user_errc::id_taken:
      return "id_taken";
    case user_errc::invalid_request:
      return "invalid_request";
    case user_errc::unavailable:
      return "unavailable";
    case user_errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string normalize_email(std::string_view email) {
  std::string out(email);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

struct pg_user_store::impl {
  user_store_options options;
  std::unique_ptr<pqxx::connection> conn;

  std::optional<user_error> ensure_connected();
  user_error fail(const std::string& context);
  template <class T, class F>
  expected<T, user_error> guarded(const char* context, F&& body);
};

std::optional<user_error> pg_user_store::impl::ensure_connected() {
  if (conn && conn->is_open()) return std::nullopt;
  conn.reset();
  try {
    auto c = std::make_unique<pqxx::connection>(options.database_url);
    // libpqxx 6 would silently reconnect and lose the search_path; we reconnect ourselves.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    c->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    {
      pqxx::nontransaction tx(*c);
      std::string setup = "SET application_name TO " + tx.quote(options.application_name);
      if (!options.schema.empty()) setup += "; SET search_path TO " + tx.quote_name(options.schema);
      // Fail here, clearly, if migration 0005 has not been applied.
      setup += "; SELECT 'users'::regclass";
      tx.exec(setup);
    }
    c->prepare(insert_stmt, insert_sql);
    c->prepare(by_email_stmt, by_email_sql);
    c->prepare(by_id_stmt, by_id_sql);
    c->prepare(set_hash_stmt, set_hash_sql);
    conn = std::move(c);
    return std::nullopt;
  } catch (...) {
    return error_from(detail::classify_current_exception("connecting to PostgreSQL (users)"));
  }
}

// Classifies the exception being handled and drops the connection if it cannot be reused.
user_error pg_user_store::impl::fail(const std::string& context) {
  auto c = detail::classify_current_exception(context);
  if (c.connection_unusable || (conn && !conn->is_open())) {
    conn.reset();
    return user_error{user_errc::unavailable, c.error.message};
  }
  if (c.unique_violation) {
    // The e-mail conflict is absorbed by ON CONFLICT, so this is the primary key.
    return user_error{user_errc::id_taken, c.error.message};
  }
  return error_from(c);
}

template <class T, class F>
expected<T, user_error> pg_user_store::impl::guarded(const char* context, F&& body) {
  if (auto error = ensure_connected()) return unexpected{std::move(*error)};
  try {
    return body();
  } catch (...) {
    return unexpected{fail(context)};
  }
}

pg_user_store::pg_user_store(user_store_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
}

pg_user_store::~pg_user_store() = default;

expected<done, user_error> pg_user_store::connect() {
  if (auto error = impl_->ensure_connected()) return unexpected{std::move(*error)};
  return done{};
}

expected<user_row, user_error> pg_user_store::insert(const new_user& user) {
  const auto email = normalize_email(user.email);
  // libpq passes parameters as C strings: a NUL would silently cut the value short.
  for (const auto* field : {&user.user_id, &email, &user.name, &user.password_hash}) {
    if (field->find('\0') != std::string::npos) {
      return unexpected{user_error{user_errc::invalid_request, "user fields must not hold NUL"}};
    }
  }
  return impl_->guarded<user_row>("inserting a user", [&]() -> expected<user_row, user_error> {
    pqxx::work tx(*impl_->conn);
    const auto rows =
        tx.exec_prepared(insert_stmt, user.user_id, email, user.name, user.password_hash,
                         std::string(domain::user::to_string(user.role)));
    if (rows.empty()) {
      tx.abort();
      return unexpected{
          user_error{user_errc::email_taken, "e-mail " + email + " is already registered"}};
    }
    auto row = row_from(rows[0]);
    tx.commit();
    return row;
  });
}

expected<std::optional<user_row>, user_error> pg_user_store::find_by_email(std::string_view email) {
  const auto normalized = normalize_email(email);
  // No stored e-mail holds a NUL (insert refuses it); libpq would cut the value at it.
  if (normalized.find('\0') != std::string::npos) return std::optional<user_row>{};
  return impl_->guarded<std::optional<user_row>>(
      "finding a user by e-mail", [&]() -> std::optional<user_row> {
        pqxx::nontransaction tx(*impl_->conn);
        const auto rows = tx.exec_prepared(by_email_stmt, normalized);
        if (rows.empty()) return std::nullopt;
        return row_from(rows[0]);
      });
}

expected<std::optional<user_row>, user_error> pg_user_store::find_by_id(
    const std::string& user_id) {
  if (user_id.find('\0') != std::string::npos) return std::optional<user_row>{};
  return impl_->guarded<std::optional<user_row>>(
      "finding a user by id", [&]() -> std::optional<user_row> {
        pqxx::nontransaction tx(*impl_->conn);
        const auto rows = tx.exec_prepared(by_id_stmt, user_id);
        if (rows.empty()) return std::nullopt;
        return row_from(rows[0]);
      });
}

expected<bool, user_error> pg_user_store::set_password_hash(const std::string& user_id,
                                                            const std::string& password_hash) {
  if (user_id.find('\0') != std::string::npos || password_hash.find('\0') != std::string::npos) {
    return unexpected{user_error{user_errc::invalid_request, "user fields must not hold NUL"}};
  }
  return impl_->guarded<bool>("updating a password hash", [&]() -> bool {
    pqxx::work tx(*impl_->conn);
    const auto result = tx.exec_prepared(set_hash_stmt, user_id, password_hash);
    tx.commit();
    return result.affected_rows() > 0;
  });
}

}  // namespace saga::persistence

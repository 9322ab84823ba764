// User aggregate: registration only. Pure. Passwords arrive already hashed (argon2id is
// computed by the caller, off the HTTP threads); the domain never sees a plain password.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/rejection.hpp"
#include "domain/types.hpp"

namespace saga::domain::user {

enum class role { customer, admin };
[[nodiscard]] std::string_view to_string(role r) noexcept;  ///< "customer" | "admin"
/// Inverse of to_string; nullopt for an unknown name.
[[nodiscard]] std::optional<role> parse_role(std::string_view name) noexcept;

struct register_user {
  std::string user_id;
  std::string email;
  std::string name;
  std::string password_hash;
  role role_ = role::customer;
  timestamp at = 0;
};
using command = std::variant<register_user>;

struct user_registered {
  std::string user_id;
  std::string email;
  std::string name;
  std::string password_hash;
  role role_ = role::customer;
  timestamp at = 0;
};
using event = std::variant<user_registered>;

struct state {
  bool registered = false;
  std::string user_id;
  std::string email;
  std::string name;
  std::string password_hash;
  role role_ = role::customer;
  timestamp registered_at = 0;
  std::int64_t version = 0;
};

[[nodiscard]] result<decision<event>> decide(const state& s, const command& cmd);
[[nodiscard]] state evolve(state s, const event& e);

}  // namespace saga::domain::user

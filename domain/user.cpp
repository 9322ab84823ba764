#include "domain/user.hpp"

#include <optional>
#include <string>
#include <utility>

#include "domain/validation.hpp"

namespace saga::domain::user {

namespace {

using rc = rejection_code;

result<decision<event>> decide_register(const state& s, const register_user& c) {
  if (s.registered)
    return reject(rc::already_exists, "user " + s.user_id + " is already registered");
  if (auto bad = text_error("user_id", c.user_id, true)) return unexpected{*bad};
  if (auto bad = text_error("email", c.email, true)) return unexpected{*bad};
  const auto at = c.email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == c.email.size())
    return reject(rc::invalid_argument, "email '" + c.email + "' must look like name@domain");
  if (auto bad = text_error("name", c.name, true)) return unexpected{*bad};
  if (auto bad = text_error("password_hash", c.password_hash, true)) return unexpected{*bad};
  decision<event> d;
  d.events.push_back(user_registered{c.user_id, c.email, c.name, c.password_hash, c.role_, c.at});
  return d;
}

struct command_handler {
  const state& s;
  result<decision<event>> operator()(const register_user& c) const { return decide_register(s, c); }
};

struct event_handler {
  state& s;
  void operator()(const user_registered& e) const {
    s.registered = true;
    s.user_id = e.user_id;
    s.email = e.email;
    s.name = e.name;
    s.password_hash = e.password_hash;
    s.role_ = e.role_;
    s.registered_at = e.at;
  }
};

}  // namespace

std::string_view to_string(role r) noexcept {
  switch (r) {
    case role::customer:
      return "customer";
    case role::admin:
      return "admin";
  }
  return "unknown";
}

std::optional<role> parse_role(std::string_view name) noexcept {
  for (auto r : {role::customer, role::admin})
    if (to_string(r) == name) return r;
  return std::nullopt;
}

// Users carry no idempotency key: registration is keyed by user_id (and e-mail uniqueness
// is enforced by the read model), so a repeat is simply already_exists.
result<decision<event>> decide(const state& s, const command& cmd) {
  return std::visit(command_handler{s}, cmd);
}

state evolve(state s, const event& e) {
  std::visit(event_handler{s}, e);
  ++s.version;
  return s;
}

}  // namespace saga::domain::user

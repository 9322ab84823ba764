// POST /auth/register and POST /auth/login: validation here, hashing and the database on the
// user service's workers; rate limits per e-mail and per client address on login.
#include <algorithm>
#include <cctype>

#include "http/bodies.hpp"
#include "http/server_internal.hpp"

namespace saga::http::detail {

namespace {

problem auth_problem(const auth::auth_error& e) {
  switch (e.code) {
    case auth::auth_errc::invalid_argument:
      return make_problem(422, e.message);
    case auth::auth_errc::email_taken:
      return make_problem(409, "an account with this e-mail already exists");
    case auth::auth_errc::bad_credentials:
      return make_problem(401, "wrong e-mail or password");
    case auth::auth_errc::unavailable:
      break;
  }
  return make_problem(503, "the account service is unavailable; retry later");
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

header_list retry_after(std::chrono::seconds wait) {
  return {{"Retry-After", std::to_string(std::max<std::int64_t>(1, wait.count()))}};
}

void register_user(const exchange_ptr& ex) {
  auto body = parse_register_body(ex->body());
  if (!body) {
    ex->reply_problem(body.error());
    return;
  }
  auto& b = body.value();
  ex->core->users.register_user(std::move(b.email), std::move(b.password), std::move(b.name),
                                domain::user::role::customer, [ex](auth::user_result result) {
                                  if (!result) {
                                    ex->reply_problem(auth_problem(result.error()));
                                    return;
                                  }
                                  const auto& u = result.value();
                                  ex->reply_json(
                                      201,
                                      {{"userId", u.user_id},
                                       {"email", u.email},
                                       {"name", u.name},
                                       {"role", std::string(domain::user::to_string(u.role))}},
                                      {{"Location", "/users/" + u.user_id}});
                                });
}

void login(const exchange_ptr& ex) {
  auto body = parse_login_body(ex->body());
  if (!body) {
    ex->reply_problem(body.error());
    return;
  }
  auto& b = body.value();
  auto& core = *ex->core;
  if (auto wait = core.login_by_address.acquire(ex->client_address())) {
    ex->reply_problem(429, "too many login attempts from this address", retry_after(*wait));
    return;
  }
  if (auto wait = core.login_by_email.acquire(lower(b.email))) {
    ex->reply_problem(429, "too many login attempts for this account", retry_after(*wait));
    return;
  }
  core.users.login(std::move(b.email), std::move(b.password), [ex](auth::user_result result) {
    if (!result) {
      const bool unauthorized = result.error().code == auth::auth_errc::bad_credentials ||
                                result.error().code == auth::auth_errc::invalid_argument;
      if (unauthorized)
        ex->reply_problem(401, "wrong e-mail or password",
                          {{"WWW-Authenticate", "Bearer realm=\"saga-api\""}});
      else
        ex->reply_problem(auth_problem(result.error()));
      return;
    }
    const auto& u = result.value();
    auto& c = *ex->core;
    const auto now = c.now_s();
    auth::principal who{u.user_id, u.email, u.role, now + c.jwt.settings().ttl.count()};
    std::string token;
    try {
      token = c.jwt.issue(who, now);
    } catch (const std::exception& e) {
      ex->reply_problem(500, std::string("cannot issue a token: ") + e.what());
      return;
    }
    ex->reply_json(200, {{"accessToken", std::move(token)},
                         {"tokenType", "Bearer"},
                         {"expiresIn", c.jwt.settings().ttl.count()}});
  });
}

}  // namespace

void add_auth_handlers(handler_table& table) {
  table[{"POST", "/auth/register"}] = register_user;
  table[{"POST", "/auth/login"}] = login;
}

}  // namespace saga::http::detail

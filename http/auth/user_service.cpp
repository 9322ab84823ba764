#include "http/auth/user_service.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "domain/validation.hpp"
#include "http/auth/password.hpp"
#include "persistence/user_store.hpp"

namespace saga::http::auth {

namespace {

namespace sp = saga::persistence;

constexpr const char* bad_credentials_message = "invalid e-mail or password";
constexpr const char* unavailable_message = "the account service is unavailable; try again later";

auth_error error(auth_errc code, std::string message) {
  return auth_error{code, std::move(message)};
}

user_record record_from(const sp::user_row& row) {
  return user_record{row.user_id, row.email, row.name, row.role, row.created_at};
}

// Store failures reach clients as a generic message; the detail (SQL state, host) goes to the log.
auth_error from_store(const sp::user_error& e, const char* what) {
  switch (e.code) {
    case sp::user_errc::email_taken:
      return error(auth_errc::email_taken, "an account with this e-mail already exists");
    case sp::user_errc::invalid_request:
      return error(auth_errc::invalid_argument, "the account data is not acceptable");
    case sp::user_errc::id_taken:
    case sp::user_errc::unavailable:
    case sp::user_errc::internal:
      break;
  }
  spdlog::warn("user service: {} failed: [{}] {}", what, sp::to_string(e.code), e.message);
  return error(auth_errc::unavailable, unavailable_message);
}

std::optional<auth_error> password_problem(const std::string& password) {
  if (password.size() < min_password_bytes || password.size() > max_password_bytes) {
    return error(auth_errc::invalid_argument,
                 "password must be " + std::to_string(min_password_bytes) + " to " +
                     std::to_string(max_password_bytes) + " bytes long");
  }
  return std::nullopt;
}

std::optional<auth_error> registration_problem(const std::string& email,
                                               const std::string& password,
                                               const std::string& name) {
  if (auto why = email_problem(email); !why.empty())
    return error(auth_errc::invalid_argument, std::move(why));
  if (auto bad = password_problem(password)) return bad;
  if (name.empty()) return error(auth_errc::invalid_argument, "name must not be empty");
  if (name.size() > max_name_bytes)
    return error(auth_errc::invalid_argument,
                 "name must be at most " + std::to_string(max_name_bytes) + " bytes long");
  if (!domain::is_valid_text(name))
    return error(auth_errc::invalid_argument, "name must be valid UTF-8 without NUL");
  return std::nullopt;
}

// The cost of one verification against a real argon2id hash, for logins with an unknown e-mail:
// without it, "no such account" would answer ~100 ms faster than "wrong password".
const std::string& decoy_hash() {
  static const std::string hash = hash_password("decoy password, never matches a login");
  return hash;
}

void deliver(const std::function<void(user_result)>& done, user_result result) {
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    spdlog::error("user service: a completion callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("user service: a completion callback threw");
  }
}

user_result do_register(sp::pg_user_store& store, const std::string& email,
                        const std::string& password, const std::string& name,
                        domain::user::role role) {
  // A cheap lookup first spares the hash for the common duplicate; the insert still settles
  // races through the UNIQUE index.
  auto existing = store.find_by_email(email);
  if (!existing) return unexpected{from_store(existing.error(), "registration lookup")};
  if (*existing)
    return unexpected{error(auth_errc::email_taken, "an account with this e-mail already exists")};
  sp::new_user user;
  user.user_id = sp::new_uuid();
  user.email = email;
  user.name = name;
  user.password_hash = hash_password(password);
  user.role = role;
  auto inserted = store.insert(user);
  if (!inserted) return unexpected{from_store(inserted.error(), "registration insert")};
  return record_from(*inserted);
}

user_result do_login(sp::pg_user_store& store, const std::string& email,
                     const std::string& password) {
  auto found = store.find_by_email(email);
  if (!found) return unexpected{from_store(found.error(), "login lookup")};
  if (!*found) {
    (void)verify_password(password, decoy_hash());
    return unexpected{error(auth_errc::bad_credentials, bad_credentials_message)};
  }
  if (!verify_password(password, (*found)->password_hash))
    return unexpected{error(auth_errc::bad_credentials, bad_credentials_message)};
  return record_from(**found);
}

}  // namespace

std::string email_problem(const std::string& email) {
  if (email.empty()) return "email must not be empty";
  if (email.size() > max_email_bytes)
    return "email must be at most " + std::to_string(max_email_bytes) + " bytes long";
  if (!domain::is_valid_text(email)) return "email must be valid UTF-8";
  for (const char c : email) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return "email must not contain spaces or control characters";
  }
  const auto at = email.find('@');
  if (at == std::string::npos || at != email.rfind('@') || at == 0 || at + 1 == email.size())
    return "email must look like name@domain";
  const auto domain_part = email.substr(at + 1);
  if (domain_part.front() == '.' || domain_part.back() == '.' ||
      domain_part.find("..") != std::string::npos)
    return "email must look like name@domain";
  return "";
}

struct user_service::impl {
  struct job {
    std::function<void(sp::pg_user_store&)> run;
    std::function<void()> cancel;  ///< answers `unavailable` when the service stops first
  };

  std::string database_url;
  std::string schema;
  std::size_t max_pending = 0;
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<job> queue;
  bool stopping = false;
  std::vector<std::thread> workers;

  void work() {
    sp::pg_user_store store(sp::user_store_options{database_url, schema, "saga-users"});
    for (;;) {
      job next;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        next = std::move(queue.front());
        queue.pop_front();
      }
      next.run(store);
    }
  }

  // False when the job was not queued (full or stopping); the caller answers then.
  bool submit(job j) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopping || queue.size() >= max_pending) return false;
      queue.push_back(std::move(j));
    }
    wake.notify_one();
    return true;
  }

  /// Runs `work` (a registration or a login: `what`, for the log) on a worker and answers
  /// `done` with its result; `unavailable` when it throws, when the service stops first or
  /// when too many requests wait already.
  void run_on_worker(const char* what, std::function<user_result(sp::pg_user_store&)> work,
                     std::function<void(user_result)> done) {
    auto shared_done = std::make_shared<std::function<void(user_result)>>(std::move(done));
    job j;
    j.run = [what, work = std::move(work), shared_done](sp::pg_user_store& store) {
      user_result result = unexpected{error(auth_errc::unavailable, unavailable_message)};
      try {
        result = work(store);
      } catch (const std::exception& e) {
        spdlog::error("user service: {} failed: {}", what, e.what());
      }
      deliver(*shared_done, std::move(result));
    };
    j.cancel = [shared_done] {
      deliver(*shared_done, unexpected{error(auth_errc::unavailable, unavailable_message)});
    };
    if (!submit(std::move(j))) {
      deliver(*shared_done,
              unexpected{error(auth_errc::unavailable,
                               "too many account requests are waiting; try again later")});
    }
  }
};

user_service::user_service(std::string database_url, std::string schema, std::size_t workers,
                           std::size_t max_pending)
    : impl_(std::make_unique<impl>()) {
  impl_->database_url = std::move(database_url);
  impl_->schema = std::move(schema);
  impl_->max_pending = std::max<std::size_t>(1, max_pending);
  const auto count = std::max<std::size_t>(1, workers);
  impl_->workers.reserve(count);
  try {
    for (std::size_t i = 0; i < count; ++i) impl_->workers.emplace_back([this] { impl_->work(); });
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      impl_->stopping = true;
    }
    impl_->wake.notify_all();
    for (auto& t : impl_->workers) t.join();
    throw;
  }
}

user_service::~user_service() {
  std::deque<impl::job> left;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
    left.swap(impl_->queue);
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
  for (auto& j : left) j.cancel();
}

void user_service::register_user(std::string email, std::string password, std::string name,
                                 domain::user::role role, std::function<void(user_result)> done) {
  email = sp::normalize_email(email);
  if (auto bad = registration_problem(email, password, name)) {
    deliver(done, unexpected{std::move(*bad)});
    return;
  }
  impl_->run_on_worker(
      "registration",
      [email = std::move(email), password = std::move(password), name = std::move(name),
       role](sp::pg_user_store& store) { return do_register(store, email, password, name, role); },
      std::move(done));
}

void user_service::login(std::string email, std::string password,
                         std::function<void(user_result)> done) {
  email = sp::normalize_email(email);
  // Input that no account can match is refused without work; the shape rules are public, so
  // this tells an attacker nothing about which accounts exist.
  if (email.size() > max_email_bytes || password.size() > max_password_bytes ||
      !domain::is_valid_text(email)) {
    deliver(done, unexpected{error(auth_errc::invalid_argument,
                                   "email or password is too long or not valid UTF-8")});
    return;
  }
  impl_->run_on_worker(
      "login",
      [email = std::move(email), password = std::move(password)](sp::pg_user_store& store) {
        return do_login(store, email, password);
      },
      std::move(done));
}

user_result user_service::ensure_admin(const std::string& raw_email, const std::string& password) {
  const auto email = sp::normalize_email(raw_email);
  if (auto bad = registration_problem(email, password, "Administrator")) {
    bad->message = "admin account: " + bad->message;
    return unexpected{std::move(*bad)};
  }
  sp::pg_user_store store(
      sp::user_store_options{impl_->database_url, impl_->schema, "saga-users-bootstrap"});
  try {
    // Two attempts: another node may insert the same admin between our lookup and insert.
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto found = store.find_by_email(email);
      if (!found) return unexpected{from_store(found.error(), "admin lookup")};
      if (*found) {
        const auto& row = **found;
        if (row.role != domain::user::role::admin) {
          return unexpected{error(auth_errc::invalid_argument,
                                  "admin account: " + email +
                                      " is registered as a customer; refusing to promote it "
                                      "(choose another admin e-mail)")};
        }
        if (!verify_password(password, row.password_hash)) {
          auto updated = store.set_password_hash(row.user_id, hash_password(password));
          if (!updated) return unexpected{from_store(updated.error(), "admin password update")};
          spdlog::info("user service: admin {} password updated from configuration", email);
        }
        return record_from(row);
      }
      sp::new_user user;
      user.user_id = sp::new_uuid();
      user.email = email;
      user.name = "Administrator";
      user.password_hash = hash_password(password);
      user.role = domain::user::role::admin;
      auto inserted = store.insert(user);
      if (inserted) {
        spdlog::info("user service: admin account {} created", email);
        return record_from(*inserted);
      }
      if (inserted.error().code != sp::user_errc::email_taken)
        return unexpected{from_store(inserted.error(), "admin insert")};
    }
  } catch (const std::exception& e) {
    spdlog::error("user service: admin bootstrap failed: {}", e.what());
    return unexpected{error(auth_errc::unavailable, unavailable_message)};
  }
  return unexpected{error(auth_errc::unavailable, "admin account: e-mail keeps changing hands")};
}

}  // namespace saga::http::auth

// The account store over PostgreSQL: insert and lookups, case-insensitive e-mail uniqueness
// (also under concurrent inserts), the table's own rules, and typed errors for an unreachable
// database or a schema without the migration. Each test works in its own migrated schema.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "persistence/pg_admin.hpp"
#include "persistence/user_store.hpp"
#include "tests/persistence/support.hpp"

namespace sp = saga::persistence;
using namespace saga::persistence::test;
using saga::domain::user::role;

namespace saga::persistence {
inline std::ostream& operator<<(std::ostream& out, user_errc code) {
  return out << to_string(code);
}
}  // namespace saga::persistence

namespace {

/// A schema with every embedded migration applied, dropped at the end of the test.
struct user_schema {
  std::string name;
  explicit user_schema(bool migrate = true) {
    static std::atomic<int> counter{0};
    name = "test_users_" + run_tag() + "_" + std::to_string(counter.fetch_add(1));
    if (migrate) {
      const auto applied = sp::apply_migrations(database_url(), sp::migration_options{name});
      BOOST_REQUIRE_MESSAGE(
          applied.has_value(),
          (applied ? std::string() : "migrating " + name + " failed: " + applied.error().message));
    } else {
      BOOST_REQUIRE(sp::run_sql(database_url(), "CREATE SCHEMA " + name).has_value());
    }
  }
  ~user_schema() {
    (void)sp::run_sql(database_url(), "DROP SCHEMA IF EXISTS " + name + " CASCADE");
  }
  sp::user_store_options options() const { return sp::user_store_options{database_url(), name}; }
};

sp::new_user make_user(const std::string& email, const std::string& id = sp::new_uuid()) {
  sp::new_user u;
  u.user_id = id;
  u.email = email;
  u.name = "Ann Example";
  u.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
  u.role = role::customer;
  return u;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(user_store)

BOOST_AUTO_TEST_CASE(the_users_migration_is_embedded) {
  bool found = false;
  for (const auto& f : sp::embedded_migrations()) found = found || f.name == "0005_users.sql";
  BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(an_inserted_user_is_found_by_email_and_by_id) {
  user_schema schema;
  sp::pg_user_store store(schema.options());
  auto u = make_user("Ann.Example@Example.COM");
  u.role = role::admin;
  u.name = "안녕하세요 Ann";
  const auto inserted = store.insert(u);
  BOOST_REQUIRE_MESSAGE(inserted.has_value(),
                        (inserted ? std::string() : inserted.error().message));
  BOOST_TEST(inserted->user_id == u.user_id);
  BOOST_TEST(inserted->email == "ann.example@example.com");
  BOOST_TEST(inserted->name == "안녕하세요 Ann");
  BOOST_TEST(inserted->password_hash == u.password_hash);
  BOOST_TEST((inserted->role == role::admin));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  BOOST_TEST(std::abs(inserted->created_at - now_ms) < 60'000);

  for (const auto* spelling : {"ann.example@example.com", "ANN.EXAMPLE@EXAMPLE.COM"}) {
    const auto by_email = store.find_by_email(spelling);
    BOOST_REQUIRE(by_email.has_value());
    BOOST_REQUIRE(by_email->has_value());
    BOOST_TEST((*by_email)->user_id == u.user_id);
    BOOST_TEST((*by_email)->created_at == inserted->created_at);
  }
  const auto by_id = store.find_by_id(u.user_id);
  BOOST_REQUIRE(by_id.has_value());
  BOOST_REQUIRE(by_id->has_value());
  BOOST_TEST((*by_id)->email == "ann.example@example.com");
}

BOOST_AUTO_TEST_CASE(unknown_users_are_not_found) {
  user_schema schema;
  sp::pg_user_store store(schema.options());
  BOOST_REQUIRE(store.insert(make_user("a@example.com")).has_value());
  const auto by_email = store.find_by_email("b@example.com");
  BOOST_REQUIRE(by_email.has_value());
  BOOST_TEST(!by_email->has_value());
  const auto by_id = store.find_by_id("no-such-id");
  BOOST_REQUIRE(by_id.has_value());
  BOOST_TEST(!by_id->has_value());
  // libpq would cut "a@example.com\0x" at the NUL and find a@example.com.
  const auto cut = store.find_by_email(std::string("a@example.com\0x", 15));
  BOOST_REQUIRE(cut.has_value());
  BOOST_TEST(!cut->has_value());
}

BOOST_AUTO_TEST_CASE(emails_are_unique_whatever_their_case) {
  user_schema schema;
  sp::pg_user_store store(schema.options());
  BOOST_REQUIRE(store.insert(make_user("bob@example.com")).has_value());
  const auto again = store.insert(make_user("BOB@Example.com"));
  BOOST_REQUIRE(!again.has_value());
  BOOST_TEST(again.error().code == sp::user_errc::email_taken);
  // The store stays usable after the refusal.
  BOOST_TEST(store.insert(make_user("bobby@example.com")).has_value());
}

BOOST_AUTO_TEST_CASE(a_reused_user_id_is_refused) {
  user_schema schema;
  sp::pg_user_store store(schema.options());
  BOOST_REQUIRE(store.insert(make_user("c@example.com", "same-id")).has_value());
  const auto again = store.insert(make_user("d@example.com", "same-id"));
  BOOST_REQUIRE(!again.has_value());
  BOOST_TEST(again.error().code == sp::user_errc::id_taken);
  BOOST_TEST(store.insert(make_user("d@example.com")).has_value());
}

BOOST_AUTO_TEST_CASE(only_ascii_letters_are_folded) {
  BOOST_TEST(sp::normalize_email("ÄNN@Example.COM") == "Änn@example.com");
  user_schema schema;
  sp::pg_user_store store(schema.options());
  BOOST_REQUIRE(store.insert(make_user("Ünï@Example.com")).has_value());
  const auto found = store.find_by_email("ÜNÏ@EXAMPLE.COM");
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(!found->has_value());  // Ï vs ï: not folded, a different address
  const auto exact = store.find_by_email("Ünï@example.COM");
  BOOST_REQUIRE(exact.has_value());
  BOOST_TEST(exact->has_value());
}

BOOST_AUTO_TEST_CASE(the_table_enforces_its_rules_for_every_writer) {
  user_schema schema;
  const auto insert_sql = [&](const std::string& values) {
    return sp::run_sql(database_url(), "INSERT INTO " + schema.name +
                                           ".users (user_id, email, name, password_hash, role) "
                                           "VALUES " +
                                           values);
  };
  BOOST_TEST(insert_sql("('u1', 'ok@example.com', 'n', 'h', 'customer')").has_value());
  BOOST_TEST(!insert_sql("('u2', 'Upper@example.com', 'n', 'h', 'customer')").has_value());
  BOOST_TEST(!insert_sql("('u3', 'x@example.com', 'n', 'h', 'root')").has_value());
  BOOST_TEST(!insert_sql("('u4', '', 'n', 'h', 'customer')").has_value());
  BOOST_TEST(!insert_sql("('', 'y@example.com', 'n', 'h', 'customer')").has_value());
  BOOST_TEST(!insert_sql("('u5', 'z@example.com', 'n', '', 'customer')").has_value());
  BOOST_TEST(!insert_sql("('u6', 'ok@example.com', 'n', 'h', 'customer')").has_value());

  sp::pg_user_store store(schema.options());
  auto long_name = make_user("long@example.com");
  long_name.name = std::string(1025, 'n');
  const auto r = store.insert(long_name);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().code == sp::user_errc::invalid_request);
  auto nul = make_user("nul@example.com");
  nul.name = std::string("a\0b", 3);
  const auto n = store.insert(nul);
  BOOST_REQUIRE(!n.has_value());
  BOOST_TEST(n.error().code == sp::user_errc::invalid_request);
}

BOOST_AUTO_TEST_CASE(a_password_hash_can_be_replaced) {
  user_schema schema;
  sp::pg_user_store store(schema.options());
  const auto u = make_user("e@example.com");
  BOOST_REQUIRE(store.insert(u).has_value());
  const auto updated = store.set_password_hash(u.user_id, "$argon2id$new");
  BOOST_REQUIRE(updated.has_value());
  BOOST_TEST(*updated);
  BOOST_TEST((*store.find_by_id(u.user_id))->password_hash == "$argon2id$new");
  const auto missing = store.set_password_hash("nobody", "$argon2id$new");
  BOOST_REQUIRE(missing.has_value());
  BOOST_TEST(!*missing);
}

BOOST_AUTO_TEST_CASE(concurrent_inserts_of_one_email_leave_exactly_one_account) {
  user_schema schema;
  constexpr int writers = 8;
  std::atomic<int> created{0}, taken{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < writers; ++i) {
    threads.emplace_back([&, i] {
      sp::pg_user_store store(schema.options());
      if (!store.connect()) {
        ++other;
        return;
      }
      const auto r = store.insert(make_user(i % 2 == 0 ? "race@example.com" : "RACE@example.com"));
      if (r) {
        ++created;
      } else if (r.error().code == sp::user_errc::email_taken) {
        ++taken;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(created.load() == 1);
  BOOST_TEST(taken.load() == writers - 1);
  BOOST_TEST(other.load() == 0);
  const auto rows = sp::run_sql(database_url(), "SELECT count(*) FROM " + schema.name + ".users");
  BOOST_REQUIRE(rows.has_value());
  BOOST_TEST((*rows)[0][0] == "1");
}

BOOST_AUTO_TEST_CASE(an_unreachable_database_is_unavailable) {
  // Port 1 on localhost: nothing listens there, so the connection is refused at once.
  sp::pg_user_store store(sp::user_store_options{"postgresql://postgres@127.0.0.1:1/none", ""});
  const auto r = store.find_by_email("a@example.com");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().code == sp::user_errc::unavailable);
  const auto i = store.insert(make_user("a@example.com"));
  BOOST_REQUIRE(!i.has_value());
  BOOST_TEST(i.error().code == sp::user_errc::unavailable);
}

BOOST_AUTO_TEST_CASE(a_schema_without_the_migration_fails_clearly) {
  user_schema schema(/*migrate=*/false);
  sp::pg_user_store store(schema.options());
  const auto r = store.connect();
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().code == sp::user_errc::internal);
  BOOST_TEST(r.error().message.find("users") != std::string::npos, r.error().message);
}

BOOST_AUTO_TEST_SUITE_END()

// User aggregate specs: given events → when command → then events or rejection.
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "domain/user.hpp"
#include "tests/domain/given.hpp"

namespace user = saga::domain::user;
using saga::domain::max_text_bytes;
using rc = saga::domain::rejection_code;
using saga::test::expect_rejection;
using saga::test::only_event;

namespace {

auto given(const std::vector<user::event>& history) {
  return saga::test::given<user::state>(history);
}

user::register_user a_register() {
  return {"u-1",
          "kim@example.com",
          "김민준",
          "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
          user::role::customer,
          500};
}

user::user_registered registered() {
  const auto c = a_register();
  return {c.user_id, c.email, c.name, c.password_hash, c.role_, c.at};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(user_aggregate)

BOOST_AUTO_TEST_CASE(register_emits_user_registered) {
  auto c = a_register();
  c.role_ = user::role::admin;
  const auto& e = only_event<user::user_registered>(given({}).when(c));
  BOOST_TEST(e.user_id == "u-1");
  BOOST_TEST(e.email == "kim@example.com");
  BOOST_TEST(e.name == "김민준");
  BOOST_TEST(e.password_hash == c.password_hash);
  BOOST_TEST((e.role_ == user::role::admin));
  BOOST_TEST(e.at == 500);

  const auto s = given({e}).state;
  BOOST_TEST(s.registered);
  BOOST_TEST(s.user_id == "u-1");
  BOOST_TEST(s.email == "kim@example.com");
  BOOST_TEST((s.role_ == user::role::admin));
  BOOST_TEST(s.registered_at == 500);
  BOOST_TEST(s.version == 1);
}

BOOST_AUTO_TEST_CASE(register_on_a_registered_user_is_already_exists) {
  expect_rejection(given({registered()}).when(a_register()), rc::already_exists, "u-1");
}

BOOST_AUTO_TEST_CASE(required_fields_must_not_be_empty) {
  auto c = a_register();
  c.user_id.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "user_id");
  c = a_register();
  c.name.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "name");
  c = a_register();
  c.password_hash.clear();
  expect_rejection(given({}).when(c), rc::invalid_argument, "password_hash");
}

BOOST_AUTO_TEST_CASE(email_must_look_like_an_address) {
  for (const char* bad : {"", "kim.example.com", "@example.com", "kim@"}) {
    auto c = a_register();
    c.email = bad;
    expect_rejection(given({}).when(c), rc::invalid_argument, "email");
  }
  auto c = a_register();
  c.email = "a@b";
  BOOST_TEST(given({}).when(c).has_value());
}

BOOST_AUTO_TEST_CASE(text_is_length_and_encoding_checked) {
  auto c = a_register();
  c.name = std::string(max_text_bytes, 'n');
  BOOST_TEST(given({}).when(c).has_value());
  c.name = std::string(max_text_bytes + 1, 'n');
  expect_rejection(given({}).when(c), rc::invalid_argument, "name");
  c = a_register();
  c.email = std::string(max_text_bytes, 'e') + "@x";
  expect_rejection(given({}).when(c), rc::invalid_argument, "email");
  c = a_register();
  c.password_hash = std::string(max_text_bytes + 1, 'h');
  expect_rejection(given({}).when(c), rc::invalid_argument, "password_hash");
  c = a_register();
  c.name = "\xed\xa0\x80";  // an encoded UTF-16 surrogate is not UTF-8
  expect_rejection(given({}).when(c), rc::invalid_argument, "name");
}

BOOST_AUTO_TEST_CASE(role_names_round_trip) {
  BOOST_TEST(user::to_string(user::role::customer) == "customer");
  BOOST_TEST(user::to_string(user::role::admin) == "admin");
  BOOST_TEST((user::parse_role("admin") == user::role::admin));
  BOOST_TEST((user::parse_role("customer") == user::role::customer));
  BOOST_TEST(!user::parse_role("root").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

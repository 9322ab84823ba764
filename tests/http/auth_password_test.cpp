// argon2id password hashing: the PHC format with libsodium's interactive limits, salting,
// verification of right and wrong passwords, refusal of malformed or foreign hashes, and use
// from several threads at once.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <sodium.h>
#include <boost/test/unit_test.hpp>

#include "http/auth/password.hpp"

namespace auth = saga::http::auth;

BOOST_AUTO_TEST_SUITE(auth_password)

BOOST_AUTO_TEST_CASE(hashes_are_argon2id_with_interactive_limits) {
  const auto hash = auth::hash_password("correct horse battery staple");
  // m = 64 MiB, t = 2 passes, p = 1 lane: crypto_pwhash_*_INTERACTIVE.
  BOOST_TEST(hash.rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0) == 0u, hash);
  BOOST_TEST(hash.find("correct horse") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_right_password_verifies_and_a_wrong_one_does_not) {
  const auto hash = auth::hash_password("s3cret-Passw0rd");
  BOOST_TEST(auth::verify_password("s3cret-Passw0rd", hash));
  BOOST_TEST(!auth::verify_password("s3cret-passw0rd", hash));
  BOOST_TEST(!auth::verify_password("s3cret-Passw0rd ", hash));
  BOOST_TEST(!auth::verify_password("", hash));
}

BOOST_AUTO_TEST_CASE(each_hash_has_its_own_salt) {
  const auto a = auth::hash_password("same password");
  const auto b = auth::hash_password("same password");
  BOOST_TEST(a != b);
  BOOST_TEST(auth::verify_password("same password", a));
  BOOST_TEST(auth::verify_password("same password", b));
}

BOOST_AUTO_TEST_CASE(every_byte_of_the_password_counts) {
  const std::string with_nul("abc\0defgh", 9);
  const auto hash = auth::hash_password(with_nul);
  BOOST_TEST(auth::verify_password(with_nul, hash));
  BOOST_TEST(!auth::verify_password("abc", hash));
  const std::string korean = "비밀번호-패스워드";
  const auto k = auth::hash_password(korean);
  BOOST_TEST(auth::verify_password(korean, k));
  BOOST_TEST(!auth::verify_password("비밀번호-패스워", k));
}

BOOST_AUTO_TEST_CASE(malformed_or_foreign_hashes_never_verify) {
  const auto good = auth::hash_password("password123");
  BOOST_TEST(!auth::verify_password("password123", ""));
  BOOST_TEST(!auth::verify_password("password123", "password123"));
  BOOST_TEST(!auth::verify_password("password123", "$argon2id$garbage"));
  BOOST_TEST(!auth::verify_password("password123", good.substr(0, good.size() - 3)));
  BOOST_TEST(!auth::verify_password("password123", good + std::string(200, 'A')));
  BOOST_TEST(!auth::verify_password("password123", std::string(good).insert(10, 1, '\0')));
  // A genuine argon2i hash, which libsodium's generic verifier would accept: not ours, refused.
  BOOST_REQUIRE(sodium_init() >= 0);
  char argon2i[crypto_pwhash_STRBYTES];
  BOOST_REQUIRE(crypto_pwhash_str_alg(
                    argon2i, "password123", 11, crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE,
                    crypto_pwhash_argon2i_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2I13) == 0);
  BOOST_REQUIRE(crypto_pwhash_str_verify(argon2i, "password123", 11) == 0);
  BOOST_TEST(!auth::verify_password("password123", argon2i));
}

BOOST_AUTO_TEST_CASE(hashing_is_safe_from_several_threads) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&ok, t] {
      const auto pw = "thread-password-" + std::to_string(t);
      const auto hash = auth::hash_password(pw);
      if (auth::verify_password(pw, hash) && !auth::verify_password(pw + "x", hash)) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(ok.load() == 3);
}

BOOST_AUTO_TEST_SUITE_END()

// End-to-end helpers for the HTTP suites: a real saga-node with HTTP enabled on a scratch
// database (one shared node per test binary, or one per test for special settings), a small
// blocking libcurl client whose responses describe themselves in failure messages, hand-built
// JWTs for the auth-failure tests, and polling for eventually consistent results.
// Nodes are created and stopped on the test's main thread; a client is used by one thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/integration/support.hpp"

namespace saga::http_test {

namespace si = saga::integration;
using json = nlohmann::json;
using namespace std::chrono_literals;

/// Request headers, in order; names as sent.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// A random lower-case alphanumeric string (ids, emails, keys, passwords).
inline std::string random_token(std::size_t length) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(alphabet) - 2);
  std::string out;
  out.reserve(length);
  for (std::size_t i = 0; i < length; ++i) out += alphabet[pick(gen)];
  return out;
}

inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

inline std::string abbreviate(const std::string& text, std::size_t max = 1500) {
  if (text.size() <= max) return text;
  return text.substr(0, max) + "… (" + std::to_string(text.size()) + " bytes)";
}

/// One HTTP exchange: what was asked and what came back, for assertions and messages.
struct response {
  std::string method;
  std::string path;
  std::string request_body;
  long status = 0;  ///< 0 when the transport failed (see `error`)
  header_list headers;
  std::string body;
  std::string error;  ///< libcurl's message when no response arrived

  /// The first header named `name` (case-insensitive).
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (iequals(k, name)) return v;
    }
    return std::nullopt;
  }

  /// The body as JSON; a `discarded` value when it is not JSON.
  [[nodiscard]] json json_body() const { return json::parse(body, nullptr, false); }

  /// "POST /orders [body] → 422 application/problem+json {…}" for failure messages.
  [[nodiscard]] std::string describe() const {
    std::string out = method + " " + path;
    if (!request_body.empty()) out += " with body " + abbreviate(request_body, 400);
    if (status == 0) return out + " → no response: " + error;
    out += " → " + std::to_string(status);
    if (auto ct = header("Content-Type")) out += " (" + *ct + ")";
    return out + " " + abbreviate(body);
  }
};

/// Fails the test (REQUIRE) unless `r` has `status`, naming the request and the answer.
inline void require_status(const response& r, long status) {
  BOOST_REQUIRE_MESSAGE(r.status == status, "expected " << status << " from " << r.describe());
}

/// Records a failure (CHECK) unless `r` has `status`.
inline bool check_status(const response& r, long status) {
  BOOST_CHECK_MESSAGE(r.status == status, "expected " << status << " from " << r.describe());
  return r.status == status;
}

/// The body as a JSON object or array; fails the test when it is not JSON.
inline json require_json(const response& r) {
  auto j = r.json_body();
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "body is not JSON: " << r.describe());
  return j;
}

/// A string member of `j`, or "" when absent or not a string.
inline std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// The elements of a list answer: the array itself, or the first array member of an object
/// envelope ({items: […], total: …}); empty when there is none.
inline json list_items(const json& j) {
  if (j.is_array()) return j;
  if (j.is_object()) {
    for (const char* key : {"items", "data", "orders", "products", "sagas", "events", "flows"}) {
      auto it = j.find(key);
      if (it != j.end() && it->is_array()) return *it;
    }
    for (const auto& [k, v] : j.items()) {
      if (v.is_array()) return v;
    }
  }
  return json::array();
}

/// Whether a problem+json answer names `field`: in `errors[].field` or in `detail`.
inline bool problem_names_field(const response& r, const std::string& field) {
  const auto j = r.json_body();
  if (!j.is_object()) return false;
  if (str(j, "detail").find(field) != std::string::npos) return true;
  auto errors = j.find("errors");
  if (errors != j.end() && errors->is_array()) {
    for (const auto& e : *errors) {
      if (str(e, "field") == field) return true;
    }
  }
  return false;
}

/// Checks `r` is an RFC 7807 answer with `status` naming `field` (empty: no field check), with
/// the application/problem+json content type and the response's correlation id in the body.
inline void check_problem(const response& r, long status, const std::string& field = {}) {
  if (!check_status(r, status)) return;
  const auto ct = r.header("Content-Type").value_or("");
  BOOST_CHECK_MESSAGE(ct.find("application/problem+json") == 0,
                      "expected application/problem+json from " << r.describe());
  const auto j = r.json_body();
  BOOST_CHECK_MESSAGE(j.is_object() && j.value("status", 0) == status && !str(j, "title").empty(),
                      "problem body lacks status/title: " << r.describe());
  const auto cid = r.header("X-Correlation-Id").value_or("");
  BOOST_CHECK_MESSAGE(
      !cid.empty() && str(j, "correlationId") == cid,
      "problem correlationId differs from X-Correlation-Id '" << cid << "': " << r.describe());
  if (!field.empty()) {
    BOOST_CHECK_MESSAGE(problem_names_field(r, field),
                        "problem does not name the field '" << field << "': " << r.describe());
  }
}

// ---- libcurl client ----

inline void curl_global_once() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

inline std::pair<std::string, std::string> bearer(const std::string& token) {
  return {"Authorization", "Bearer " + token};
}

/// A blocking HTTP/1.1 client over one reused libcurl easy handle (keep-alive).
class client {
 public:
  explicit client(std::string base_url, std::chrono::milliseconds timeout = 30s)
      : base_url_(std::move(base_url)), timeout_(timeout) {
    curl_global_once();
    handle_ = curl_easy_init();
    BOOST_REQUIRE_MESSAGE(handle_ != nullptr, "curl_easy_init failed");
  }
  ~client() {
    if (handle_ != nullptr) curl_easy_cleanup(handle_);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  client(client&& o) noexcept
      : base_url_(std::move(o.base_url_)), timeout_(o.timeout_), handle_(o.handle_) {
    o.handle_ = nullptr;
  }

  [[nodiscard]] const std::string& base_url() const { return base_url_; }

  response get(const std::string& path, const header_list& headers = {}) {
    return request("GET", path, std::nullopt, headers);
  }
  /// POST with `body`; Content-Type application/json unless `headers` names one.
  response post(const std::string& path, const std::string& body, const header_list& headers = {}) {
    return request("POST", path, body, headers);
  }
  response post(const std::string& path, const json& body, const header_list& headers = {}) {
    return request("POST", path, body.dump(), headers);
  }
  response put(const std::string& path, const std::string& body = {},
               const header_list& headers = {}) {
    return request("PUT", path, body, headers);
  }
  response del(const std::string& path, const header_list& headers = {}) {
    return request("DELETE", path, std::nullopt, headers);
  }

  /// Any request; `body` empty-optional sends none.
  response request(const std::string& method, const std::string& path,
                   const std::optional<std::string>& body, const header_list& headers) {
    response r;
    r.method = method;
    r.path = path;
    r.request_body = body.value_or("");
    CURL* h = handle_;
    curl_easy_reset(h);
    const std::string url = base_url_ + path;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &client::on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &client::on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r.headers);
    if (method == "GET") curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    curl_slist* list = nullptr;
    bool has_type = false;
    for (const auto& [k, v] : headers) {
      has_type = has_type || iequals(k, "Content-Type");
      list = curl_slist_append(list, (k + ": " + v).c_str());
    }
    if (body && !has_type) list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    const auto rc = curl_easy_perform(h);
    curl_slist_free_all(list);
    if (rc != CURLE_OK) {
      r.error = curl_easy_strerror(rc);
      r.status = 0;
      if (!r.headers.empty()) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
      return r;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
  }

 private:
  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }
  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* out) {
    auto* headers = static_cast<header_list*>(out);
    std::string_view line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after a 100)
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() &&
             (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
        value.remove_suffix(1);
      }
      headers->emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    return size * n;
  }

  std::string base_url_;
  std::chrono::milliseconds timeout_;
  CURL* handle_ = nullptr;
};

/// Percent-encodes a path segment or query value.
inline std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// ---- JWT by hand ----

inline std::string base64url_encode(std::string_view in) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) |
                   (std::uint32_t(std::uint8_t(in[i + 1])) << 8) | std::uint8_t(in[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += table[n & 63];
  }
  if (i + 1 == in.size()) {
    const auto n = std::uint32_t(std::uint8_t(in[i])) << 16;
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const auto n =
        (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
  }
  return out;
}

/// Decodes base64url (padding optional); nullopt on a character outside the alphabet.
inline std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-' || c == '+') {
      v = 62;
    } else if (c == '_' || c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

inline std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

/// A compact JWS: base64url(header).base64url(payload).signature, signed HS256 with `secret`
/// when the header's alg is HS256, with an empty signature otherwise.
inline std::string make_jwt(const json& header, const json& payload, std::string_view secret) {
  const auto signing_input =
      base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
  if (header.value("alg", "") != "HS256") return signing_input + ".";
  return signing_input + "." + base64url_encode(hmac_sha256(secret, signing_input));
}

/// The claims of a token (its middle part), parsed; fails the test when it is not a JWT.
inline json jwt_claims(const std::string& token) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  BOOST_REQUIRE_MESSAGE(first != std::string::npos && second != std::string::npos,
                        "not a JWT: " << token);
  const auto decoded = base64url_decode(token.substr(first + 1, second - first - 1));
  BOOST_REQUIRE_MESSAGE(decoded.has_value(), "JWT payload is not base64url: " << token);
  auto claims = json::parse(*decoded, nullptr, false);
  BOOST_REQUIRE_MESSAGE(claims.is_object(), "JWT payload is not a JSON object: " << *decoded);
  return claims;
}

inline std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// ---- polling ----

/// Calls `condition` until it returns true or `timeout` passes (it is always called at least
/// once, and once more at the deadline); returns its last answer.
template <class Condition>
bool eventually(std::chrono::milliseconds timeout, Condition condition,
                std::chrono::milliseconds interval = 50ms) {
  const auto deadline = si::clock_type::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (si::clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

// ---- the node ----

/// A TCP port that was free a moment ago on 127.0.0.1 (bound to port 0, then released).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE_MESSAGE(fd >= 0, "socket: " << std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  BOOST_REQUIRE_MESSAGE(ok, "could not find a free port: " << std::strerror(errno));
  return ntohs(addr.sin_port);
}

/// Settings of one node beyond the defaults the fixture always passes.
struct node_options {
  std::string name = "node";
  std::vector<std::string> extra_args;
  /// Extra environment (SAGA_… overrides); the node otherwise gets the test's environment
  /// without DATABASE_URL and without any SAGA_* variable.
  header_list env;
  /// Generous rate limits unless the test sets its own (every test shares 127.0.0.1).
  bool relaxed_rate_limits = true;
};

/// A registered and logged-in user.
struct user {
  std::string user_id;
  std::string email;
  std::string password;
  std::string name;
  std::string token;
};

/// saga-node with HTTP on a free port and a scratch database: `--database-url … --http-port P
/// --jwt-secret <random> --demo-catalog`, bootstrap admin from SAGA_ADMIN_EMAIL/PASSWORD.
/// Ready once it printed "saga-node: ready". The destructor stops it with SIGTERM (SIGKILL
/// after 30 s) and drops the database. The child gets SIGTERM should the test binary die.
class http_node {
 public:
  explicit http_node(node_options options = {})
      : options_(std::move(options)),
        jwt_secret_("jwt-" + random_token(40)),
        admin_email_("admin-" + random_token(8) + "@example.test"),
        admin_password_("pw-" + random_token(24)) {
    log_prefix_ = std::string(SAGA_IT_LOG_DIR) + "/http-" + options_.name + "-" + db_.name() + "-";
    for (int attempt = 1;; ++attempt) {
      port_ = free_port();
      spawn();
      if (wait_ready(90s)) break;
      const bool exited = !running();
      const auto err = si::read_file(stderr_path());
      const bool port_taken = exited && (err.find("in use") != std::string::npos ||
                                         err.find(std::to_string(port_)) != std::string::npos);
      if (!port_taken || attempt == 3) {
        const auto out = si::read_file(stdout_path());
        kill_now();
        BOOST_FAIL("saga-node (" << options_.name << ") did not print 'saga-node: ready' "
                                 << (exited ? "and exited" : "within 90 s")
                                 << "; args: " << args_text_ << "\n--- stdout ---\n"
                                 << si::tail(out, 30) << "\n--- stderr ---\n"
                                 << si::tail(err, 30));
      }
    }
    base_url_ = "http://127.0.0.1:" + std::to_string(port_);
  }

  ~http_node() { stop(); }
  http_node(const http_node&) = delete;
  http_node& operator=(const http_node&) = delete;

  [[nodiscard]] const std::string& base_url() const { return base_url_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const std::string& jwt_secret() const { return jwt_secret_; }
  [[nodiscard]] const std::string& admin_email() const { return admin_email_; }
  [[nodiscard]] const std::string& admin_password() const { return admin_password_; }
  [[nodiscard]] const si::scratch_database& database() const { return db_; }
  [[nodiscard]] std::string stdout_path() const { return log_prefix_ + "node.stdout"; }
  [[nodiscard]] std::string stderr_path() const { return log_prefix_ + "node.stderr"; }

  [[nodiscard]] client make_client(std::chrono::milliseconds timeout = 30s) const {
    return client(base_url_, timeout);
  }

  /// The bootstrap admin's token (logged in once, then cached).
  const std::string& admin_token() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (admin_token_.empty()) {
      auto c = make_client();
      const auto r =
          c.post("/auth/login", json{{"email", admin_email_}, {"password", admin_password_}});
      require_status(r, 200);
      admin_token_ = str(require_json(r), "accessToken");
      BOOST_REQUIRE_MESSAGE(!admin_token_.empty(), "no accessToken in " << r.describe());
    }
    return admin_token_;
  }

  /// Registers a customer with a fresh email (containing `tag`) and logs in.
  user new_customer(const std::string& tag = "customer") {
    auto c = make_client();
    user u;
    u.email = tag + "-" + random_token(10) + "@example.test";
    u.password = "secret-" + random_token(12);
    u.name = "Customer " + tag;
    const auto reg = c.post("/auth/register",
                            json{{"email", u.email}, {"password", u.password}, {"name", u.name}});
    require_status(reg, 201);
    u.user_id = str(require_json(reg), "userId");
    BOOST_REQUIRE_MESSAGE(!u.user_id.empty(), "no userId in " << reg.describe());
    u.token = login(c, u.email, u.password);
    return u;
  }

  /// Logs in and answers the access token; fails the test unless the login is a 200.
  static std::string login(client& c, const std::string& email, const std::string& password) {
    const auto r = c.post("/auth/login", json{{"email", email}, {"password", password}});
    require_status(r, 200);
    auto token = str(require_json(r), "accessToken");
    BOOST_REQUIRE_MESSAGE(!token.empty(), "no accessToken in " << r.describe());
    return token;
  }

  /// Whether the process is still running (reaps it when it ended).
  bool running() {
    if (exit_) return false;
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) record(status);
    return !exit_;
  }

  /// SIGTERM, then waits up to 30 s (SIGKILL after); answers how it ended. Idempotent.
  std::optional<si::exit_status> stop() {
    if (pid_ > 0 && running()) {
      ::kill(pid_, SIGTERM);
      const auto deadline = si::clock_type::now() + 30s;
      while (running() && si::clock_type::now() < deadline) std::this_thread::sleep_for(10ms);
      if (running()) {
        std::cerr << "http_node " << options_.name << ": no exit 30 s after SIGTERM, killing\n";
        kill_now();
      }
    }
    return exit_;
  }

  /// The last lines of the node's stdout and stderr (for failure messages).
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const {
    return "--- " + stdout_path() + " ---\n" + si::tail(si::read_file(stdout_path()), lines) +
           "\n--- " + stderr_path() + " ---\n" + si::tail(si::read_file(stderr_path()), lines);
  }

 private:
  void spawn() {
    std::vector<std::string> args{
        SAGA_NODE_PATH, "--database-url",      db_.url(),      "--node-id", "http-" + options_.name,
        "--http-port",  std::to_string(port_), "--jwt-secret", jwt_secret_, "--demo-catalog"};
    if (options_.relaxed_rate_limits) {
      for (const char* flag : {"--rate-limit-login-per-minute", "--rate-limit-orders-per-second",
                               "--rate-limit-orders-burst"}) {
        args.insert(args.end(), {flag, "100000"});
      }
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    args_text_.clear();
    for (const auto& a : args) args_text_ += a + " ";
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "DATABASE_URL=", 13) != 0 && std::strncmp(*e, "SAGA_", 5) != 0) {
        env.emplace_back(*e);
      }
    }
    env.push_back("SAGA_ADMIN_EMAIL=" + admin_email_);
    env.push_back("SAGA_ADMIN_PASSWORD=" + admin_password_);
    for (const auto& [k, v] : options_.env) env.push_back(k + "=" + v);

    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const auto out_path = stdout_path();
    const auto err_path = stderr_path();
    exit_.reset();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    BOOST_REQUIRE_MESSAGE(pid_ >= 0, "fork: " << std::strerror(errno));
    if (pid_ == 0) {
      // Only async-signal-safe calls here: the test may run other threads.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
      const int in = ::open("/dev/null", O_RDONLY);
      const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0 || err < 0) ::_exit(127);
      ::dup2(in, STDIN_FILENO);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
  }

  bool wait_ready(std::chrono::milliseconds timeout) {
    const auto deadline = si::clock_type::now() + timeout;
    for (;;) {
      if (si::read_file(stdout_path()).find("saga-node: ready") != std::string::npos) return true;
      if (!running() || si::clock_type::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

  void kill_now() {
    if (pid_ > 0 && running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) record(status);
    }
  }

  void record(int status) {
    si::exit_status s;
    if (WIFEXITED(status)) {
      s.exited = true;
      s.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      s.signal = WTERMSIG(status);
    }
    exit_ = s;
  }

  node_options options_;
  si::scratch_database db_;
  std::string log_prefix_;
  std::string jwt_secret_;
  std::string admin_email_;
  std::string admin_password_;
  std::uint16_t port_ = 0;
  std::string base_url_;
  std::string args_text_;
  pid_t pid_ = -1;
  std::optional<si::exit_status> exit_;
  std::mutex mutex_;
  std::string admin_token_;
};

inline std::unique_ptr<http_node>& shared_node_slot() {
  static std::unique_ptr<http_node> node;
  return node;
}

/// The node most tests share (default settings; each test makes its own users, so tests do
/// not see each other's orders). Started on first use, stopped by the global fixture below.
inline http_node& shared_node() {
  static std::once_flag once;
  std::call_once(once, [] {
    node_options o;
    o.name = "shared";
    shared_node_slot() = std::make_unique<http_node>(o);
  });
  auto& node = shared_node_slot();
  BOOST_REQUIRE_MESSAGE(node && node->running(), "the shared saga-node is not running\n"
                                                     << (node ? node->log_tail() : std::string()));
  return *node;
}

/// Stops the shared node when the tests are over, while libpqxx (used to drop its database) is
/// still intact: a function-local static destroyed at exit would run after libpqxx's own.
/// Every file including this header registers one; the second teardown finds nothing to do.
struct shared_node_reaper {
  shared_node_reaper() = default;
  ~shared_node_reaper() { shared_node_slot().reset(); }
  shared_node_reaper(const shared_node_reaper&) = delete;
  shared_node_reaper& operator=(const shared_node_reaper&) = delete;
};
BOOST_TEST_GLOBAL_FIXTURE(shared_node_reaper);

// ---- orders ----

/// The seed system's example order body (DESIGN.md §6, the NestJS README).
inline const std::string seed_address = "서울시 강남구 테헤란로 123";
inline json seed_order_body() {
  return json{{"items", json::array({json{{"productId", "product-1"},
                                          {"productName", "MacBook Pro"},
                                          {"quantity", 1},
                                          {"price", 1500000}}})},
              {"shippingAddress", seed_address}};
}

/// A valid order of `quantity` × product-2 (Magic Mouse, 99,000) with a unique address, so
/// that each call makes a different body.
inline json small_order_body(int quantity = 1) {
  return json{{"items", json::array({json{{"productId", "product-2"},
                                          {"productName", "Magic Mouse"},
                                          {"quantity", quantity},
                                          {"price", 99000}}})},
              {"shippingAddress", "Teheran-ro " + random_token(8)}};
}

/// The 202 answer of POST /orders.
struct placed {
  std::string order_id;
  std::string saga_id;
  std::string correlation_id;
  response raw;
};

/// POSTs `body` as `u` and requires a 202 with orderId, sagaId, correlationId, status PENDING.
inline placed place_order(client& c, const std::string& token, const json& body,
                          header_list extra = {}) {
  extra.push_back(bearer(token));
  placed p;
  p.raw = c.post("/orders", body, extra);
  require_status(p.raw, 202);
  const auto j = require_json(p.raw);
  p.order_id = str(j, "orderId");
  p.saga_id = str(j, "sagaId");
  p.correlation_id = str(j, "correlationId");
  BOOST_REQUIRE_MESSAGE(!p.order_id.empty() && !p.saga_id.empty() && !p.correlation_id.empty(),
                        "202 lacks orderId/sagaId/correlationId: " << p.raw.describe());
  BOOST_CHECK_MESSAGE(str(j, "status") == "PENDING",
                      "202 status is not PENDING: " << p.raw.describe());
  return p;
}

/// Polls GET /saga/status/{cid} until the saga's status is `status` (or `timeout`); answers the
/// last response.
inline response wait_saga_status(client& c, const std::string& token, const std::string& cid,
                                 const std::string& status,
                                 std::chrono::milliseconds timeout = 30s) {
  response last;
  eventually(timeout, [&] {
    last = c.get("/saga/status/" + url_encode(cid), {bearer(token)});
    return last.status == 200 && str(last.json_body(), "status") == status;
  });
  return last;
}

/// Polls GET /orders/{id} until its status is `status`; answers the last response.
inline response wait_order_status(client& c, const std::string& token, const std::string& id,
                                  const std::string& status,
                                  std::chrono::milliseconds timeout = 30s) {
  response last;
  eventually(timeout, [&] {
    last = c.get("/orders/" + url_encode(id), {bearer(token)});
    return last.status == 200 && str(last.json_body(), "status") == status;
  });
  return last;
}

/// The orders GET /orders lists for `token`.
inline json list_orders(client& c, const std::string& token, response* raw = nullptr) {
  auto r = c.get("/orders?limit=100", {bearer(token)});
  require_status(r, 200);
  auto items = list_items(require_json(r));
  if (raw != nullptr) *raw = std::move(r);
  return items;
}

}  // namespace saga::http_test

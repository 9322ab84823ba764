// Internals of the HTTP server shared by server.cpp and the handlers_*.cpp files (only http/*.cpp
// include this; it pulls in RESTinio, asio and nlohmann/json). An `exchange` is one request's
// shared state: whichever of the handler's callback (a CAF thread), the deadline sweeper (an
// HTTP thread) or an error path answers first wins; every later answer is dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <restinio/all.hpp>

#include "actors/read_side.hpp"
#include "actors/runtime.hpp"
#include "http/auth/jwt.hpp"
#include "http/auth/rate_limiter.hpp"
#include "http/auth/user_service.hpp"
#include "http/metrics.hpp"
#include "http/problem.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"

namespace saga::http::detail {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;
/// Extra response headers (name, value).
using header_list = std::vector<std::pair<std::string, std::string>>;

/// RESTinio's connection-level messages (peer resets, parse errors) at debug level: they are
/// about clients, not about the server.
class restinio_log {
 public:
  template <class Builder>
  void trace(Builder&&) {}
  template <class Builder>
  void info(Builder&&) {}
  template <class Builder>
  void warn(Builder&& msg) {
    log(msg());
  }
  template <class Builder>
  void error(Builder&& msg) {
    log(msg());
  }

 private:
  static void log(const std::string& text);
};

using http_traits = restinio::traits_t<restinio::asio_timer_manager_t, restinio_log>;
using http_server = restinio::http_server_t<http_traits>;

/// Runs blocking chores (region statistics, read-side futures for /metrics and /health) on one
/// thread of its own, so neither HTTP nor CAF threads wait. Thread-safe.
class blocking_worker {
 public:
  blocking_worker();
  ~blocking_worker();  ///< runs what is queued, then joins
  blocking_worker(const blocking_worker&) = delete;
  blocking_worker& operator=(const blocking_worker&) = delete;
  /// Queues `job`; false (and `job` is dropped) once stopping.
  bool post(std::function<void()> job);
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

class exchange;
using exchange_ptr = std::shared_ptr<exchange>;

/// Counters the /metrics gauges are refreshed from (runtime counters are cumulative; the
/// registry's counters take deltas).
struct scrape_memory {
  std::mutex mutex;
  std::map<std::string, double> last;  ///< "metric/labels" → last cumulative value seen
};

/// Name and unit price of registered products, as POST /orders checks them. A registered
/// product's name and price never change (the inventory domain has no command that changes
/// them), so an entry, once seen, stays true; unregistered ids are never cached (they may be
/// registered later). Saves asking the product's actor, whose whole state (reservations and
/// idempotency memory included) a query copies. Thread-safe.
class catalog_cache {
 public:
  struct product {
    std::string name;
    std::int64_t price = 0;
  };
  [[nodiscard]] std::optional<product> find(const std::string& id) const;
  void remember(const std::string& id, product p);

 private:
  static constexpr std::size_t max_entries = 100'000;  // beyond it, lookups just ask the actor
  mutable std::mutex mutex_;
  std::map<std::string, product, std::less<>> products_;
};

/// What the server, its handlers and every in-flight request share. Outlives the server object
/// while callbacks still hold requests: late answers find `stopped` set and are dropped.
struct server_core {
  server_core(server_options opts, actors::runtime& rt, actors::read_side& rs,
              auth::user_service& us, metrics_registry& m);

  const server_options options;
  actors::runtime& runtime;
  actors::read_side& reads;
  auth::user_service& users;
  metrics_registry& metrics;
  const auth::jwt_codec jwt;
  auth::verified_tokens tokens{10'000};
  auth::rate_limiter login_by_email;
  auth::rate_limiter login_by_address;
  auth::rate_limiter orders_by_user;
  auth::rate_limiter orders_by_address;
  catalog_cache catalog;
  const std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();

  asio::io_context io;
  std::atomic<bool> stopped{false};

  /// Requests waiting for an answer, oldest first (all share one timeout, so the queue stays
  /// ordered by deadline). Weak: an answered request is freed at once.
  std::mutex deadlines_mutex;
  std::deque<std::pair<clock::time_point, std::weak_ptr<exchange>>> deadlines;
  void track_deadline(const exchange_ptr& ex);
  /// Answers 503 for every request past its deadline; called by the sweeper timer.
  void sweep_deadlines();

  /// Live event streams; each removes itself when it ends.
  std::atomic<std::size_t> event_streams{0};
  std::mutex streams_mutex;
  /// Called at stop(); the weak pointer tells whether the stream is still there.
  std::vector<std::pair<std::weak_ptr<void>, std::function<void()>>> stream_stoppers;

  blocking_worker worker;
  scrape_memory scrape;

  /// Sagas that reached a final status on this node since start, by status.
  std::atomic<std::uint64_t> sagas_completed{0}, sagas_compensated{0}, sagas_failed{0};

  [[nodiscard]] std::int64_t now_s() const;
};

/// One request: the RESTinio request, the matched route, its path parameters, the caller and
/// the correlation id. Handlers keep the exchange_ptr in their callbacks and answer through it.
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(std::shared_ptr<server_core> core, restinio::request_handle_t req);

  const std::shared_ptr<server_core> core;
  /// Released once the answer is handed to RESTinio, so that a late callback holding the
  /// exchange does not keep the connection (and its socket) alive.
  restinio::request_handle_t req;
  const clock::time_point started = clock::now();
  std::string method;
  std::string route_pattern = "unmatched";  ///< metrics label: the OpenAPI path, not the raw one
  const route_info* route = nullptr;
  std::vector<std::string> params;  ///< decoded path parameters, in order
  std::map<std::string, std::string, std::less<>> query;
  std::string correlation_id;
  std::optional<auth::principal> who;

  [[nodiscard]] std::string_view body() const;
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
  [[nodiscard]] std::optional<std::string> query_param(std::string_view name) const;
  [[nodiscard]] std::string client_address() const;
  [[nodiscard]] bool is_admin() const;
  [[nodiscard]] const std::string& user_id() const;
  /// Meta for commands sent on behalf of this request.
  [[nodiscard]] actors::command_meta meta(std::string command_id = {}) const;

  /// Still worth working on: not answered and the server not stopped.
  [[nodiscard]] bool live() const;

  // Answers: the first one wins and returns true; later ones do nothing and return false.
  bool reply_json(int status, const json& body, header_list extra = {});
  bool reply_text(int status, std::string body, std::string content_type, header_list extra = {});
  bool reply_problem(const problem& p, header_list extra = {});
  bool reply_problem(int status, std::string detail, header_list extra = {});
  /// Takes the answer over (a live stream writes its own response); false if already answered.
  bool claim();
  /// Counts the request in the metrics (and logs a 5xx) with `status`.
  void record(int status, std::string_view detail = {}) const;

 private:
  bool send(int status, std::string body, std::string content_type, header_list extra,
            std::string_view detail);

  std::atomic<bool> answered_{false};
};

/// A request handler for one route; it answers now or from a callback.
using handler = std::function<void(const exchange_ptr&)>;
/// (method, OpenAPI path) → handler.
using handler_table = std::map<std::pair<std::string, std::string>, handler>;

void add_auth_handlers(handler_table& table);
void add_product_handlers(handler_table& table);
void add_order_handlers(handler_table& table);
void add_saga_handlers(handler_table& table);
void add_trace_handlers(handler_table& table);
void add_ops_handlers(handler_table& table);

// ---- shared helpers ----

/// "2026-11-21T16:34:04.123Z" for epoch milliseconds.
[[nodiscard]] std::string iso8601(std::int64_t epoch_ms);
/// A correlation id from a client is used when 1..128 chars of [A-Za-z0-9._:-].
[[nodiscard]] bool sane_correlation_id(std::string_view id) noexcept;
/// Percent-decodes a path segment or query component (`plus_is_space` for queries);
/// nullopt for a broken escape.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
/// Parses `limit`/`offset` query parameters (defaults when absent); a problem for bad values.
struct page {
  int limit = 50;
  int offset = 0;
};
[[nodiscard]] expected<page, problem> page_of(const exchange& ex, int default_limit);

/// The problem for an infrastructure failure; a 500 logs `message` (the client sees a generic
/// text).
[[nodiscard]] problem failure_problem(actors::failure_code code, const std::string& message);
/// The problem for an actor reply that is not ok() (rejection or failure).
template <class Reply>
problem problem_of(const Reply& r) {
  if (r.kind == actors::reply_kind::rejected) return problem_for(r.rejection, r.message);
  return failure_problem(r.failure, r.message);
}
/// The problem for a failed read-side query.
[[nodiscard]] problem problem_of(const actors::query_error& e);
/// The problem for a state query that did not answer.
template <class State>
problem state_problem(const actors::state_reply<State>& r) {
  return failure_problem(
      r.failure == actors::failure_code::none ? actors::failure_code::timeout : r.failure,
      r.message);
}

// ---- JSON shapes (§6) ----
[[nodiscard]] json order_json(const domain::order::state& s);
[[nodiscard]] json order_json(const persistence::order_view& v);
[[nodiscard]] json product_json(const domain::inventory::state& s);
[[nodiscard]] json product_json(const persistence::inventory_view& v);
[[nodiscard]] json saga_json(const persistence::saga_view& v);
[[nodiscard]] json event_json(const persistence::recorded_event& e);

}  // namespace saga::http::detail

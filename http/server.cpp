#include "http/server.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <future>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "http/server_internal.hpp"
#include "persistence/event_store.hpp"

namespace saga::http {

namespace detail {

// ---- restinio_log ----

void restinio_log::log(const std::string& text) { spdlog::debug("restinio: {}", text); }

// ---- blocking_worker ----

struct blocking_worker::state {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  bool stopping = false;
  std::thread thread;
};

blocking_worker::blocking_worker() : state_(std::make_shared<state>()) {
  state_->thread = std::thread([s = state_] {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(s->mutex);
        s->wake.wait(lock, [&] { return s->stopping || !s->jobs.empty(); });
        if (s->jobs.empty()) return;
        job = std::move(s->jobs.front());
        s->jobs.pop_front();
      }
      try {
        job();
      } catch (const std::exception& e) {
        spdlog::error("http: background job failed: {}", e.what());
      }
    }
  });
}

blocking_worker::~blocking_worker() { stop(); }

bool blocking_worker::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stopping) return false;
    state_->jobs.push_back(std::move(job));
  }
  state_->wake.notify_one();
  return true;
}

void blocking_worker::stop() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  if (state_->thread.joinable()) {
    if (state_->thread.get_id() == std::this_thread::get_id())
      state_->thread.detach();  // the last reference went away inside a job
    else
      state_->thread.join();
  }
}

// ---- server_core ----

std::optional<catalog_cache::product> catalog_cache::find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = products_.find(id);
  if (it == products_.end()) return std::nullopt;
  return it->second;
}

void catalog_cache::remember(const std::string& id, product p) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (products_.size() >= max_entries) return;
  products_.insert_or_assign(id, std::move(p));
}

server_core::server_core(server_options opts, actors::runtime& rt, actors::read_side& rs,
                         auth::user_service& us, metrics_registry& m)
    : options(std::move(opts)),
      runtime(rt),
      reads(rs),
      users(us),
      metrics(m),
      jwt(options.jwt),
      login_by_email(options.login_per_minute / 60.0, std::max(1.0, options.login_per_minute)),
      login_by_address(options.login_per_minute * options.login_address_factor / 60.0,
                       std::max(1.0, options.login_per_minute * options.login_address_factor)),
      orders_by_user(options.orders_per_second, std::max(1.0, options.orders_burst)),
      orders_by_address(options.orders_per_second * options.orders_address_factor,
                        std::max(1.0, options.orders_burst * options.orders_address_factor)) {}

std::int64_t server_core::now_s() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void server_core::track_deadline(const exchange_ptr& ex) {
  const auto due = ex->started + options.request_timeout;
  std::lock_guard<std::mutex> lock(deadlines_mutex);
  deadlines.emplace_back(due, ex);
}

void server_core::sweep_deadlines() {
  const auto now = clock::now();
  std::vector<exchange_ptr> late;
  {
    std::lock_guard<std::mutex> lock(deadlines_mutex);
    while (!deadlines.empty() && deadlines.front().first <= now) {
      if (auto ex = deadlines.front().second.lock()) late.push_back(std::move(ex));
      deadlines.pop_front();
    }
    // Answered requests leave expired entries behind; drop them from the front early so the
    // queue does not hold a timeout's worth of dead entries under load.
    while (!deadlines.empty() && deadlines.front().second.expired()) deadlines.pop_front();
  }
  for (const auto& ex : late) {
    if (!ex->live()) continue;
    ex->reply_problem(
        problem{503,
                "Service Unavailable",
                "no answer within " + std::to_string(options.request_timeout.count()) +
                    " ms; the request may still take effect (retry with the same "
                    "Idempotency-Key to find out)",
                "about:blank",
                {}},
        {{"Retry-After", "1"}});
  }
}

// ---- exchange ----

exchange::exchange(std::shared_ptr<server_core> c, restinio::request_handle_t r)
    : core(std::move(c)), req(std::move(r)) {}

std::string_view exchange::body() const { return req->body(); }

std::optional<std::string> exchange::header(std::string_view name) const {
  if (auto v = req->header().opt_value_of(name)) return std::string(v->data(), v->size());
  return std::nullopt;
}

std::optional<std::string> exchange::query_param(std::string_view name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::string exchange::client_address() const {
  return req->remote_endpoint().address().to_string();
}

bool exchange::is_admin() const { return who && who->role == domain::user::role::admin; }

const std::string& exchange::user_id() const {
  static const std::string none;
  return who ? who->user_id : none;
}

actors::command_meta exchange::meta(std::string command_id) const {
  return actors::command_meta{correlation_id, "http " + method + " " + route_pattern,
                              std::move(command_id), user_id()};
}

bool exchange::live() const {
  return !answered_.load(std::memory_order_acquire) && !core->stopped.load();
}

bool exchange::claim() { return !answered_.exchange(true, std::memory_order_acq_rel); }

void exchange::record(int status, std::string_view detail) const {
  const double seconds = std::chrono::duration<double>(clock::now() - started).count();
  core->metrics.count_request(route_pattern, method, status, seconds);
  if (status >= 500)
    spdlog::error("http: {} {} answered {} correlation_id={} after {:.3f} s: {}", method,
                  route_pattern, status, correlation_id, seconds, detail);
}

bool exchange::reply_text(int status, std::string body_text, std::string content_type,
                          header_list extra) {
  return send(status, std::move(body_text), std::move(content_type), std::move(extra), {});
}

bool exchange::send(int status, std::string body_text, std::string content_type, header_list extra,
                    std::string_view detail) {
  if (!claim()) return false;
  record(status, detail);
  if (core->stopped.load()) return false;
  try {
    auto resp = req->create_response(restinio::http_status_line_t{
        restinio::http_status_code_t{static_cast<std::uint16_t>(status)},
        std::string(reason_phrase(status))});
    resp.append_header(restinio::http_field::content_type, std::move(content_type));
    resp.append_header("X-Correlation-Id", correlation_id);
    resp.append_header(restinio::http_field::cache_control, "no-store");
    for (auto& [name, value] : extra) resp.append_header(name, std::move(value));
    resp.set_body(std::move(body_text));
    resp.done();
    req.reset();  // only the thread that claimed the answer touches req from here on
  } catch (const std::exception& e) {
    // The connection is gone (or RESTinio refused the response): nobody is left to tell.
    spdlog::debug("http: could not send the answer of {} correlation_id={}: {}", route_pattern,
                  correlation_id, e.what());
  }
  return true;
}

bool exchange::reply_json(int status, const json& body_value, header_list extra) {
  return reply_text(status, body_value.dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json", std::move(extra));
}

bool exchange::reply_problem(const problem& p, header_list extra) {
  return send(p.status, problem_json(p, correlation_id), "application/problem+json",
              std::move(extra), p.detail);
}

bool exchange::reply_problem(int status, std::string detail, header_list extra) {
  return reply_problem(make_problem(status, std::move(detail)), std::move(extra));
}

// ---- helpers ----

std::string iso8601(std::int64_t epoch_ms) {
  if (epoch_ms <= 0) return {};
  const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buf,
                static_cast<int>(epoch_ms % 1000));
  return out;
}

bool sane_correlation_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

expected<page, problem> page_of(const exchange& ex, int default_limit) {
  page p;
  p.limit = default_limit;
  auto read = [&](const char* name, int low, int high, int& into) -> std::optional<problem> {
    auto text = ex.query_param(name);
    if (!text) return std::nullopt;
    long long v = 0;
    bool ok = !text->empty() && text->size() <= 10;
    for (const char c : *text) ok = ok && std::isdigit(static_cast<unsigned char>(c));
    if (ok) v = std::stoll(*text);
    if (!ok || v < low || v > high) {
      problem bad = make_problem(400, std::string(name) + ": must be an integer between " +
                                          std::to_string(low) + " and " + std::to_string(high));
      bad.errors.emplace_back(name, "must be an integer between " + std::to_string(low) + " and " +
                                        std::to_string(high));
      return bad;
    }
    into = static_cast<int>(v);
    return std::nullopt;
  };
  // Pages above the read side's maximum are accepted and clamped to it.
  if (auto bad = read("limit", 1, 1000, p.limit)) return unexpected{*bad};
  p.limit = std::min(p.limit, persistence::max_query_limit);
  if (auto bad = read("offset", 0, 1000000000, p.offset)) return unexpected{*bad};
  return p;
}

problem failure_problem(actors::failure_code code, const std::string& message) {
  if (status_for(code) >= 500 && status_for(code) != 503)
    spdlog::error("http: runtime failure {}: {}", actors::to_string(code), message);
  return problem_for(code, message);
}

problem problem_of(const actors::query_error& e) {
  switch (e.code) {
    case actors::query_errc::invalid_argument:
      return make_problem(400, e.message);
    case actors::query_errc::timeout:
      return problem_for(actors::failure_code::timeout, e.message);
    case actors::query_errc::unavailable:
      return make_problem(503, "the read side is unavailable; retry later");
    case actors::query_errc::internal:
      break;
  }
  spdlog::error("http: read side query failed: {}", e.message);
  return make_problem(500, "internal error");
}

// ---- routing ----

namespace {

struct compiled_route {
  const route_info* info = nullptr;
  std::vector<std::string> segments;  ///< "" marks a parameter
  handler run;
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  if (!path.empty() && path.front() == '/') pos = 1;
  while (pos <= path.size()) {
    const auto next = path.find('/', pos);
    const auto end = next == std::string_view::npos ? path.size() : next;
    out.push_back(path.substr(pos, end - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return out;
}

/// Routes whose body is JSON: required (415 unless JSON) or optional (checked when present).
enum class body_kind { none, required, optional };

body_kind body_of(const route_info& r) {
  const std::string_view m = r.method, p = r.path;
  if (m == "POST" && (p == "/auth/register" || p == "/auth/login" || p == "/products" ||
                      p == "/products/{id}/restock" || p == "/orders"))
    return body_kind::required;
  if ((m == "DELETE" && p == "/orders/{id}") || (m == "POST" && p == "/saga/compensate/{sagaId}"))
    return body_kind::optional;
  return body_kind::none;
}

bool is_json_media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string media(content_type.substr(0, semi));
  media.erase(0, media.find_first_not_of(" \t"));
  media.erase(media.find_last_not_of(" \t") + 1);
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (media == "application/json") return true;
  return media.size() > 5 && media.compare(0, 12, "application/") == 0 &&
         media.compare(media.size() - 5, 5, "+json") == 0;
}

bool parse_query(std::string_view text, std::map<std::string, std::string, std::less<>>& into) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto amp = text.find('&', pos);
    if (amp == std::string_view::npos) amp = text.size();
    const auto part = text.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto key = percent_decode(part.substr(0, eq), true);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1), true);
    if (!key || !value) return false;
    into.emplace(std::move(*key), std::move(*value));  // the first occurrence wins
  }
  return true;
}

}  // namespace

/// Matches requests to routes and runs the checks every route shares.
class dispatcher {
 public:
  dispatcher(const std::shared_ptr<server_core>& core, handler_table table) : core_(core) {
    for (const auto& info : routes()) {
      auto it = table.find({std::string(info.method), std::string(info.path)});
      if (it == table.end())
        throw std::logic_error("http: no handler for " + std::string(info.method) + " " +
                               std::string(info.path));
      compiled_route r;
      r.info = &info;
      for (auto seg : split_path(info.path))
        r.segments.emplace_back(!seg.empty() && seg.front() == '{' ? std::string{}
                                                                   : std::string(seg));
      r.run = std::move(it->second);
      table.erase(it);
      routes_.push_back(std::move(r));
    }
    if (!table.empty())
      throw std::logic_error("http: handler for a route not in routes(): " +
                             table.begin()->first.first + " " + table.begin()->first.second);
  }

  restinio::request_handling_status_t operator()(restinio::request_handle_t req) const {
    auto core = core_.lock();
    if (!core) return restinio::request_rejected();
    auto ex = std::make_shared<exchange>(std::move(core), std::move(req));
    try {
      handle(ex);
    } catch (const std::exception& e) {
      spdlog::error("http: handler of {} {} threw (correlation_id={}): {}", ex->method,
                    ex->route_pattern, ex->correlation_id, e.what());
      ex->reply_problem(500, "internal error");
    }
    if (ex->live()) ex->core->track_deadline(ex);
    return restinio::request_accepted();
  }

 private:
  void handle(const exchange_ptr& ex) const {
    const auto& head = ex->req->header();
    ex->method = head.method().c_str();
    if (auto given = ex->header("X-Correlation-Id"); given && sane_correlation_id(*given))
      ex->correlation_id = std::move(*given);
    else
      ex->correlation_id = persistence::new_uuid();

    std::string_view path = head.path();
    if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    const auto segments = split_path(path);
    const compiled_route* match = nullptr;
    bool path_known = false;
    std::vector<std::string_view> raw_params;
    for (const auto& r : routes_) {
      if (r.segments.size() != segments.size()) continue;
      std::vector<std::string_view> values;
      bool ok = true;
      for (std::size_t i = 0; ok && i < segments.size(); ++i) {
        if (r.segments[i].empty())
          values.push_back(segments[i]), ok = !segments[i].empty();
        else
          ok = r.segments[i] == segments[i];
      }
      if (!ok) continue;
      path_known = true;
      if (r.info->method == ex->method) {
        match = &r;
        raw_params = std::move(values);
        break;
      }
    }
    if (match == nullptr) {
      if (path_known) {
        std::string allowed;
        for (const auto& r : routes_) {
          if (r.segments.size() != segments.size()) continue;
          bool ok = true;
          for (std::size_t i = 0; ok && i < segments.size(); ++i)
            ok = r.segments[i].empty() ? !segments[i].empty() : r.segments[i] == segments[i];
          if (ok) allowed += (allowed.empty() ? "" : ", ") + std::string(r.info->method);
        }
        ex->reply_problem(405, ex->method + " is not allowed here; allowed: " + allowed,
                          {{"Allow", allowed}});
      } else {
        ex->reply_problem(404, "no route for " + ex->method + " " + std::string(head.path()));
      }
      return;
    }
    ex->route = match->info;
    ex->route_pattern = std::string(match->info->path);
    for (auto raw : raw_params) {
      auto decoded = percent_decode(raw, false);
      if (!decoded) {
        ex->reply_problem(400, "malformed percent-encoding in the path");
        return;
      }
      ex->params.push_back(std::move(*decoded));
    }
    if (!parse_query(head.query(), ex->query)) {
      ex->reply_problem(400, "malformed query string");
      return;
    }

    if (ex->body().size() > ex->core->options.max_body_bytes) {
      ex->reply_problem(
          413, "the request body has " + std::to_string(ex->body().size()) + " bytes; at most " +
                   std::to_string(ex->core->options.max_body_bytes) + " are accepted");
      return;
    }

    if (match->info->who != access::public_ && !authenticate(ex)) return;

    const auto kind = body_of(*match->info);
    if (kind != body_kind::none && (kind == body_kind::required || !ex->body().empty())) {
      auto type = ex->header("Content-Type");
      if (!type || !is_json_media_type(*type)) {
        ex->reply_problem(415, "send the body as application/json");
        return;
      }
    }
    match->run(ex);
  }

  bool authenticate(const exchange_ptr& ex) const {
    auto value = ex->header("Authorization");
    if (!value) {
      ex->reply_problem(401, "a bearer token is required",
                        {{"WWW-Authenticate", "Bearer realm=\"saga-api\""}});
      return false;
    }
    std::string_view text = *value;
    constexpr std::string_view scheme = "bearer ";
    bool bearer = text.size() > scheme.size();
    for (std::size_t i = 0; bearer && i < scheme.size(); ++i)
      bearer = std::tolower(static_cast<unsigned char>(text[i])) == scheme[i];
    if (!bearer) {
      ex->reply_problem(401, "the Authorization header must be 'Bearer <token>'",
                        {{"WWW-Authenticate", "Bearer realm=\"saga-api\""}});
      return false;
    }
    text.remove_prefix(scheme.size());
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    const auto now_s = ex->core->now_s();
    if (auto known = ex->core->tokens.find(text, now_s)) {
      ex->who = std::move(*known);
    } else {
      auto verified = ex->core->jwt.verify(text, now_s);
      if (!verified) {
        ex->reply_problem(
            401, "invalid token: " + verified.error(),
            {{"WWW-Authenticate", "Bearer realm=\"saga-api\", error=\"invalid_token\""}});
        return false;
      }
      ex->core->tokens.insert(text, verified.value());
      ex->who = std::move(verified.value());
    }
    if (ex->route->who == access::admin && !ex->is_admin()) {
      ex->reply_problem(403, "this route needs the admin role");
      return false;
    }
    return true;
  }

  // Weak: RESTinio's connections keep the request handler (and so this dispatcher) alive inside
  // the io_context that the core owns.
  std::weak_ptr<server_core> core_;
  std::vector<compiled_route> routes_;
};

}  // namespace detail

// ---- server ----

struct server::impl {
  std::shared_ptr<detail::server_core> core;
  std::unique_ptr<detail::http_server> http;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::unique_ptr<asio::steady_timer> sweeper;
  std::atomic<std::uint16_t> port{0};
  std::uint64_t saga_subscription = 0;
  bool subscribed = false;
  bool started = false;
  bool stopped = false;

  void arm_sweeper() {
    sweeper->expires_after(std::chrono::milliseconds(50));
    // Weak: a wait still queued when the io_context stops must not keep the core alive.
    sweeper->async_wait(
        [this, weak = std::weak_ptr<detail::server_core>(core)](const asio::error_code& ec) {
          auto c = weak.lock();
          if (ec || !c || c->stopped.load()) return;
          c->sweep_deadlines();
          arm_sweeper();
        });
  }
};

server::server(server_options options, actors::runtime& runtime, actors::read_side& reads,
               auth::user_service& users, metrics_registry& metrics)
    : impl_(std::make_unique<impl>()) {
  if (options.threads == 0)
    options.threads = std::max<std::size_t>(1, std::thread::hardware_concurrency() / 2);
  impl_->core =
      std::make_shared<detail::server_core>(std::move(options), runtime, reads, users, metrics);
}

server::~server() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("http: stopping the server failed: {}", e.what());
  }
}

void server::start() {
  if (impl_->started) throw std::logic_error("http: server::start called twice");
  impl_->started = true;
  auto core = impl_->core;
  const auto& opts = core->options;

  detail::handler_table table;
  detail::add_auth_handlers(table);
  detail::add_product_handlers(table);
  detail::add_order_handlers(table);
  detail::add_saga_handlers(table);
  detail::add_trace_handlers(table);
  detail::add_ops_handlers(table);
  auto dispatch = std::make_shared<detail::dispatcher>(core, std::move(table));

  const std::uint64_t hard_body_limit = std::max<std::uint64_t>(
      static_cast<std::uint64_t>(opts.max_body_bytes) * max_body_slack_factor,
      static_cast<std::uint64_t>(opts.max_body_bytes) + (1u << 20));
  auto settings =
      restinio::server_settings_t<detail::http_traits>{}
          .port(opts.port)
          .address(opts.host)
          .request_handler([dispatch](restinio::request_handle_t req) { return (*dispatch)(req); })
          .incoming_http_msg_limits(
              restinio::incoming_http_msg_limits_t{}.max_body_size(hard_body_limit))
          .handle_request_timeout(opts.request_timeout + std::chrono::seconds(30))
          .read_next_http_message_timelimit(std::chrono::seconds(60))
          .write_http_response_timelimit(std::chrono::seconds(30))
          .concurrent_accepts_count(opts.threads)
          .acceptor_post_bind_hook([this](asio::ip::tcp::acceptor& acceptor) {
            impl_->port = acceptor.local_endpoint().port();
          });
  impl_->http = std::make_unique<detail::http_server>(restinio::external_io_context(core->io),
                                                      std::move(settings));
  impl_->work.emplace(asio::make_work_guard(core->io));
  for (std::size_t i = 0; i < opts.threads; ++i) {
    impl_->threads.emplace_back([core] {
      for (;;) {
        try {
          core->io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: an I/O thread caught: {}", e.what());
        }
      }
    });
  }

  std::promise<void> opened;
  auto result = opened.get_future();
  impl_->http->open_async([&opened] { opened.set_value(); },
                          [&opened](std::exception_ptr e) { opened.set_exception(e); });
  try {
    result.get();
  } catch (const std::exception& e) {
    const std::string where = opts.host + ":" + std::to_string(opts.port);
    impl_->stopped = true;
    core->stopped = true;
    impl_->work.reset();
    core->io.stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
    impl_->http.reset();
    core->worker.stop();
    throw std::runtime_error("http: cannot listen on " + where + ": " + e.what());
  }

  impl_->sweeper = std::make_unique<asio::steady_timer>(core->io);
  asio::post(core->io, [this] { impl_->arm_sweeper(); });

  std::weak_ptr<detail::server_core> weak = core;
  impl_->saga_subscription =
      core->runtime.subscribe_finished_sagas([weak](const domain::sagas::state& s) {
        auto c = weak.lock();
        if (!c) return;
        switch (s.status_) {
          case domain::sagas::status::completed:
            ++c->sagas_completed;
            break;
          case domain::sagas::status::compensated:
            ++c->sagas_compensated;
            break;
          case domain::sagas::status::failed:
            ++c->sagas_failed;
            break;
          default:
            break;
        }
      });
  impl_->subscribed = true;
  spdlog::info("http: listening on {}:{} ({} threads, node {})", opts.host, impl_->port.load(),
               opts.threads, opts.node_id);
}

void server::stop() {
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  auto core = impl_->core;

  // 1. No new connections.
  std::promise<void> closed;
  auto closed_result = closed.get_future();
  impl_->http->close_async([&closed] { closed.set_value(); },
                           [&closed](std::exception_ptr e) { closed.set_exception(e); });
  if (closed_result.wait_for(std::chrono::seconds(5)) == std::future_status::ready) {
    try {
      closed_result.get();
    } catch (const std::exception& e) {
      spdlog::warn("http: closing the listener: {}", e.what());
    }
  }

  // 2. End live streams (each finishes its chunked response on its own strand).
  std::vector<std::pair<std::weak_ptr<void>, std::function<void()>>> stoppers;
  {
    std::lock_guard<std::mutex> lock(core->streams_mutex);
    stoppers.swap(core->stream_stoppers);
  }
  for (auto& [alive, stop_stream] : stoppers)
    if (!alive.expired()) stop_stream();

  // 3. Let in-flight requests answer; the deadline sweeper answers the slow ones.
  const auto give_up =
      detail::clock::now() + core->options.request_timeout + std::chrono::milliseconds(500);
  for (;;) {
    bool pending = false;
    {
      std::lock_guard<std::mutex> lock(core->deadlines_mutex);
      for (const auto& [due, weak] : core->deadlines) {
        if (auto ex = weak.lock(); ex && ex->live()) {
          pending = true;
          break;
        }
      }
    }
    pending = pending || core->event_streams.load() > 0;
    if (!pending || detail::clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (impl_->subscribed) core->runtime.unsubscribe_finished_sagas(impl_->saga_subscription);

  // 4. Give the last answers a moment to reach their sockets, then stop the threads.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  core->stopped = true;
  impl_->work.reset();
  core->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->sweeper.reset();
  impl_->http.reset();
  core->worker.stop();
  spdlog::info("http: stopped");
}

std::uint16_t server::port() const { return impl_->port.load(); }

}  // namespace saga::http

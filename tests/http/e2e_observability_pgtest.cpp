// Observability and discovery over HTTP against a real saga-node: X-Correlation-Id, health,
// Prometheus metrics that move with traffic, the OpenAPI document (every §6 route documented,
// every documented route served), unknown routes, and the events feed as JSON and as a live
// Server-Sent Events stream.
#include <atomic>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/http/support.hpp"

namespace ht = saga::http_test;
using ht::bearer;
using ht::json;
using ht::str;
using namespace std::chrono_literals;

namespace {

const std::regex uuid_shape(
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    "[0-9a-fA-F]{12}$");

/// The sum of every sample of `metric` whose label set contains all of `labels` (each given
/// as name="value").
double metric_sum(const std::string& text, const std::string& metric,
                  const std::vector<std::string>& labels) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, metric.size(), metric) != 0) continue;
    const auto rest = line.substr(metric.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;  // a longer name
    const auto close = rest.find('}');
    const std::string label_text = rest[0] == '{' ? rest.substr(0, close + 1) : std::string();
    bool all = true;
    for (const auto& l : labels) all = all && label_text.find(l) != std::string::npos;
    if (!all) continue;
    const auto value_at = rest[0] == '{' ? close + 1 : 0;
    sum += std::stod(rest.substr(value_at));
  }
  return sum;
}

/// One Server-Sent Event.
struct sse_event {
  std::string id;
  std::string event;
  std::string data;
};

/// GET `path` with Accept: text/event-stream on a thread of its own; collects events until
/// destroyed.
class sse_stream {
 public:
  sse_stream(const std::string& base_url, const std::string& path, ht::header_list headers)
      : url_(base_url + path), headers_(std::move(headers)) {
    ht::curl_global_once();
    thread_ = std::thread([this] { run(); });
  }
  ~sse_stream() {
    stop_ = true;
    thread_.join();
  }
  sse_stream(const sse_stream&) = delete;
  sse_stream& operator=(const sse_stream&) = delete;

  /// Waits until the response headers arrived; answers the status (0: none yet).
  long wait_headers(std::chrono::milliseconds timeout) {
    ht::eventually(
        timeout, [&] { return status_.load() != 0; }, 10ms);
    return status_;
  }

  [[nodiscard]] std::string content_type() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return content_type_;
  }

  [[nodiscard]] std::vector<sse_event> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }

  /// The first event whose data contains `needle`, waiting up to `timeout`.
  std::optional<sse_event> wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    std::optional<sse_event> found;
    ht::eventually(timeout, [&] {
      for (const auto& e : events()) {
        if (e.data.find(needle) != std::string::npos) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  [[nodiscard]] std::string raw_head() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ht::abbreviate(raw_, 1500) + (error_.empty() ? "" : " [curl: " + error_ + "]");
  }

 private:
  void run() {
    CURL* h = curl_easy_init();
    curl_slist* list = curl_slist_append(nullptr, "Accept: text/event-stream");
    for (const auto& [k, v] : headers_) list = curl_slist_append(list, (k + ": " + v).c_str());
    curl_easy_setopt(h, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &sse_stream::on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &sse_stream::on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &sse_stream::on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
    const auto rc = curl_easy_perform(h);
    if (rc != CURLE_OK && rc != CURLE_ABORTED_BY_CALLBACK) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = curl_easy_strerror(rc);
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
  }

  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<sse_stream*>(self)->stop_ ? 1 : 0;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* p) {
    auto* self = static_cast<sse_stream*>(p);
    std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
      const auto space = line.find(' ');
      if (space != std::string::npos) self->status_ = std::atol(line.c_str() + space + 1);
    } else if (line.size() > 13 && ht::iequals(line.substr(0, 13), "content-type:")) {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->content_type_ = line.substr(13);
    }
    return size * n;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* p) {
    auto* self = static_cast<sse_stream*>(p);
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (self->raw_.size() < 4096) self->raw_.append(data, size * n);
    self->pending_.append(data, size * n);
    self->parse_locked();
    return size * n;
  }

  // Splits complete events (terminated by a blank line) off pending_.
  void parse_locked() {
    for (;;) {
      std::size_t end = pending_.find("\n\n");
      std::size_t sep = 2;
      const auto crlf = pending_.find("\r\n\r\n");
      if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
        end = crlf;
        sep = 4;
      }
      if (end == std::string::npos) return;
      const auto block = pending_.substr(0, end);
      pending_.erase(0, end + sep);
      sse_event e;
      std::istringstream in(block);
      std::string line;
      bool any = false;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == ':') continue;
        const auto colon = line.find(':');
        const auto field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (field == "id") {
          e.id = value;
        } else if (field == "event") {
          e.event = value;
        } else if (field == "data") {
          e.data += (e.data.empty() ? "" : "\n") + value;
        } else {
          continue;
        }
        any = true;
      }
      if (any) events_.push_back(std::move(e));
    }
  }

  std::string url_;
  ht::header_list headers_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<long> status_{0};
  mutable std::mutex mutex_;
  std::string content_type_;
  std::string raw_;
  std::string pending_;
  std::string error_;
  std::vector<sse_event> events_;
};

/// A numeric journal position of an event object of the JSON feed, or -1.
std::int64_t position_of(const json& e) {
  for (const char* key : {"position", "globalPosition", "global_position", "id"}) {
    auto it = e.find(key);
    if (it != e.end() && it->is_number_integer()) return it->get<std::int64_t>();
    if (it != e.end() && it->is_string()) {
      try {
        return std::stoll(it->get<std::string>());
      } catch (...) {
      }
    }
  }
  return -1;
}

/// "/orders/{id}" → "/orders/{}" (parameter names differ between documents).
std::string normalize_path(const std::string& path) {
  return std::regex_replace(path, std::regex("\\{[^}]*\\}"), "{}");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_observability)

BOOST_AUTO_TEST_CASE(correlation_id_is_echoed_or_generated_on_every_response) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto cid = "e2e-cid-" + ht::random_token(16);
  const auto echoed = c.get("/health", {{"X-Correlation-Id", cid}});
  ht::check_status(echoed, 200);
  BOOST_CHECK_MESSAGE(echoed.header("X-Correlation-Id").value_or("") == cid,
                      "not echoed: " << echoed.describe());

  const auto fresh = c.get("/health");
  const auto generated = fresh.header("X-Correlation-Id").value_or("");
  BOOST_CHECK_MESSAGE(std::regex_match(generated, uuid_shape),
                      "generated X-Correlation-Id is not a UUID: '" << generated << "'");
  const auto again = c.get("/health").header("X-Correlation-Id").value_or("");
  BOOST_CHECK_MESSAGE(again != generated, "two requests got the same generated id " << again);

  // An absurd header is not trusted: the server makes its own.
  const std::string absurd(2000, 'z');
  const auto replaced = c.get("/health", {{"X-Correlation-Id", absurd}});
  const auto used = replaced.header("X-Correlation-Id").value_or("");
  BOOST_CHECK_MESSAGE(!used.empty() && used != absurd,
                      "a 2,000-byte correlation id was echoed back");

  // Errors carry it too, in the header and in the problem body.
  const auto missing = c.get("/no/such/route", {{"X-Correlation-Id", cid}});
  ht::check_problem(missing, 404);
  BOOST_CHECK_EQUAL(missing.header("X-Correlation-Id").value_or(""), cid);
  const auto unauthorized = c.get("/orders");
  ht::check_problem(unauthorized, 401);
}

BOOST_AUTO_TEST_CASE(unknown_routes_and_methods_are_problems) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  ht::check_problem(c.get("/definitely/not/here"), 404);
  ht::check_problem(c.post("/orders/some-id/unknown-action", std::string("{}")), 404);
  const auto wrong_method = c.request("PATCH", "/health", std::nullopt, {});
  BOOST_CHECK_MESSAGE(wrong_method.status == 404 || wrong_method.status == 405,
                      "expected 404/405 from " << wrong_method.describe());
  if (wrong_method.status == 405 || wrong_method.status == 404) {
    ht::check_problem(wrong_method, wrong_method.status);
  }
}

BOOST_AUTO_TEST_CASE(health_routes_answer) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto live = c.get("/health");
  ht::check_status(live, 200);
  const auto detailed = c.get("/health/detailed", {bearer(node.admin_token())});
  ht::check_status(detailed, 200);
  const auto j = detailed.json_body();
  BOOST_CHECK_MESSAGE(j.is_object() && !j.empty(), "not a JSON object: " << detailed.describe());
  std::string lower = detailed.body;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* topic : {"database", "migration", "uptime"}) {
    BOOST_CHECK_MESSAGE(
        lower.find(topic) != std::string::npos,
        "/health/detailed says nothing about " << topic << ": " << detailed.describe());
  }
}

BOOST_AUTO_TEST_CASE(metrics_move_with_traffic_and_label_routes_by_pattern) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("metrics");
  const auto before = c.get("/metrics");
  ht::require_status(before, 200);
  BOOST_CHECK_MESSAGE(before.header("Content-Type").value_or("").find("text/plain") == 0,
                      "metrics content type: " << before.header("Content-Type").value_or(""));
  const std::vector<std::string> post_orders{"route=\"/orders\"", "method=\"POST\""};
  const auto posted_before = metric_sum(before.body, "saga_http_requests_total", post_orders);
  const auto refused_before =
      metric_sum(before.body, "saga_http_requests_total", {"route=\"/orders\"", "status=\"422\""});

  std::string order_id;
  for (int i = 0; i < 3; ++i)
    order_id = ht::place_order(c, u.token, ht::small_order_body()).order_id;
  ht::check_status(c.post("/orders", json{{"items", json::array()}, {"shippingAddress", "x"}},
                          {bearer(u.token)}),
                   422);
  ht::check_status(c.get("/orders/" + order_id, {bearer(u.token)}), 200);

  const auto after = c.get("/metrics");
  ht::require_status(after, 200);
  const auto posted_after = metric_sum(after.body, "saga_http_requests_total", post_orders);
  BOOST_CHECK_MESSAGE(posted_after >= posted_before + 4,
                      "POST /orders count went from " << posted_before << " to " << posted_after
                                                      << " after 4 requests");
  BOOST_CHECK_MESSAGE(metric_sum(after.body, "saga_http_requests_total",
                                 {"route=\"/orders\"", "status=\"422\""}) >= refused_before + 1,
                      "the 422 was not counted by status");
  BOOST_CHECK_MESSAGE(
      after.body.find("# TYPE saga_http_requests_total counter") != std::string::npos,
      "no TYPE line for saga_http_requests_total");
  BOOST_CHECK_MESSAGE(
      metric_sum(after.body, "saga_http_request_duration_seconds_count", post_orders) >= 4,
      "no latency histogram for POST /orders");
  BOOST_CHECK_MESSAGE(
      after.body.find("saga_http_request_duration_seconds_bucket") != std::string::npos,
      "no latency buckets");
  BOOST_CHECK_MESSAGE(after.body.find(order_id) == std::string::npos,
                      "a raw order id appears in the metrics (routes must be patterns)");
  // Sagas by status appear once sagas ran.
  BOOST_CHECK_MESSAGE(after.body.find("saga_sagas") != std::string::npos ||
                          after.body.find("sagas_") != std::string::npos,
                      "no saga metrics in /metrics");
}

BOOST_AUTO_TEST_CASE(openapi_documents_every_route_and_every_documented_route_is_served) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto doc_response = c.get("/api-json");
  ht::require_status(doc_response, 200);
  const auto doc = ht::require_json(doc_response);
  BOOST_REQUIRE_MESSAGE(str(doc, "openapi").rfind("3.", 0) == 0,
                        "not an OpenAPI 3 document: " << ht::abbreviate(doc_response.body, 300));
  BOOST_REQUIRE_MESSAGE(doc.contains("paths") && doc["paths"].is_object(), "no paths");

  std::set<std::string> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      (void)op;
      std::string upper = method;
      for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (upper == "PARAMETERS" || upper == "SUMMARY" || upper == "DESCRIPTION") continue;
      documented.insert(upper + " " + normalize_path(path));
    }
  }
  // DESIGN.md §6.
  const std::vector<std::string> required{"POST /auth/register",
                                          "POST /auth/login",
                                          "POST /products",
                                          "GET /products",
                                          "GET /products/{}",
                                          "POST /products/{}/restock",
                                          "POST /orders",
                                          "GET /orders",
                                          "GET /orders/{}",
                                          "DELETE /orders/{}",
                                          "PUT /orders/{}/confirm",
                                          "GET /saga/status/{}",
                                          "GET /saga/active",
                                          "POST /saga/retry/{}",
                                          "POST /saga/compensate/{}",
                                          "GET /trace/correlation/{}",
                                          "GET /trace/order/{}",
                                          "GET /trace/active-flows",
                                          "GET /trace/events",
                                          "GET /health",
                                          "GET /health/detailed",
                                          "GET /metrics",
                                          "GET /api-json",
                                          "GET /api"};
  for (const auto& r : required) {
    BOOST_CHECK_MESSAGE(documented.count(r) == 1, "the OpenAPI document lacks " << r);
  }
  BOOST_CHECK_MESSAGE(doc.contains("components") && doc["components"].contains("securitySchemes"),
                      "no securitySchemes (bearerAuth) in the document");

  // Real ids for the parameters: an order (and its saga) of a customer, a second one to
  // cancel and compensate, the demo catalog's product-1.
  const auto u = node.new_customer("openapi");
  const auto p = ht::place_order(c, u.token, ht::small_order_body());
  const auto victim = ht::place_order(c, u.token, ht::small_order_body());
  const auto admin = node.admin_token();
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      (void)op;
      std::string upper = method;
      for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (upper != "GET" && upper != "POST" && upper != "PUT" && upper != "DELETE" &&
          upper != "PATCH") {
        continue;
      }
      const bool destructive = upper == "DELETE" || path.find("/compensate/") != std::string::npos;
      const auto& order = destructive ? victim : p;
      std::string concrete;
      std::size_t i = 0;
      while (i < path.size()) {
        if (path[i] != '{') {
          concrete += path[i++];
          continue;
        }
        const auto close = path.find('}', i);
        const auto name = path.substr(i + 1, close - i - 1);
        const auto before = path.substr(0, i);
        std::string value = order.order_id;
        if (before.rfind("/products/", 0) == 0 || name == "productId") {
          value = "product-1";
        } else if (name == "correlationId" || before.find("/correlation/") != std::string::npos ||
                   before.find("/saga/status/") != std::string::npos) {
          value = order.correlation_id;
        } else if (name == "sagaId" || before.find("/saga/") != std::string::npos) {
          value = order.saga_id;
        } else if (name == "type" || name == "kind") {
          value = "order";
        }
        concrete += ht::url_encode(value);
        i = close + 1;
      }
      const std::optional<std::string> body =
          upper == "GET" || upper == "DELETE" ? std::nullopt : std::optional<std::string>("{}");
      auto r = c.request(upper, concrete, body, {bearer(u.token)});
      if (r.status == 403) r = c.request(upper, concrete, body, {bearer(admin)});
      BOOST_CHECK_MESSAGE(
          r.status != 0 && r.status != 404 && r.status != 405,
          "documented route " << upper << " " << path << " is not served: " << r.describe());
    }
  }

  const auto page = c.get("/api");
  ht::check_status(page, 200);
  BOOST_CHECK_MESSAGE(page.header("Content-Type").value_or("").find("text/html") == 0,
                      "GET /api is not HTML: " << page.header("Content-Type").value_or(""));
  BOOST_CHECK_MESSAGE(page.body.find("/orders") != std::string::npos &&
                          page.body.find("/saga/status") != std::string::npos,
                      "GET /api does not list the routes");
}

BOOST_AUTO_TEST_CASE(events_feed_pages_by_position) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("feed");
  const auto p = ht::place_order(c, u.token, ht::small_order_body());
  ht::wait_saga_status(c, u.token, p.correlation_id, "COMPLETED");
  const ht::header_list admin{bearer(node.admin_token())};
  const auto page = c.get("/trace/events?after=0&limit=5", admin);
  ht::require_status(page, 200);
  const auto items = ht::list_items(ht::require_json(page));
  BOOST_REQUIRE_MESSAGE(items.size() == 5, "expected 5 events: " << page.describe());
  std::int64_t last = 0;
  for (const auto& e : items) {
    const auto pos = position_of(e);
    BOOST_CHECK_MESSAGE(pos > last, "positions not ascending from after=0: " << page.describe());
    last = pos;
  }
  const auto next =
      c.get("/trace/events?after=" + std::to_string(position_of(items[1])) + "&limit=2", admin);
  ht::require_status(next, 200);
  const auto next_items = ht::list_items(ht::require_json(next));
  BOOST_REQUIRE_MESSAGE(next_items.size() == 2, next.describe());
  BOOST_CHECK_EQUAL(position_of(next_items[0]), position_of(items[2]));
  BOOST_CHECK_EQUAL(position_of(next_items[1]), position_of(items[3]));
  for (const char* bad : {"/trace/events?after=-1", "/trace/events?limit=abc"}) {
    const auto r = c.get(bad, admin);
    BOOST_CHECK_MESSAGE(r.status == 400 || r.status == 422,
                        "expected 400/422 from " << r.describe());
  }
}

BOOST_AUTO_TEST_CASE(sse_stream_delivers_an_event_appended_after_connecting) {
  auto& node = ht::shared_node();
  auto c = node.make_client();
  const auto u = node.new_customer("sse");
  sse_stream stream(node.base_url(), "/trace/events", {bearer(node.admin_token())});
  const auto status = stream.wait_headers(5s);
  BOOST_CHECK_MESSAGE(status == 200 || status == 0,
                      "SSE answered " << status << ": " << stream.raw_head());
  std::this_thread::sleep_for(200ms);  // the request is surely in the server's hands now

  const auto cid = "e2e-sse-" + ht::random_token(12);
  const auto p = ht::place_order(c, u.token, ht::small_order_body(), {{"X-Correlation-Id", cid}});
  const auto got = stream.wait_for(cid, 20s);
  BOOST_REQUIRE_MESSAGE(
      got.has_value(),
      "no SSE event mentioning " << cid << " within 20 s; stream so far: " << stream.raw_head());
  BOOST_CHECK_EQUAL(stream.wait_headers(1s), 200);
  BOOST_CHECK_MESSAGE(stream.content_type().find("text/event-stream") != std::string::npos,
                      "SSE content type: " << stream.content_type());
  BOOST_CHECK_MESSAGE(!got->id.empty() && std::all_of(got->id.begin(), got->id.end(), ::isdigit),
                      "SSE id is not a position: '" << got->id << "'");
  BOOST_CHECK_MESSAGE(!got->event.empty(), "SSE event has no event type");
  BOOST_CHECK_MESSAGE(!json::parse(got->data, nullptr, false).is_discarded(),
                      "SSE data is not JSON: " << got->data);
  const auto order_event = stream.wait_for(p.order_id, 5s);
  BOOST_CHECK_MESSAGE(order_event.has_value(), "no SSE event names the order");

  // Resuming with Last-Event-ID starts after that position.
  sse_stream resumed(node.base_url(), "/trace/events",
                     {bearer(node.admin_token()), {"Last-Event-ID", got->id}});
  ht::eventually(10s, [&] { return !resumed.events().empty(); });
  const auto replayed = resumed.events();
  BOOST_REQUIRE_MESSAGE(!replayed.empty(),
                        "resumed stream delivered nothing: " << resumed.raw_head());
  const auto number = [](const std::string& id) {
    return !id.empty() && std::all_of(id.begin(), id.end(), ::isdigit) ? std::stoll(id) : -1LL;
  };
  BOOST_CHECK_MESSAGE(
      number(replayed.front().id) > number(got->id),
      "resumed stream started at " << replayed.front().id << ", not after " << got->id);
}

BOOST_AUTO_TEST_SUITE_END()

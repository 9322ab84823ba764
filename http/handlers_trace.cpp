// Traces: a correlation id's events, an order's flow, the flows in progress, and the global
// event feed — a JSON page, or with `Accept: text/event-stream` a live stream (SSE) that polls
// the journal on its own asio strand and ends on client disconnect or server stop.
#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "actors/aggregate_traits.hpp"
#include "http/server_internal.hpp"

namespace saga::http::detail {

namespace {

std::string string_field(const json& data, const char* name) {
  if (data.is_object()) {
    auto it = data.find(name);
    if (it != data.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

/// The events of `events` that belong to one of `orders` or `sagas` (ids, not stream ids):
/// their own streams ("order-<id>", "saga-<id>"), and events of other streams (payments,
/// inventory) that name one of the orders.
json flow_events(const std::vector<persistence::recorded_event>& events,
                 const std::set<std::string>& orders, const std::set<std::string>& sagas) {
  std::set<std::string> streams;
  for (const auto& o : orders) streams.insert(actors::stream_id_of("order", o));
  for (const auto& s : sagas) streams.insert(actors::stream_id_of("saga", s));
  json out = json::array();
  for (const auto& e : events) {
    json j = event_json(e);
    const bool mine =
        streams.count(e.stream_id) != 0 || orders.count(string_field(j["data"], "orderId")) != 0;
    if (mine) out.push_back(std::move(j));
  }
  return out;
}

std::optional<std::int64_t> position_of(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  for (const char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  return std::stoll(text);
}

int limit_of(const exchange& ex, int fallback, std::optional<problem>& bad) {
  auto text = ex.query_param("limit");
  if (!text) return fallback;
  auto v = position_of(*text);
  if (!v || *v < 1 || *v > 1000) {
    bad = make_problem(400, "limit: must be an integer between 1 and 1000");
    bad->errors.emplace_back("limit", "must be an integer between 1 and 1000");
    return fallback;
  }
  return std::min(static_cast<int>(*v), persistence::max_query_limit);
}

void trace_correlation(const exchange_ptr& ex) {
  std::optional<problem> bad;
  const int limit = limit_of(*ex, persistence::max_query_limit, bad);
  if (bad) {
    ex->reply_problem(*bad);
    return;
  }
  const std::string cid = ex->params.at(0);
  ex->core->reads.events_by_correlation(
      cid, limit, [ex, cid](actors::query_result<std::vector<persistence::recorded_event>> r) {
        if (!r) {
          ex->reply_problem(problem_of(r.error()));
          return;
        }
        const auto& events = r.value();
        if (ex->is_admin()) {
          if (events.empty()) {
            ex->reply_problem(404, "no events with correlation id " + cid);
            return;
          }
          json out = json::array();
          for (const auto& e : events) out.push_back(event_json(e));
          ex->reply_json(200, out);
          return;
        }
        // Correlation ids come from clients, so two customers may share one: a customer sees
        // the flows of their own orders only.
        std::set<std::string> orders, sagas;
        for (const auto& e : events) {
          if (e.stream_type != "order" || e.event_type != "OrderCreated") continue;
          json data = json::parse(e.payload, nullptr, false);
          if (string_field(data, "customerId") != ex->user_id()) continue;
          orders.insert(string_field(data, "orderId"));
          if (auto saga = string_field(data, "sagaId"); !saga.empty()) sagas.insert(saga);
        }
        if (orders.empty()) {
          ex->reply_problem(404, "no events with correlation id " + cid);
          return;
        }
        ex->reply_json(200, flow_events(events, orders, sagas));
      });
}

void trace_order(const exchange_ptr& ex) {
  const std::string id = ex->params.at(0);
  ex->core->runtime.order_state(id, [ex, id](actors::state_reply<domain::order::state> o) {
    if (!o.ok) {
      ex->reply_problem(state_problem(o));
      return;
    }
    if (o.state.status_ == domain::order::status::none ||
        (!ex->is_admin() && o.state.customer_id != ex->user_id())) {
      ex->reply_problem(404, "no order " + id);
      return;
    }
    if (!ex->live()) return;
    std::set<std::string> orders{id}, sagas;
    if (!o.state.saga_id.empty()) sagas.insert(o.state.saga_id);
    ex->core->reads.events_by_correlation(
        o.state.correlation_id, persistence::max_query_limit,
        [ex, orders, sagas](actors::query_result<std::vector<persistence::recorded_event>> r) {
          if (!r) {
            ex->reply_problem(problem_of(r.error()));
            return;
          }
          ex->reply_json(200, flow_events(r.value(), orders, sagas));
        });
  });
}

// ---- live stream ----

/// One SSE client. Every step runs on `strand_`; exactly one step (timer, query or write) is
/// outstanding at a time, so the stream needs no locks.
class event_stream : public std::enable_shared_from_this<event_stream> {
 public:
  event_stream(exchange_ptr ex, std::int64_t after)
      : ex_(std::move(ex)),
        core_(ex_->core),
        strand_(asio::make_strand(core_->io)),
        timer_(strand_),
        last_(after) {}

  ~event_stream() { --core_->event_streams; }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->open(); });
  }

  /// Ends the stream (from any thread).
  void stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      self->timer_.cancel();
    });
  }

 private:
  static constexpr int batch = 200;

  void open() {
    try {
      resp_.emplace(ex_->req->create_response<restinio::chunked_output_t>());
      resp_->append_header(restinio::http_field::content_type, "text/event-stream; charset=utf-8");
      resp_->append_header(restinio::http_field::cache_control, "no-cache");
      resp_->append_header("X-Correlation-Id", ex_->correlation_id);
      resp_->append_header("X-Accel-Buffering", "no");
      resp_->append_chunk(": stream of journal events after " + std::to_string(last_) + "\n\n");
    } catch (const std::exception& e) {
      spdlog::debug("http: event stream could not start: {}", e.what());
      finished_ = true;
      return;
    }
    last_write_ = clock::now();
    flush_then(std::chrono::milliseconds(0));
  }

  void schedule(std::chrono::milliseconds delay) {
    if (stopping_ || core_->stopped.load()) {
      finish();
      return;
    }
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this()](const asio::error_code&) {
      // Runs on the strand (the timer's executor).
      if (self->stopping_ || self->core_->stopped.load()) {
        self->finish();
        return;
      }
      self->poll();
    });
  }

  void poll() {
    auto self = shared_from_this();
    core_->reads.events_after(
        last_, batch, [self](actors::query_result<std::vector<persistence::recorded_event>> r) {
          asio::post(self->strand_,
                     [self, r = std::move(r)]() mutable { self->on_events(std::move(r)); });
        });
  }

  void on_events(actors::query_result<std::vector<persistence::recorded_event>> r) {
    if (stopping_ || core_->stopped.load()) {
      finish();
      return;
    }
    bool more = false;
    if (!r) {
      // Keep the stream; the next poll may succeed (the database may be back).
      spdlog::debug("http: event stream poll failed: {}", r.error().message);
    } else {
      for (const auto& e : r.value()) {
        std::string chunk =
            "id: " + std::to_string(e.position) + "\nevent: " + e.event_type +
            "\ndata: " + event_json(e).dump(-1, ' ', false, json::error_handler_t::replace) +
            "\n\n";
        resp_->append_chunk(std::move(chunk));
        last_ = std::max(last_, e.position);
      }
      more = r.value().size() >= static_cast<std::size_t>(batch);
      if (!r.value().empty()) last_write_ = clock::now();
    }
    if (clock::now() - last_write_ >= core_->options.event_heartbeat_interval) {
      resp_->append_chunk(std::string(": keep-alive\n\n"));
      last_write_ = clock::now();
    }
    flush_then(more ? std::chrono::milliseconds(0) : core_->options.event_poll_interval);
  }

  /// Writes what is buffered (possibly nothing: the write still tells whether the client is
  /// there), then waits `delay` before the next poll.
  void flush_then(std::chrono::milliseconds delay) {
    auto self = shared_from_this();
    try {
      resp_->flush([self, delay](const asio::error_code& ec) {
        asio::post(self->strand_, [self, ec, delay] {
          if (ec) {  // the client went away
            self->finished_ = true;
            return;
          }
          self->schedule(delay);
        });
      });
    } catch (const std::exception& e) {
      spdlog::debug("http: event stream write failed: {}", e.what());
      finished_ = true;
    }
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    try {
      resp_->done();
    } catch (const std::exception& e) {
      spdlog::debug("http: event stream end failed: {}", e.what());
    }
  }

  exchange_ptr ex_;
  std::shared_ptr<server_core> core_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  std::optional<restinio::response_builder_t<restinio::chunked_output_t>> resp_;
  std::int64_t last_ = 0;
  clock::time_point last_write_;
  bool stopping_ = false;
  bool finished_ = false;
};

bool wants_event_stream(const exchange& ex) {
  auto accept = ex.header("Accept");
  return accept && accept->find("text/event-stream") != std::string::npos;
}

void events(const exchange_ptr& ex) {
  std::int64_t after = 0;
  if (auto text = ex->query_param("after")) {
    auto v = position_of(*text);
    if (!v) {
      problem bad = make_problem(400, "after: must be a journal position (an integer >= 0)");
      bad.errors.emplace_back("after", "must be an integer >= 0");
      ex->reply_problem(bad);
      return;
    }
    after = *v;
  }
  std::optional<problem> bad;
  const int limit = limit_of(*ex, 100, bad);
  if (bad) {
    ex->reply_problem(*bad);
    return;
  }
  if (!wants_event_stream(*ex)) {
    ex->core->reads.events_after(
        after, limit, [ex](actors::query_result<std::vector<persistence::recorded_event>> r) {
          if (!r) {
            ex->reply_problem(problem_of(r.error()));
            return;
          }
          json out = json::array();
          for (const auto& e : r.value()) out.push_back(event_json(e));
          ex->reply_json(200, out);
        });
    return;
  }
  // A reconnecting EventSource repeats the URL and sends where it got to: that wins.
  if (auto last = ex->header("Last-Event-ID"); last && !last->empty()) {
    auto v = position_of(*last);
    if (!v) {
      ex->reply_problem(400, "Last-Event-ID must be a journal position (an integer >= 0)");
      return;
    }
    after = *v;
  }
  auto& core = *ex->core;
  if (++core.event_streams > core.options.max_event_streams) {
    --core.event_streams;
    ex->reply_problem(503, "too many live event streams; retry later", {{"Retry-After", "5"}});
    return;
  }
  auto stream = std::make_shared<event_stream>(ex, after);  // its destructor decrements
  if (!ex->claim()) return;
  ex->record(200);
  {
    std::lock_guard<std::mutex> lock(core.streams_mutex);
    auto& stoppers = core.stream_stoppers;
    stoppers.erase(std::remove_if(stoppers.begin(), stoppers.end(),
                                  [](const auto& s) { return s.first.expired(); }),
                   stoppers.end());
    std::weak_ptr<event_stream> weak = stream;
    stoppers.emplace_back(std::weak_ptr<void>(stream), [weak] {
      if (auto s = weak.lock()) s->stop();
    });
  }
  stream->start();
}

}  // namespace

void add_trace_handlers(handler_table& table) {
  table[{"GET", "/trace/correlation/{correlationId}"}] = trace_correlation;
  table[{"GET", "/trace/order/{orderId}"}] = trace_order;
  table[{"GET", "/trace/events"}] = events;
}

}  // namespace saga::http::detail

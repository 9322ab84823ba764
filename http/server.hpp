// The HTTP/JSON front (DESIGN.md §6): a RESTinio server on its own thread pool whose handlers
// answer from runtime and read-side callbacks, never waiting on a thread. No RESTinio, asio,
// CAF or pqxx here. start() and stop() are for one controlling thread; the server serves any
// number of connections concurrently on its own threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "http/auth/jwt.hpp"

namespace saga::actors {
class runtime;
class read_side;
}  // namespace saga::actors

namespace saga::http {

namespace auth {
class user_service;
}  // namespace auth

class metrics_registry;

struct server_options {
  std::string host = "0.0.0.0";
  /// 0 = an ephemeral port (see server::port()).
  std::uint16_t port = 8080;
  /// HTTP (asio) threads; 0: half the cores, at least one. The handlers only parse, check and
  /// pass requests on, so the actors' scheduler and PostgreSQL need the other cores more.
  std::size_t threads = 0;
  /// Largest accepted request body; a larger one gets 413. Bodies far beyond it (more than
  /// max_body_slack_factor times, at least 1 MiB more) are cut off by closing the connection,
  /// so the server never buffers unbounded input.
  std::size_t max_body_bytes = 1 << 20;
  /// A request whose answer has not come by then gets a 503 problem (the work goes on).
  std::chrono::milliseconds request_timeout{10000};
  /// Reported by /health/detailed and logged.
  std::string node_id;
  auth::jwt_settings jwt;
  /// Login attempts per e-mail (token bucket, burst = the rate); per client address the limit
  /// is multiplied by login_address_factor (one address may serve many people).
  double login_per_minute = 10;
  double login_address_factor = 10;
  /// Order creations per user; per client address the limits are multiplied by
  /// orders_address_factor (many users may share one address, e.g. behind a proxy).
  double orders_per_second = 50;
  double orders_burst = 100;
  double orders_address_factor = 40;
  /// Concurrent live event streams (GET /trace/events as text/event-stream); more get 503.
  std::size_t max_event_streams = 64;
  /// How often a live stream polls the journal and how often it sends a keep-alive comment.
  std::chrono::milliseconds event_poll_interval{100};
  std::chrono::milliseconds event_heartbeat_interval{15000};
};

/// Multiple of max_body_bytes up to which an oversized body is read and answered with 413.
inline constexpr std::size_t max_body_slack_factor = 8;

class server {
 public:
  /// The runtime, read side, user service and metrics registry must outlive the server.
  server(server_options options, actors::runtime& runtime, actors::read_side& reads,
         auth::user_service& users, metrics_registry& metrics);
  /// Calls stop().
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and serves on the server's own threads; returns once listening. Throws
  /// std::runtime_error naming host:port when binding fails. Call at most once.
  void start();
  /// Stops accepting, ends live event streams, lets in-flight requests answer (each within
  /// request_timeout), then joins the threads. Idempotent.
  void stop();
  /// The bound port (the actual one when options.port was 0); 0 before start().
  [[nodiscard]] std::uint16_t port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace saga::http

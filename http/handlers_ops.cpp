// Operations: liveness, the detailed health report, Prometheus metrics (HTTP counters plus
// gauges refreshed at scrape time) and the API documents. The chores that block (region
// statistics, read-side futures) run on the server's blocking worker, never on HTTP threads.
#include <spdlog/spdlog.h>

#include "http/openapi.hpp"
#include "http/server_internal.hpp"
#include "persistence/migrations.hpp"

namespace saga::http::detail {

namespace {

using actors::aggregate_kind;

constexpr std::pair<aggregate_kind, const char*> kinds[] = {
    {aggregate_kind::order, "order"},         {aggregate_kind::payment, "payment"},
    {aggregate_kind::inventory, "inventory"}, {aggregate_kind::user, "user"},
    {aggregate_kind::saga, "saga"},
};

double uptime_seconds(const server_core& core) {
  return std::chrono::duration<double>(std::chrono::system_clock::now() - core.started_at).count();
}

json migrations_json() {
  const auto& files = persistence::embedded_migrations();
  json names = json::array();
  for (const auto& f : files) names.push_back(f.name);
  return {{"count", files.size()},
          {"latest", files.empty() ? std::string() : files.back().name},
          {"applied", names},
          {"note", "applied at start-up; the node does not serve otherwise"}};
}

json projection_json(const actors::projection_status& p) {
  return {{"name", p.name},
          {"running", p.running},
          {"busy", p.busy},
          {"checkpoint", p.checkpoint},
          {"lag", p.lag},
          {"batches", p.batches},
          {"eventsApplied", p.events_applied},
          {"failures", p.failures},
          {"consecutiveFailures", p.consecutive_failures},
          {"lastError", p.last_error}};
}

void health(const exchange_ptr& ex) { ex->reply_json(200, {{"status", "ok"}}); }

void health_detailed(const exchange_ptr& ex) {
  const bool queued = ex->core->worker.post([ex] {
    if (!ex->live()) return;
    auto& core = *ex->core;
    auto status = core.reads.status().get();
    json out;
    out["nodeId"] = core.options.node_id;
    out["uptimeSeconds"] = uptime_seconds(core);
    out["migrations"] = migrations_json();
    bool degraded = false;
    if (status) {
      out["database"] = {{"reachable", true}, {"journalHead", status->journal_head}};
      json projections = json::array();
      for (const auto& p : status->projections) {
        projections.push_back(projection_json(p));
        degraded = degraded || !p.running || p.consecutive_failures > 0;
      }
      out["projections"] = projections;
    } else {
      out["database"] = {{"reachable", false},
                         {"error", std::string(actors::to_string(status.error().code))}};
      json projections = json::array();
      for (const auto& p : core.reads.projection_health())
        projections.push_back(projection_json(p));
      out["projections"] = projections;
    }
    json actors_out = json::object();
    for (const auto& [kind, name] : kinds) {
      const auto s = core.runtime.stats(kind);
      actors_out[name] = {
          {"active", s.active},     {"spawned", s.spawned},           {"crashes", s.crashes},
          {"restarts", s.restarts}, {"passivations", s.passivations}, {"buffered", s.buffered}};
    }
    out["actors"] = actors_out;
    const auto w = core.runtime.writer_stats();
    out["journal"] = {{"batches", w.batches},
                      {"events", w.events},
                      {"failedRequests", w.failed_requests},
                      {"queueDepth", w.queue_depth}};
    if (!status) {
      out["status"] = "unavailable";
      ex->reply_json(503, out);
      return;
    }
    out["status"] = degraded ? "degraded" : "ok";
    ex->reply_json(200, out);
  });
  if (!queued) ex->reply_problem(503, "the server is stopping");
}

/// Adds to a counter the growth of a cumulative runtime value since the last scrape.
void add_growth(server_core& core, const std::string& name, const std::string& help,
                const labels& l, double cumulative) {
  std::string key = name;
  for (const auto& [k, v] : l) key += "|" + k + "=" + v;
  double delta = 0;
  {
    std::lock_guard<std::mutex> lock(core.scrape.mutex);
    auto [it, fresh] = core.scrape.last.emplace(key, 0.0);
    delta = cumulative - it->second;
    it->second = cumulative;
    (void)fresh;
  }
  // A restarted counter source (smaller value) starts over from its new value.
  core.metrics.add_counter(name, help, l, delta >= 0 ? delta : cumulative);
}

void refresh_gauges(server_core& core) {
  auto& m = core.metrics;
  for (const auto& [kind, name] : kinds) {
    const auto s = core.runtime.stats(kind);
    const labels l{{"type", name}};
    m.set_gauge("saga_actors_active", "Aggregate and saga actors alive now, by type", l,
                static_cast<double>(s.active));
    m.set_gauge("saga_actor_mailbox_depth",
                "Commands and queries waiting in a region for their actor, by type", l,
                static_cast<double>(s.buffered));
    add_growth(core, "saga_actor_restarts_total", "Actor restarts after a crash, by type", l,
               static_cast<double>(s.restarts));
    add_growth(core, "saga_actor_crashes_total", "Abnormal actor exits, by type", l,
               static_cast<double>(s.crashes));
    add_growth(core, "saga_actor_passivations_total", "Idle actors stopped, by type", l,
               static_cast<double>(s.passivations));
  }
  const auto w = core.runtime.writer_stats();
  add_growth(core, "saga_journal_batches_total", "Group-commit batches written", {},
             static_cast<double>(w.batches));
  add_growth(core, "saga_journal_events_total", "Events appended to the journal", {},
             static_cast<double>(w.events));
  add_growth(core, "saga_journal_failed_requests_total", "Append requests that failed", {},
             static_cast<double>(w.failed_requests));
  m.set_gauge("saga_journal_batch_events_last", "Events in the last group-commit batch", {},
              static_cast<double>(w.last_batch_events));
  m.set_gauge("saga_journal_batch_events_avg", "Mean events per group-commit batch", {},
              w.batches ? static_cast<double>(w.events) / static_cast<double>(w.batches) : 0.0);
  m.set_gauge("saga_journal_append_seconds_avg", "Mean duration of one batch append", {},
              w.batches
                  ? static_cast<double>(w.total_batch_us) / 1e6 / static_cast<double>(w.batches)
                  : 0.0);
  m.set_gauge("saga_journal_append_latency_seconds_avg",
              "Mean time from an append request to its answer", {},
              w.requests
                  ? static_cast<double>(w.total_latency_us) / 1e6 / static_cast<double>(w.requests)
                  : 0.0);
  m.set_gauge("saga_journal_append_latency_seconds_max",
              "Longest time from an append request to its answer", {},
              static_cast<double>(w.max_latency_us) / 1e6);
  m.set_gauge("saga_journal_queue_depth", "Append requests waiting for the journal writer", {},
              static_cast<double>(w.queue_depth));

  add_growth(core, "saga_sagas_finished_total", "Sagas that reached a final status on this node",
             {{"status", "COMPLETED"}}, static_cast<double>(core.sagas_completed.load()));
  add_growth(core, "saga_sagas_finished_total", "Sagas that reached a final status on this node",
             {{"status", "COMPENSATED"}}, static_cast<double>(core.sagas_compensated.load()));
  add_growth(core, "saga_sagas_finished_total", "Sagas that reached a final status on this node",
             {{"status", "FAILED"}}, static_cast<double>(core.sagas_failed.load()));

  const std::string sagas_help =
      "Sagas by status in the read model (RUNNING, COMPENSATING, FAILED; counted up to one "
      "query page of 500)";
  if (auto active = core.reads.active_sagas(persistence::max_query_limit, 0).get()) {
    double running = 0, compensating = 0;
    for (const auto& s : active.value()) (s.status == "COMPENSATING" ? compensating : running) += 1;
    m.set_gauge("saga_sagas", sagas_help, {{"status", "RUNNING"}}, running);
    m.set_gauge("saga_sagas", sagas_help, {{"status", "COMPENSATING"}}, compensating);
  }
  if (auto failed = core.reads.failed_sagas(persistence::max_query_limit, 0).get())
    m.set_gauge("saga_sagas", sagas_help, {{"status", "FAILED"}},
                static_cast<double>(failed.value().size()));

  if (auto status = core.reads.status().get()) {
    m.set_gauge("saga_journal_head_position", "Highest journal position", {},
                static_cast<double>(status->journal_head));
    for (const auto& p : status->projections) {
      const labels l{{"projection", p.name}};
      m.set_gauge("saga_projection_lag_events", "Journal positions not yet in the read models", l,
                  static_cast<double>(p.lag));
      m.set_gauge("saga_projection_checkpoint", "Last journal position in the read models", l,
                  static_cast<double>(p.checkpoint));
      m.set_gauge("saga_projection_consecutive_failures",
                  "Failed projection batches in a row (0 = healthy)", l,
                  static_cast<double>(p.consecutive_failures));
    }
    m.set_gauge("saga_database_up", "1 when the read side reached PostgreSQL at the last scrape",
                {}, 1);
  } else {
    m.set_gauge("saga_database_up", "1 when the read side reached PostgreSQL at the last scrape",
                {}, 0);
  }
  m.set_gauge("saga_uptime_seconds", "Seconds since the HTTP server started", {},
              uptime_seconds(core));
}

void metrics(const exchange_ptr& ex) {
  const bool queued = ex->core->worker.post([ex] {
    if (!ex->live()) return;
    refresh_gauges(*ex->core);
    ex->reply_text(200, ex->core->metrics.render(), std::string(metrics_registry::content_type));
  });
  if (!queued) ex->reply_problem(503, "the server is stopping");
}

void api_json(const exchange_ptr& ex) { ex->reply_text(200, openapi_json(), "application/json"); }

void api_page(const exchange_ptr& ex) {
  ex->reply_text(200, docs_page_html(), "text/html; charset=utf-8");
}

}  // namespace

void add_ops_handlers(handler_table& table) {
  table[{"GET", "/health"}] = health;
  table[{"GET", "/health/detailed"}] = health_detailed;
  table[{"GET", "/metrics"}] = metrics;
  table[{"GET", "/api-json"}] = api_json;
  table[{"GET", "/api"}] = api_page;
}

}  // namespace saga::http::detail

#include "actors/recovery.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "actors/aggregate_traits.hpp"
#include "actors/log.hpp"

namespace saga::actors {
namespace {

constexpr std::string_view order_prefix = "order-";

/// Runs `work(i)` for i in [0, n) on `parallelism` threads; each call blocks on the runtime.
template <class Work>
void for_each_parallel(std::size_t n, std::size_t parallelism, Work work) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  const auto threads = std::max<std::size_t>(1, std::min(parallelism, n));
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (auto i = next.fetch_add(1); i < n; i = next.fetch_add(1)) work(i);
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace

const std::vector<std::string>& unfinished_saga_event_types() {
  static const std::vector<std::string> types = {
      "SagaStarted",    "SagaStepStarted",         "SagaStepSucceeded",
      "SagaStepFailed", "SagaCompensationStarted", "SagaStepCompensated"};
  return types;
}

recovery_report recover_unfinished(runtime& rt, persistence::event_store& journal,
                                   const recovery_options& options) {
  const auto started_at = std::chrono::steady_clock::now();
  recovery_report report;
  std::mutex report_mutex;
  auto note = [&](std::string line) {
    std::lock_guard<std::mutex> lock(report_mutex);
    report.errors.push_back(std::move(line));
  };

  auto unfinished = journal.stream_heads("saga", unfinished_saga_event_types());
  auto all_sagas = journal.stream_heads("saga", {});
  auto pending_orders = journal.stream_heads("order", {"OrderCreated"});
  for (const auto* failed : {&unfinished, &all_sagas, &pending_orders}) {
    if (!*failed) {
      report.errors.push_back("reading the journal failed: " + failed->error().message);
      return report;
    }
  }

  // Sagas first: an orphan order's saga must not be mistaken for an unfinished one.
  report.unfinished_sagas = unfinished->size();
  std::atomic<std::size_t> resumed{0};
  for_each_parallel(unfinished->size(), options.parallelism, [&](std::size_t i) {
    const auto& stream = (*unfinished)[i].stream_id;
    const auto saga_id = stream.substr(std::string_view("saga-").size());
    auto reply = rt.resume_saga(saga_id);
    if (reply.ok) {
      ++resumed;
    } else {
      note("saga " + saga_id + ": " + reply.message);
    }
  });
  report.resumed = resumed;

  std::unordered_set<std::string> saga_streams;
  for (const auto& head : *all_sagas) saga_streams.insert(head.stream_id);
  std::vector<std::string> orphans;
  for (const auto& head : *pending_orders) {
    if (head.version != 1 || head.stream_id.rfind(order_prefix, 0) != 0) continue;
    const auto order_id = head.stream_id.substr(order_prefix.size());
    std::string saga_id;
    try {
      saga_id = nlohmann::json::parse(head.payload).value("sagaId", std::string());
    } catch (const nlohmann::json::exception& e) {
      note("order " + order_id + ": unreadable OrderCreated: " + e.what());
      continue;
    }
    if (saga_id.empty()) saga_id = "saga-of-" + order_id;
    if (saga_streams.count(stream_id_of("saga", saga_id)) == 0) orphans.push_back(order_id);
  }
  report.orphan_orders = orphans.size();
  std::atomic<std::size_t> started{0};
  for_each_parallel(orphans.size(), options.parallelism, [&](std::size_t i) {
    auto outcome = rt.start_saga_for_order(orphans[i]);
    if (outcome.ok()) {
      ++started;
    } else {
      note("order " + orphans[i] + ": " + outcome.message);
    }
  });
  report.started = started;
  report.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_at);
  detail::log().info(
      "recovery: {} unfinished sagas ({} resumed), {} orders without a saga ({} started), {} "
      "errors, {} ms",
      report.unfinished_sagas, report.resumed, report.orphan_orders, report.started,
      report.errors.size(), report.took.count());
  return report;
}

}  // namespace saga::actors

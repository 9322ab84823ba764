// Group commit: collects appends from many callers and streams and writes whatever is queued
// with one event_store::append_checked_batch (one transaction), then answers each caller. Runs
// its own threads (not CAF threads): writers, each owning its own event_store, and one that
// runs the callers' callbacks, so that a writer goes on to its next batch at once. Requests are
// checked on the submitting thread. submit() and stats() are thread-safe.
//
// With `lanes` > 1 the streams are spread over that many such writers by a hash of the stream
// id, each with its own store (connection), so a batch can be sent while another commits. A
// stream always goes to the same lane: its appends stay in submission order, and the store's
// memory of committed versions stays valid. The journal itself orders the lanes' commits (its
// lock draws positions in commit order), so readers see no gap.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "persistence/event_store.hpp"

namespace saga::persistence {

struct writer_options {
  /// A batch takes queued requests until either limit is reached (a single larger request
  /// still goes alone).
  std::size_t max_batch_events = 2000;
  std::size_t max_batch_requests = 2000;
  /// Extra wait for more appends when the queue holds less than a full batch. 0 = write at
  /// once: with many callers in flight, appends pile up during the previous write anyway.
  std::chrono::microseconds linger{0};
  /// Attempts per request on `retryable` errors (reconnecting in between); safe because
  /// appends are idempotent by event id.
  int max_attempts = 3;
  std::chrono::milliseconds retry_backoff{20};  ///< doubled after each failed attempt
  /// Independent writers (threads and connections) the streams are spread over.
  std::size_t lanes = 1;
};

/// Counters for metrics; a consistent-enough snapshot (each field is read atomically).
struct writer_stats {
  std::uint64_t batches = 0;
  std::uint64_t requests = 0;  ///< requests answered
  std::uint64_t events = 0;    ///< events in answered requests that succeeded, with the
                               ///< riders that were written
  std::uint64_t failed_requests = 0;
  std::uint64_t retries = 0;  ///< batch attempts repeated after a retryable error
  std::uint64_t last_batch_requests = 0;
  std::uint64_t last_batch_events = 0;
  std::uint64_t last_batch_us = 0;     ///< duration of the last store call
  std::uint64_t total_batch_us = 0;    ///< sum of store call durations (store busy time)
  std::uint64_t total_latency_us = 0;  ///< sum over answered requests of submit → answer
  std::uint64_t max_latency_us = 0;
  std::uint64_t queue_depth = 0;  ///< requests waiting now
};

class group_commit_writer {
 public:
  using store_factory = std::function<std::unique_ptr<event_store>()>;
  using callback = std::function<void(append_result)>;

  /// Starts the writer threads; each calls `make_store` once (again only if that threw) to get
  /// the store it owns, so a PostgreSQL store opens its connection on that thread.
  explicit group_commit_writer(store_factory make_store, writer_options options = {});
  /// Stops (draining the queue) and joins.
  ~group_commit_writer();
  group_commit_writer(const group_commit_writer&) = delete;
  group_commit_writer& operator=(const group_commit_writer&) = delete;

  /// Queues an append; `done` runs exactly once, on the writer's answering thread, with this
  /// request's own result. It must not block (it may call submit()). Requests to one stream are
  /// written in submission order, so a caller may pipeline appends to one stream (expected versions
  /// chained): a later one builds on an earlier one, even in the same batch. The request is
  /// checked here (validate_and_normalize): an invalid one is answered at once, on the
  /// caller's thread, with `invalid_request`, and so is every request after stop(), with
  /// `retryable` ("journal writer stopped").
  void submit(append_request request, callback done);

  /// Same, answered through a future.
  [[nodiscard]] std::future<append_result> submit(append_request request);

  /// Stops accepting appends, writes everything already queued, answers it, joins the threads.
  /// Idempotent; any thread. From a callback it only stops accepting (the writer cannot join
  /// itself); never destroy the writer from one of its own callbacks.
  void stop();

  [[nodiscard]] writer_stats stats() const;

 private:
  struct pending {
    append_request request;  // moved out when its batch is written
    callback done;
    std::chrono::steady_clock::time_point queued_at;
    std::size_t events = 0;                 // the request's and its riders'
    std::vector<std::size_t> rider_events;  // per rider (empty without riders)
  };

  /// One writer: its queue, its store and its thread.
  struct lane {
    mutable std::mutex mutex;
    std::condition_variable wake;
    std::deque<pending> queue;
    std::size_t queued_events = 0;
    bool stopping = false;
    std::unique_ptr<event_store> store;  // this lane's thread only
    std::thread thread;
  };

  /// A final result on its way to its caller.
  struct answer_item {
    pending p;
    append_result result;
  };

  void run(lane& l);
  void write_batch(lane& l, std::vector<pending>& batch);
  void run_answers();
  void answer(pending& p, append_result result);
  [[nodiscard]] lane& lane_of(const std::string& stream_id);

  store_factory make_store_;
  writer_options options_;
  std::vector<std::unique_ptr<lane>> lanes_;

  std::atomic<std::uint64_t> batches_{0}, requests_{0}, events_{0}, failed_{0}, retries_{0};
  std::atomic<std::uint64_t> last_batch_requests_{0}, last_batch_events_{0}, last_batch_us_{0};
  std::atomic<std::uint64_t> total_batch_us_{0};
  std::atomic<std::uint64_t> total_latency_us_{0}, max_latency_us_{0};

  // The answering thread runs the callbacks, in the order the lanes hand results over; a
  // lane's thread goes on writing meanwhile.
  std::mutex answers_mutex_;
  std::condition_variable answers_wake_;
  std::vector<answer_item> answers_;
  bool answers_stopping_ = false;
  std::thread answerer_;

  std::mutex join_mutex_;
};

}  // namespace saga::persistence

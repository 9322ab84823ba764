#include "persistence/group_commit_writer.hpp"

#include <algorithm>
#include <functional>

namespace saga::persistence {

namespace {

std::uint64_t micros_since(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now() - start)
                                        .count());
}

store_error retryable(std::string message) {
  return store_error{store_errc::retryable, std::move(message), -1};
}

}  // namespace

group_commit_writer::group_commit_writer(store_factory make_store, writer_options options)
    : make_store_(std::move(make_store)), options_(options) {
  options_.max_batch_events = std::max<std::size_t>(options_.max_batch_events, 1);
  options_.max_batch_requests = std::max<std::size_t>(options_.max_batch_requests, 1);
  options_.max_attempts = std::max(options_.max_attempts, 1);
  options_.lanes = std::max<std::size_t>(options_.lanes, 1);
  for (std::size_t i = 0; i < options_.lanes; ++i) lanes_.push_back(std::make_unique<lane>());
  // Started after every lane exists: stop() may run as soon as the first thread does.
  answerer_ = std::thread([this] { run_answers(); });
  for (auto& l : lanes_) l->thread = std::thread([this, p = l.get()] { run(*p); });
}

group_commit_writer::~group_commit_writer() { stop(); }

group_commit_writer::lane& group_commit_writer::lane_of(const std::string& stream_id) {
  if (lanes_.size() == 1) return *lanes_.front();
  return *lanes_[std::hash<std::string>{}(stream_id) % lanes_.size()];
}

void group_commit_writer::submit(append_request request, callback done) {
  // Checked here, on the caller's thread: the writer's own thread is the journal's serial path.
  if (auto error = validate_and_normalize(request)) {
    requests_.fetch_add(1);
    failed_.fetch_add(1);
    done(unexpected{std::move(*error)});
    return;
  }
  auto n = request.events.size();
  std::vector<std::size_t> rider_events;
  for (const auto& rider : request.riders) {
    n += rider.events.size();
    rider_events.push_back(rider.events.size());
  }
  auto& l = lane_of(request.stream_id);
  {
    std::lock_guard<std::mutex> lock(l.mutex);
    if (!l.stopping) {
      l.queue.push_back(pending{std::move(request), std::move(done),
                                std::chrono::steady_clock::now(), n, std::move(rider_events)});
      l.queued_events += n;
      // Only the lane's writer waits on this, and only when the queue was empty or lingering.
      l.wake.notify_one();
      return;
    }
  }
  done(unexpected{retryable("journal writer stopped")});
}

std::future<append_result> group_commit_writer::submit(append_request request) {
  auto promise = std::make_shared<std::promise<append_result>>();
  auto future = promise->get_future();
  submit(std::move(request),
         [promise](append_result result) { promise->set_value(std::move(result)); });
  return future;
}

void group_commit_writer::stop() {
  for (auto& l : lanes_) {
    {
      std::lock_guard<std::mutex> lock(l->mutex);
      l->stopping = true;
    }
    l->wake.notify_all();
  }
  // From a callback (on the answering thread) it only stops accepting: that thread cannot join
  // itself. Nor can a lane (no callback runs there, but keep it safe).
  const auto self = std::this_thread::get_id();
  if (answerer_.get_id() == self) return;
  for (const auto& l : lanes_) {
    if (l->thread.get_id() == self) return;
  }
  std::lock_guard<std::mutex> lock(join_mutex_);
  for (auto& l : lanes_) {
    if (l->thread.joinable()) l->thread.join();
  }
  // The lanes have handed over their last answers.
  {
    std::lock_guard<std::mutex> answers_lock(answers_mutex_);
    answers_stopping_ = true;
  }
  answers_wake_.notify_all();
  if (answerer_.joinable()) answerer_.join();
}

void group_commit_writer::run_answers() {
  std::vector<answer_item> work;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(answers_mutex_);
      answers_wake_.wait(lock, [this] { return !answers_.empty() || answers_stopping_; });
      if (answers_.empty()) return;  // stopping and drained
      work.swap(answers_);
    }
    for (auto& item : work) answer(item.p, std::move(item.result));
    work.clear();
  }
}

writer_stats group_commit_writer::stats() const {
  writer_stats s;
  s.batches = batches_.load();
  s.requests = requests_.load();
  s.events = events_.load();
  s.failed_requests = failed_.load();
  s.retries = retries_.load();
  s.last_batch_requests = last_batch_requests_.load();
  s.last_batch_events = last_batch_events_.load();
  s.last_batch_us = last_batch_us_.load();
  s.total_batch_us = total_batch_us_.load();
  s.total_latency_us = total_latency_us_.load();
  s.max_latency_us = max_latency_us_.load();
  for (const auto& l : lanes_) {
    std::lock_guard<std::mutex> lock(l->mutex);
    s.queue_depth += l->queue.size();
  }
  return s;
}

void group_commit_writer::run(lane& l) {
  std::vector<pending> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(l.mutex);
      l.wake.wait(lock, [&l] { return !l.queue.empty() || l.stopping; });
      if (l.queue.empty()) return;  // stopping and drained
      if (options_.linger.count() > 0 && !l.stopping &&
          l.queued_events < options_.max_batch_events &&
          l.queue.size() < options_.max_batch_requests) {
        l.wake.wait_for(lock, options_.linger, [&] {
          return l.stopping || l.queued_events >= options_.max_batch_events ||
                 l.queue.size() >= options_.max_batch_requests;
        });
      }
      std::size_t events = 0;
      while (!l.queue.empty() && batch.size() < options_.max_batch_requests) {
        const auto n = l.queue.front().events;
        if (!batch.empty() && events + n > options_.max_batch_events) break;
        events += n;
        l.queued_events -= n;
        batch.push_back(std::move(l.queue.front()));
        l.queue.pop_front();
      }
    }
    write_batch(l, batch);
    batch.clear();
  }
}

void group_commit_writer::write_batch(lane& l, std::vector<pending>& batch) {
  // The requests still to write (moved out of `batch`, not copied: payloads can be large) and
  // where each came from; both shrink as requests get a final answer.
  std::vector<append_request> requests;
  std::vector<std::size_t> origin;
  requests.reserve(batch.size());
  origin.reserve(batch.size());
  std::uint64_t batch_events = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    requests.push_back(std::move(batch[i].request));
    origin.push_back(i);
    batch_events += batch[i].events;
  }
  auto backoff = options_.retry_backoff;
  for (int attempt = 1; !requests.empty(); ++attempt) {
    const bool last_attempt = attempt >= options_.max_attempts;
    std::vector<append_result> results;
    if (!l.store) {
      try {
        l.store = make_store_();
      } catch (const std::exception& e) {
        results.assign(requests.size(),
                       unexpected{retryable(std::string("cannot create store: ") + e.what())});
      } catch (...) {
        results.assign(requests.size(), unexpected{retryable("cannot create store")});
      }
    }
    if (l.store) {
      const auto started = std::chrono::steady_clock::now();
      results = l.store->append_checked_batch(requests);
      const auto took = micros_since(started);
      last_batch_us_.store(took);
      total_batch_us_.fetch_add(took);
      batches_.fetch_add(1);
      last_batch_requests_.store(requests.size());
      last_batch_events_.store(batch_events);
    }
    std::vector<append_request> again;
    std::vector<std::size_t> again_origin;
    std::vector<answer_item> answered;
    for (std::size_t k = 0; k < requests.size(); ++k) {
      auto& result = results[k];
      if (!result && result.error().code == store_errc::retryable && !last_attempt) {
        again.push_back(std::move(requests[k]));
        again_origin.push_back(origin[k]);
      } else {
        answered.push_back(answer_item{std::move(batch[origin[k]]), std::move(result)});
      }
    }
    if (!answered.empty()) {
      // Answered on another thread, so that this one goes on to the next batch at once.
      {
        std::lock_guard<std::mutex> lock(answers_mutex_);
        if (answers_.empty()) {
          answers_ = std::move(answered);
        } else {
          for (auto& item : answered) answers_.push_back(std::move(item));
        }
      }
      answers_wake_.notify_one();
    }
    requests = std::move(again);
    origin = std::move(again_origin);
    if (!requests.empty()) {
      retries_.fetch_add(1);
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }
}

void group_commit_writer::answer(pending& p, append_result result) {
  const auto latency = micros_since(p.queued_at);
  total_latency_us_.fetch_add(latency);
  auto max = max_latency_us_.load();
  while (latency > max && !max_latency_us_.compare_exchange_weak(max, latency)) {
  }
  requests_.fetch_add(1);
  if (result) {
    auto written = p.events;
    for (std::size_t k = 0; k < p.rider_events.size(); ++k) {
      if (k >= result->riders_written.size() || result->riders_written[k] == 0)
        written -= p.rider_events[k];
    }
    events_.fetch_add(written);
  } else {
    failed_.fetch_add(1);
  }
  try {
    p.done(std::move(result));
  } catch (...) {
    // A throwing callback must not kill the writer (and with it every other caller's answer).
  }
}

}  // namespace saga::persistence

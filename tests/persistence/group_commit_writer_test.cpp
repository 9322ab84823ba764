// group_commit_writer: batching many callers into one append_batch, per-caller answers, retry on
// retryable errors, clean shutdown. Runs over the in-memory store and over PostgreSQL.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include "persistence/group_commit_writer.hpp"
#include "persistence/pg_admin.hpp"
#include "tests/persistence/support.hpp"

namespace sp = saga::persistence;
using namespace saga::persistence::test;
using namespace std::chrono_literals;

namespace {

using backends = boost::mpl::list<memory_backend, pg_backend>;

/// Holds every append_batch until opened; counts calls. Lets a test decide what one batch holds.
class gated_store : public sp::event_store {
 public:
  explicit gated_store(std::unique_ptr<sp::event_store> inner) : inner_(std::move(inner)) {}
  std::vector<sp::append_result> append_batch(const std::vector<sp::append_request>& r) override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++entered_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return open_; });
    }
    return inner_->append_batch(r);
  }
  saga::expected<std::vector<sp::recorded_event>, sp::store_error> read_stream(
      const std::string& s, std::int64_t from, std::size_t limit) override {
    return inner_->read_stream(s, from, limit);
  }
  saga::expected<std::vector<sp::recorded_event>, sp::store_error> read_all(
      std::int64_t after, std::size_t limit) override {
    return inner_->read_all(after, limit);
  }
  saga::expected<bool, sp::store_error> save_snapshot(const sp::snapshot& s) override {
    return inner_->save_snapshot(s);
  }
  saga::expected<std::optional<sp::snapshot>, sp::store_error> load_snapshot(
      const std::string& s) override {
    return inner_->load_snapshot(s);
  }

  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  /// Waits until `n` batches have reached the gate.
  void wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return entered_ >= n; });
  }

 private:
  std::unique_ptr<sp::event_store> inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  int entered_ = 0;
};

/// Fails the first `failures` batches with `retryable`, then forwards; counts batches.
class flaky_store : public forwarding_store {
 public:
  flaky_store(sp::event_store& target, int failures, std::atomic<int>& calls)
      : forwarding_store(target), failures_(failures), calls_(calls) {}
  std::vector<sp::append_result> append_batch(const std::vector<sp::append_request>& r) override {
    if (calls_.fetch_add(1) < failures_) {
      return std::vector<sp::append_result>(
          r.size(), saga::unexpected{sp::store_error{sp::store_errc::retryable, "flaky", -1}});
    }
    return forwarding_store::append_batch(r);
  }

 private:
  int failures_;
  std::atomic<int>& calls_;
};

sp::writer_options fast_retries() {
  sp::writer_options o;
  o.retry_backoff = 1ms;
  return o;
}

sp::append_result wait(std::future<sp::append_result> f) {
  BOOST_REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(group_commit_writer)

BOOST_AUTO_TEST_CASE_TEMPLATE(many_threads_many_streams_every_append_answered, B, backends) {
  B backend;
  sp::group_commit_writer writer([&backend] { return backend.open(); });
  constexpr int threads = 64;
  constexpr int streams_per_thread = 2;
  constexpr int appends_per_stream = 10;
  std::vector<std::string> streams;
  for (int i = 0; i < threads * streams_per_thread; ++i) streams.push_back(unique_stream("gc"));
  std::atomic<int> failures{0};
  std::atomic<int> wrong_versions{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int k = 0; k < appends_per_stream; ++k) {
        // Interleave this thread's streams; each append waits for the previous answer.
        for (int s = 0; s < streams_per_thread; ++s) {
          const auto& stream = streams[static_cast<std::size_t>(t * streams_per_thread + s)];
          auto f = writer.submit(make_request(stream, k, 1));
          if (f.wait_for(60s) != std::future_status::ready) {
            failures.fetch_add(1);
            return;
          }
          const auto r = f.get();
          if (!r) {
            failures.fetch_add(1);
          } else if (r->version != k + 1) {
            wrong_versions.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(wrong_versions.load() == 0);
  const auto stats = writer.stats();
  const auto total = static_cast<std::uint64_t>(threads * streams_per_thread * appends_per_stream);
  BOOST_TEST(stats.requests == total);
  BOOST_TEST(stats.events == total);
  BOOST_TEST(stats.failed_requests == 0u);
  BOOST_TEST(stats.batches <= total);
  if (std::string(B::name) == "postgres") {
    BOOST_TEST(stats.batches < total / 4);  // 64 callers in flight share transactions
  }
  writer.stop();
  auto reader = backend.open();
  for (const auto& stream : streams) {
    const auto events = read_all_of(*reader, stream);
    BOOST_REQUIRE_EQUAL(events.size(), static_cast<std::size_t>(appends_per_stream));
    for (std::size_t v = 0; v < events.size(); ++v) {
      BOOST_TEST(events[v].version == static_cast<std::int64_t>(v + 1));
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(same_stream_twice_in_one_batch, B, backends) {
  B backend;
  std::atomic<gated_store*> gate{nullptr};
  sp::group_commit_writer writer([&] {
    auto g = std::make_unique<gated_store>(backend.open());
    gate = g.get();
    return g;
  });
  // The first batch holds at the gate, so the next three queue up and go as one batch.
  auto blocker = writer.submit(make_request(unique_stream("gate"), 0, 1));
  while (gate == nullptr) std::this_thread::yield();
  gate.load()->wait_entered(1);
  const auto stream = unique_stream("twice");
  auto a = writer.submit(make_request(stream, 0, 2));
  auto b = writer.submit(make_request(stream, 2, 1));  // pipelined on a
  auto c = writer.submit(make_request(stream, 2, 1));  // stale by the time it runs
  gate.load()->open();
  BOOST_REQUIRE(wait(std::move(blocker)).has_value());
  const auto ra = wait(std::move(a));
  const auto rb = wait(std::move(b));
  const auto rc = wait(std::move(c));
  BOOST_TEST(writer.stats().batches == 2u);
  BOOST_TEST(writer.stats().last_batch_requests == 3u);
  BOOST_REQUIRE(ra.has_value());
  BOOST_TEST(ra->version == 2);
  BOOST_REQUIRE(rb.has_value());
  BOOST_TEST(rb->version == 3);
  BOOST_REQUIRE(!rc.has_value());
  BOOST_TEST(rc.error().code == sp::store_errc::version_conflict);
  BOOST_TEST(rc.error().actual_version == 3);
  writer.stop();
  auto reader = backend.open();
  BOOST_TEST(read_all_of(*reader, stream).size() == 3u);
}

// The writer checks and lower-cases event ids on submit (the store then skips both): ids in
// upper case are stored in lower case, the same request again is an idempotent replay, and a
// rider naming the last of them as read back (lower case) builds on it. PostgreSQL vouches for
// that rider only from what it remembers writing, so it needs the ids lower-cased on submit.
BOOST_AUTO_TEST_CASE_TEMPLATE(upper_case_event_ids_are_normalized_on_submit, B, backends) {
  const auto change_case = [](std::string id, int (*to)(int)) {
    std::transform(id.begin(), id.end(), id.begin(),
                   [to](unsigned char c) { return static_cast<char>(to(c)); });
    return id;
  };
  B backend;
  sp::group_commit_writer writer([&] { return backend.open(); });
  const auto stream = unique_stream("upper");
  auto request = make_request(stream, 0, 2);
  for (auto& ev : request.events) ev.event_id = change_case(ev.event_id, ::toupper);
  const auto first = wait(writer.submit(request));
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(!first->duplicate);
  const auto again = wait(writer.submit(request));
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST(again->duplicate);
  BOOST_TEST(again->version == 2);

  auto host = make_request(unique_stream("upper-host"), 0, 1);
  auto rider = make_request(stream, 2, 1);
  rider.after_event_id = change_case(request.events.back().event_id, ::tolower);
  host.riders.push_back(rider);
  const auto hosted = wait(writer.submit(host));
  BOOST_REQUIRE(hosted.has_value());
  BOOST_TEST(hosted->riders_written == std::vector<std::uint8_t>{1});
  writer.stop();

  auto reader = backend.open();
  const auto events = read_all_of(*reader, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  for (std::size_t i = 0; i < request.events.size(); ++i) {
    BOOST_TEST(events[i].event_id == change_case(request.events[i].event_id, ::tolower));
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(riders_are_written_through_the_writer_and_counted_when_written, B,
                              backends) {
  B backend;
  sp::group_commit_writer writer([&] { return backend.open(); });
  const auto owner = unique_stream("rider-owner");
  const auto base = make_request(owner, 0, 1);
  BOOST_REQUIRE(wait(writer.submit(base)).has_value());
  const auto before = writer.stats().events;
  auto host = make_request(unique_stream("rider-host"), 0, 1);
  auto rider = make_request(owner, 1, 2);
  rider.after_event_id = base.events[0].event_id;
  host.riders.push_back(rider);
  auto stale = make_request(unique_stream("rider-host"), 0, 1);
  stale.riders.push_back(rider);  // the same base, taken by the first by then
  stale.riders[0].events = make_request(owner, 1, 2).events;
  const auto written = wait(writer.submit(host));
  const auto refused = wait(writer.submit(stale));
  BOOST_REQUIRE(written.has_value());
  BOOST_REQUIRE(refused.has_value());
  BOOST_TEST(written->riders_written == std::vector<std::uint8_t>{1});
  BOOST_TEST(refused->riders_written == std::vector<std::uint8_t>{0});
  BOOST_TEST(writer.stats().events - before == 4u);  // 1 + 2 written with it, then 1
  writer.stop();
  BOOST_TEST(read_all_of(*backend.open(), owner).size() == 3u);
}

// Lanes: streams spread over independent writers, each with its own store; every stream's
// pipelined appends stay in order, and stop() drains every lane.
BOOST_AUTO_TEST_CASE_TEMPLATE(lanes_keep_each_streams_appends_in_order, B, backends) {
  B backend;
  std::atomic<int> stores{0};
  sp::writer_options options;
  options.lanes = 3;
  sp::group_commit_writer writer(
      [&] {
        stores.fetch_add(1);
        return backend.open();
      },
      options);
  constexpr int streams_count = 24;
  constexpr int appends_per_stream = 8;
  std::vector<std::string> streams;
  for (int i = 0; i < streams_count; ++i) streams.push_back(unique_stream("lane"));
  // Every append of every stream submitted at once, each chained on the previous one of its
  // stream: only per-stream submission order makes them all succeed.
  std::vector<std::future<sp::append_result>> answers;
  for (int k = 0; k < appends_per_stream; ++k) {
    for (const auto& stream : streams) answers.push_back(writer.submit(make_request(stream, k, 1)));
  }
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto r = wait(std::move(answers[i]));
    BOOST_REQUIRE_MESSAGE(r.has_value(), "append " << i << ": " << (r ? "" : r.error().message));
    BOOST_TEST(r->version == static_cast<std::int64_t>(i / streams_count + 1));
  }
  BOOST_TEST(stores.load() == 3);  // one store per lane; 24 streams reach all three
  const auto stats = writer.stats();
  BOOST_TEST(stats.requests == static_cast<std::uint64_t>(streams_count * appends_per_stream));
  BOOST_TEST(stats.failed_requests == 0u);
  // Queued after the others, answered by stop() whatever lane it is on.
  auto last = writer.submit(make_request(streams.front(), appends_per_stream, 1));
  writer.stop();
  BOOST_TEST(wait(std::move(last)).has_value());
  BOOST_TEST(!wait(writer.submit(make_request(streams.back(), appends_per_stream, 1))).has_value());
  auto reader = backend.open();
  for (const auto& stream : streams) {
    const auto events = read_all_of(*reader, stream);
    BOOST_TEST(events.size() >= static_cast<std::size_t>(appends_per_stream));
  }
}

// Callbacks run on the answering thread: while one is slow, the writer goes on writing.
BOOST_AUTO_TEST_CASE(a_slow_callback_does_not_hold_up_the_next_batch) {
  memory_backend backend;
  sp::group_commit_writer writer([&backend] { return backend.open(); });
  std::promise<void> in_callback;
  std::promise<void> release;
  auto released = release.get_future().share();
  writer.submit(make_request(unique_stream("slow-cb"), 0, 1), [&](sp::append_result) {
    in_callback.set_value();
    released.wait();
  });
  in_callback.get_future().wait();
  const auto next = unique_stream("after-slow-cb");
  auto answer = writer.submit(make_request(next, 0, 2));
  // Written while the first callback still runs; its answer comes after that callback.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (read_all_of(backend.shared, next).size() < 2u &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  BOOST_TEST(read_all_of(backend.shared, next).size() == 2u);
  BOOST_TEST((answer.wait_for(50ms) == std::future_status::timeout));
  release.set_value();
  BOOST_TEST(wait(std::move(answer)).has_value());
}

// stop() from callbacks (on the answering thread, for batches of several lanes) only stops
// accepting; the owner's stop() then joins every lane and the answering thread.
BOOST_AUTO_TEST_CASE(stop_from_callbacks_on_several_lanes_does_not_deadlock) {
  memory_backend backend;
  sp::writer_options options;
  options.lanes = 4;
  sp::group_commit_writer writer([&backend] { return backend.open(); }, options);
  std::atomic<int> answered{0};
  for (int i = 0; i < 64; ++i) {
    writer.submit(make_request(unique_stream("stop-cb"), 0, 1), [&](sp::append_result) {
      writer.stop();
      ++answered;
    });
  }
  auto stopped = std::async(std::launch::async, [&writer] { writer.stop(); });
  BOOST_REQUIRE(stopped.wait_for(30s) == std::future_status::ready);
  BOOST_TEST(answered.load() == 64);  // everything queued before stop() is still answered
}

BOOST_AUTO_TEST_CASE(retryable_errors_are_retried_then_reported) {
  sp::memory_event_store memory;
  std::atomic<int> calls{0};
  {
    sp::group_commit_writer writer([&] { return std::make_unique<flaky_store>(memory, 2, calls); },
                                   fast_retries());
    const auto stream = unique_stream("flaky");
    const auto r = wait(writer.submit(make_request(stream, 0, 1)));
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->version == 1);
    BOOST_TEST(calls.load() == 3);
    BOOST_TEST(writer.stats().retries == 2u);
  }
  calls = 0;
  {
    sp::group_commit_writer writer(
        [&] { return std::make_unique<flaky_store>(memory, 1000, calls); }, fast_retries());
    const auto r = wait(writer.submit(make_request(unique_stream("down"), 0, 1)));
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == sp::store_errc::retryable);
    BOOST_TEST(calls.load() == 3);  // max_attempts
  }
  calls = 0;
  {
    sp::group_commit_writer writer([&] { return std::make_unique<flaky_store>(memory, 0, calls); },
                                   fast_retries());
    auto bad = make_request(unique_stream("bad"), 0, 1);
    bad.events[0].payload = "nope";
    const auto r = wait(writer.submit(bad));
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == sp::store_errc::invalid_request);
    BOOST_TEST(calls.load() == 0);  // checked on submit: never sent to the store, nor retried
    BOOST_TEST(writer.stats().failed_requests == 1u);
    BOOST_REQUIRE(wait(writer.submit(make_request(unique_stream("good"), 0, 1))).has_value());
    BOOST_TEST(calls.load() == 1);
  }
}

BOOST_AUTO_TEST_CASE(a_store_factory_that_throws_is_retried) {
  sp::memory_event_store memory;
  std::atomic<int> made{0};
  sp::group_commit_writer writer(
      [&]() -> std::unique_ptr<sp::event_store> {
        if (made.fetch_add(1) == 0) throw std::runtime_error("no connection yet");
        return std::make_unique<forwarding_store>(memory);
      },
      fast_retries());
  const auto r = wait(writer.submit(make_request(unique_stream("factory"), 0, 1)));
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(made.load() == 2);
}

BOOST_AUTO_TEST_CASE(a_killed_connection_is_retried_transparently) {
  const auto url = database_url();
  const std::string app = "test-writer-kill-" + run_tag();
  sp::writer_options o = fast_retries();
  sp::group_commit_writer writer(
      [&] {
        sp::pg_store_options so;
        so.database_url = url;
        so.application_name = app;
        return std::make_unique<sp::pg_event_store>(so);
      },
      o);
  const auto stream = unique_stream("writer-kill");
  BOOST_REQUIRE(wait(writer.submit(make_request(stream, 0, 1))).has_value());
  const auto killed =
      sp::run_sql(url,
                  "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                  "WHERE application_name = '" +
                      app + "'");
  if (!killed) BOOST_FAIL(killed.error().message);
  BOOST_REQUIRE_EQUAL((*killed)[0][0], "1");
  const auto r = wait(writer.submit(make_request(stream, 1, 2)));
  if (!r) BOOST_FAIL("append after the kill failed: " + r.error().message);
  BOOST_TEST(r->version == 3);
  BOOST_TEST(writer.stats().retries >= 1u);
}

BOOST_AUTO_TEST_CASE(stop_drains_the_queue_and_later_submits_fail) {
  sp::memory_event_store memory;
  std::atomic<gated_store*> gate{nullptr};
  auto writer = std::make_unique<sp::group_commit_writer>([&] {
    auto g = std::make_unique<gated_store>(std::make_unique<forwarding_store>(memory));
    gate = g.get();
    return g;
  });
  constexpr int queued = 300;
  std::atomic<int> ok{0};
  std::atomic<int> answered{0};
  const auto count = [&](sp::append_result r) {
    if (r) ok.fetch_add(1);
    answered.fetch_add(1);
  };
  writer->submit(make_request(unique_stream("drain-first"), 0, 1), count);
  while (gate == nullptr) std::this_thread::yield();
  gate.load()->wait_entered(1);
  for (int i = 0; i < queued; ++i)
    writer->submit(make_request(unique_stream("drain"), 0, 1), count);

  std::thread stopper([&] { writer->stop(); });
  // Submits are accepted until stop() takes effect; then they fail at once, on this thread.
  struct probe {
    std::atomic<bool> answered{false};
    std::thread::id on;
    sp::store_errc code = sp::store_errc::internal;
  };
  int accepted_late = 0;
  bool refused = false;
  for (int spins = 0; spins < 100000 && !refused; ++spins) {
    auto p = std::make_shared<probe>();
    writer->submit(make_request(unique_stream("late"), 0, 1),
                   [p, &ok, &answered](sp::append_result r) {
                     p->on = std::this_thread::get_id();
                     if (!r) p->code = r.error().code;
                     if (r) ok.fetch_add(1);
                     answered.fetch_add(1);
                     p->answered = true;
                   });
    if (p->answered.load() && p->on == std::this_thread::get_id()) {
      BOOST_TEST(p->code == sp::store_errc::retryable);
      refused = true;
    } else {
      ++accepted_late;
      std::this_thread::sleep_for(100us);
    }
  }
  BOOST_TEST(refused);
  gate.load()->open();
  stopper.join();
  BOOST_TEST(answered.load() == 1 + queued + accepted_late + 1);
  BOOST_TEST(ok.load() == 1 + queued + accepted_late);
  writer.reset();
}

BOOST_AUTO_TEST_CASE(a_throwing_callback_does_not_stop_the_writer) {
  sp::memory_event_store memory;
  sp::group_commit_writer writer([&] { return std::make_unique<forwarding_store>(memory); });
  std::promise<void> thrown;
  writer.submit(make_request(unique_stream("throw"), 0, 1), [&](sp::append_result) {
    thrown.set_value();
    throw std::runtime_error("callback bug");
  });
  thrown.get_future().wait();
  const auto r = wait(writer.submit(make_request(unique_stream("after-throw"), 0, 1)));
  BOOST_TEST(r.has_value());
}

BOOST_AUTO_TEST_CASE(the_destructor_answers_everything_queued) {
  sp::memory_event_store memory;
  std::atomic<int> answered{0};
  {
    sp::group_commit_writer writer([&] { return std::make_unique<forwarding_store>(memory); });
    for (int i = 0; i < 200; ++i) {
      writer.submit(make_request(unique_stream("dtor"), 0, 1),
                    [&](sp::append_result r) { answered.fetch_add(r ? 1 : 1000); });
    }
  }
  BOOST_TEST(answered.load() == 200);
}

BOOST_AUTO_TEST_CASE(batches_respect_the_size_limits) {
  sp::memory_event_store memory;
  std::atomic<gated_store*> gate{nullptr};
  sp::writer_options o;
  o.max_batch_events = 10;
  o.max_batch_requests = 4;
  sp::group_commit_writer writer(
      [&] {
        auto g = std::make_unique<gated_store>(std::make_unique<forwarding_store>(memory));
        gate = g.get();
        return g;
      },
      o);
  auto first = writer.submit(make_request(unique_stream("limit-first"), 0, 1));
  while (gate == nullptr) std::this_thread::yield();
  gate.load()->wait_entered(1);
  std::vector<std::future<sp::append_result>> small;
  for (int i = 0; i < 4; ++i)
    small.push_back(writer.submit(make_request(unique_stream("l"), 0, 1)));
  // 4 requests fill batch 2; then 3 + 3 + 3 events fill batch 3; the 4th 3-event one waits.
  std::vector<std::future<sp::append_result>> big;
  for (int i = 0; i < 4; ++i) big.push_back(writer.submit(make_request(unique_stream("l"), 0, 3)));
  // A request larger than the event limit still goes, alone.
  auto huge = writer.submit(make_request(unique_stream("huge"), 0, 25));
  gate.load()->open();
  BOOST_REQUIRE(wait(std::move(first)).has_value());
  for (auto& f : small) BOOST_REQUIRE(wait(std::move(f)).has_value());
  for (auto& f : big) BOOST_REQUIRE(wait(std::move(f)).has_value());
  BOOST_REQUIRE(wait(std::move(huge)).has_value());
  const auto stats = writer.stats();
  BOOST_TEST(stats.batches == 5u);  // 1 | 4 small | 3 big | 1 big | huge
  BOOST_TEST(stats.last_batch_events == 25u);
  BOOST_TEST(stats.last_batch_requests == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

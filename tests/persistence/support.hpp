// Helpers for the persistence test suite: the database under test (DATABASE_URL, migrated once
// per process), unique stream ids (tests are repeatable on one database and may run beside
// another test binary), event builders, and the two store back-ends the contract tests run on.
#pragma once

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "persistence/event_store.hpp"
#include "persistence/memory_event_store.hpp"
#include "persistence/migrations.hpp"
#include "persistence/pg_event_store.hpp"

namespace saga::persistence {

/// Lets Boost.Test print error codes.
inline std::ostream& operator<<(std::ostream& out, store_errc code) {
  return out << to_string(code);
}

}  // namespace saga::persistence

namespace saga::persistence::test {

/// DATABASE_URL, migrated once per process; fails the calling test clearly when unset.
inline std::string database_url() {
  const char* url = std::getenv("DATABASE_URL");
  BOOST_REQUIRE_MESSAGE(url != nullptr && *url != '\0',
                        "DATABASE_URL is not set: the persistence tests need a PostgreSQL "
                        "(e.g. DATABASE_URL=postgresql://postgres@127.0.0.1:5432/saga_test; "
                        "script/test starts a private cluster)");
  static std::once_flag once;
  static std::string migrate_error;
  std::call_once(once, [&] {
    auto applied = apply_migrations(url);
    if (!applied) migrate_error = applied.error().message;
  });
  BOOST_REQUIRE_MESSAGE(migrate_error.empty(), "applying migrations failed: " + migrate_error);
  return url;
}

/// A random tag for this process run, so ids never collide with earlier runs.
inline const std::string& run_tag() {
  static const std::string tag = [] {
    std::random_device rd;
    return std::to_string(rd()) + std::to_string(rd() % 1000);
  }();
  return tag;
}

/// A stream id nobody else uses.
inline std::string unique_stream(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return "test-" + prefix + "-" + run_tag() + "-" + std::to_string(counter.fetch_add(1));
}

inline new_event make_event(const std::string& type = "ThingHappened", int n = 1) {
  new_event e;
  e.event_id = new_uuid();
  e.event_type = type;
  e.schema_version = 1;
  e.payload = R"({"n":)" + std::to_string(n) + R"(,"text":"héllo \"quoted\" \\ back"})";
  e.metadata.correlation_id = "corr-" + std::to_string(n);
  e.metadata.causation_id = "cause";
  e.metadata.command_id = "cmd";
  e.metadata.node_id = "node-a";
  e.metadata.user_id = "user-1";
  return e;
}

inline append_request make_request(const std::string& stream, std::int64_t expected,
                                   int events = 1) {
  append_request r;
  r.stream_id = stream;
  r.stream_type = "thing";
  r.expected_version = expected;
  for (int i = 0; i < events; ++i) {
    r.events.push_back(make_event("ThingHappened", static_cast<int>(expected) + i + 1));
  }
  return r;
}

/// Forwards to another store; lets each thread own a handle to one shared memory store.
class forwarding_store : public event_store {
 public:
  explicit forwarding_store(event_store& target) : target_(target) {}
  std::vector<append_result> append_batch(const std::vector<append_request>& r) override {
    return target_.append_batch(r);
  }
  expected<std::vector<recorded_event>, store_error> read_stream(const std::string& s,
                                                                 std::int64_t from,
                                                                 std::size_t limit) override {
    return target_.read_stream(s, from, limit);
  }
  expected<std::vector<recorded_event>, store_error> read_all(std::int64_t after,
                                                              std::size_t limit) override {
    return target_.read_all(after, limit);
  }
  expected<bool, store_error> save_snapshot(const snapshot& s) override {
    return target_.save_snapshot(s);
  }
  expected<std::optional<snapshot>, store_error> load_snapshot(const std::string& s) override {
    return target_.load_snapshot(s);
  }
  expected<std::vector<stream_head>, store_error> stream_heads(
      const std::string& type, const std::vector<std::string>& last_types) override {
    return target_.stream_heads(type, last_types);
  }

 private:
  event_store& target_;
};

/// Contract-test back-end: one shared in-memory store; handles forward to it.
struct memory_backend {
  static constexpr const char* name = "memory";
  memory_event_store shared;
  /// A store handle for one thread.
  std::unique_ptr<event_store> open() { return std::make_unique<forwarding_store>(shared); }
};

/// Contract-test back-end: PostgreSQL; each handle is its own connection.
struct pg_backend {
  static constexpr const char* name = "postgres";
  std::string url = database_url();
  std::unique_ptr<event_store> open() { return std::make_unique<pg_event_store>(url); }
};

/// Every event of `stream`, failing the test on a read error.
inline std::vector<recorded_event> read_all_of(event_store& store, const std::string& stream) {
  auto events = store.read_stream(stream);
  if (!events) BOOST_FAIL("read_stream failed: " + events.error().message);
  return *events;
}

}  // namespace saga::persistence::test

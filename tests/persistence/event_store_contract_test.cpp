// The event_store contract, run against both implementations (in-memory and PostgreSQL).
#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/persistence/support.hpp"

namespace sp = saga::persistence;
using namespace saga::persistence::test;

namespace {

using backends = boost::mpl::list<memory_backend, pg_backend>;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void require_ok(const sp::append_result& r) {
  BOOST_REQUIRE_MESSAGE(r.has_value(), "append failed: " + (r ? std::string() : r.error().message));
}

void require_error(const sp::append_result& r, sp::store_errc code) {
  BOOST_REQUIRE_MESSAGE(!r.has_value(), "append succeeded but should have failed");
  BOOST_REQUIRE_MESSAGE(r.error().code == code,
                        std::string("error is ") + sp::to_string(r.error().code) + " (" +
                            r.error().message + "), expected " + sp::to_string(code));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_store_contract)

BOOST_AUTO_TEST_CASE_TEMPLATE(append_then_read_back_every_field, B, backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("fields");
  auto request = make_request(stream, 0, 3);
  auto& upper = request.events[1].event_id;  // ids are accepted in any case
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  const auto before = now_ms();
  const auto result = store->append(request);
  require_ok(result);
  BOOST_TEST(result->version == 3);
  BOOST_TEST(!result->duplicate);

  const auto events = read_all_of(*store, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    const auto& sent = request.events[i];
    BOOST_TEST(e.stream_id == stream);
    BOOST_TEST(e.stream_type == "thing");
    BOOST_TEST(e.version == static_cast<std::int64_t>(i + 1));
    std::string id = sent.event_id;
    std::transform(id.begin(), id.end(), id.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    BOOST_TEST(e.event_id == id);  // stored in canonical lower case
    BOOST_TEST(e.event_type == sent.event_type);
    BOOST_TEST(e.schema_version == 1);
    BOOST_TEST(nlohmann::json::parse(e.payload) == nlohmann::json::parse(sent.payload));
    BOOST_TEST(e.metadata.correlation_id == sent.metadata.correlation_id);
    BOOST_TEST(e.metadata.causation_id == "cause");
    BOOST_TEST(e.metadata.command_id == "cmd");
    BOOST_TEST(e.metadata.node_id == "node-a");
    BOOST_TEST(e.metadata.user_id == "user-1");
    BOOST_TEST(e.recorded_at_ms >= before - 5000);
    BOOST_TEST(e.recorded_at_ms <= now_ms() + 5000);
    if (i > 0) BOOST_TEST(e.position > events[i - 1].position);
  }
  BOOST_TEST(result->last_position == events.back().position);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(read_stream_honours_from_version_and_limit, B, backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("range");
  require_ok(store->append(make_request(stream, 0, 5)));
  const auto tail = store->read_stream(stream, 3);
  BOOST_REQUIRE(tail.has_value());
  BOOST_REQUIRE_EQUAL(tail->size(), 3u);
  BOOST_TEST(tail->front().version == 3);
  BOOST_TEST(tail->back().version == 5);
  const auto two = store->read_stream(stream, 2, 2);
  BOOST_REQUIRE(two.has_value());
  BOOST_REQUIRE_EQUAL(two->size(), 2u);
  BOOST_TEST((*two)[0].version == 2);
  BOOST_TEST((*two)[1].version == 3);
  const auto none = store->read_stream(unique_stream("missing"));
  BOOST_REQUIRE(none.has_value());
  BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(read_all_is_ordered_by_position_and_pages, B, backends) {
  B backend;
  auto store = backend.open();
  const auto s1 = unique_stream("all-a");
  const auto s2 = unique_stream("all-b");
  const auto first = store->append(make_request(s1, 0, 2));
  require_ok(first);
  require_ok(store->append(make_request(s2, 0, 1)));
  require_ok(store->append(make_request(s1, 2, 1)));

  // Page through everything after our first event; other binaries may append in between.
  const std::int64_t start = first->last_position - 2;
  std::vector<sp::recorded_event> ours;
  std::int64_t checkpoint = start;
  for (int pages = 0; pages < 10000; ++pages) {
    auto page = store->read_all(checkpoint, 2);
    BOOST_REQUIRE(page.has_value());
    if (page->empty()) break;
    BOOST_TEST(page->size() <= 2u);
    for (const auto& e : *page) {
      BOOST_REQUIRE(e.position > checkpoint);
      checkpoint = e.position;
      if (e.stream_id == s1 || e.stream_id == s2) ours.push_back(e);
    }
  }
  BOOST_REQUIRE_EQUAL(ours.size(), 4u);
  BOOST_TEST(ours[0].stream_id == s1);
  BOOST_TEST(ours[0].version == 1);
  BOOST_TEST(ours[1].version == 2);
  BOOST_TEST(ours[2].stream_id == s2);
  BOOST_TEST(ours[3].stream_id == s1);
  BOOST_TEST(ours[3].version == 3);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(wrong_expected_version_is_a_conflict_and_stores_nothing, B,
                              backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("conflict");
  require_ok(store->append(make_request(stream, 0, 2)));
  for (const std::int64_t expected : {0, 1, 3}) {
    const auto r = store->append(make_request(stream, expected, 1));
    require_error(r, sp::store_errc::version_conflict);
    BOOST_TEST(r.error().actual_version == 2);
  }
  BOOST_TEST(read_all_of(*store, stream).size() == 2u);
  require_ok(store->append(make_request(stream, 2, 1)));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(eight_writers_same_version_exactly_one_wins, B, backends) {
  B backend;
  const auto stream = unique_stream("race");
  {
    auto store = backend.open();
    require_ok(store->append(make_request(stream, 0, 1)));
  }
  constexpr int writers = 8;
  std::vector<std::unique_ptr<sp::event_store>> stores;
  for (int i = 0; i < writers; ++i) stores.push_back(backend.open());
  std::vector<sp::append_result> results(
      writers, saga::unexpected{sp::store_error{sp::store_errc::internal, "not run", -1}});
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < writers; ++i) {
    threads.emplace_back([&, i] {
      auto request = make_request(stream, 1, 2);
      ready.fetch_add(1);
      while (ready.load() < writers) std::this_thread::yield();
      results[static_cast<std::size_t>(i)] = stores[static_cast<std::size_t>(i)]->append(request);
    });
  }
  for (auto& t : threads) t.join();
  int wins = 0, conflicts = 0;
  for (const auto& r : results) {
    if (r) {
      ++wins;
      BOOST_TEST(r->version == 3);
    } else if (r.error().code == sp::store_errc::version_conflict) {
      ++conflicts;
      BOOST_TEST(r.error().actual_version == 3);
    } else {
      BOOST_ERROR("unexpected error: " + r.error().message);
    }
  }
  BOOST_TEST(wins == 1);
  BOOST_TEST(conflicts == writers - 1);
  const auto events = read_all_of(*stores[0], stream);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[2].version == 3);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_conflict_in_a_batch_does_not_fail_the_other_streams, B, backends) {
  B backend;
  auto store = backend.open();
  const auto a = unique_stream("batch-a");
  const auto b = unique_stream("batch-b");
  const auto c = unique_stream("batch-c");
  require_ok(store->append(make_request(b, 0, 1)));
  const auto results =
      store->append_batch({make_request(a, 0, 2), make_request(b, 0, 1), make_request(c, 0, 3)});
  BOOST_REQUIRE_EQUAL(results.size(), 3u);
  require_ok(results[0]);
  BOOST_TEST(results[0]->version == 2);
  require_error(results[1], sp::store_errc::version_conflict);
  BOOST_TEST(results[1].error().actual_version == 1);
  require_ok(results[2]);
  BOOST_TEST(results[2]->version == 3);
  BOOST_TEST(read_all_of(*store, a).size() == 2u);
  BOOST_TEST(read_all_of(*store, b).size() == 1u);
  BOOST_TEST(read_all_of(*store, c).size() == 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(reappending_the_same_events_is_an_idempotent_duplicate, B, backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("dup");
  const auto request = make_request(stream, 0, 2);
  const auto first = store->append(request);
  require_ok(first);
  // A retry after a lost acknowledgement: same ids, same expected version.
  const auto again = store->append(request);
  require_ok(again);
  BOOST_TEST(again->duplicate);
  BOOST_TEST(again->version == first->version);
  BOOST_TEST(again->last_position == first->last_position);
  // Still a duplicate after the stream moved on.
  require_ok(store->append(make_request(stream, 2, 1)));
  const auto late = store->append(request);
  require_ok(late);
  BOOST_TEST(late->duplicate);
  BOOST_TEST(late->version == 2);
  BOOST_TEST(read_all_of(*store, stream).size() == 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(reused_event_ids_are_classified, B, backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("reuse");
  const auto other = unique_stream("reuse-other");
  const auto stored = make_request(stream, 0, 2);
  require_ok(store->append(stored));

  // Some ids stored, some new, at the right version: not a replay, so a conflict.
  auto partial = make_request(stream, 2, 2);
  partial.events[0].event_id = stored.events[1].event_id;
  const auto r1 = store->append(partial);
  require_error(r1, sp::store_errc::version_conflict);
  BOOST_TEST(r1.error().actual_version == 2);

  // An id that belongs to another stream is a caller bug.
  auto foreign = make_request(other, 0, 1);
  foreign.events[0].event_id = stored.events[0].event_id;
  require_error(store->append(foreign), sp::store_errc::invalid_request);

  // The same, inside a batch with a good request: only the bad one fails.
  const auto good = unique_stream("reuse-good");
  const auto results = store->append_batch({make_request(good, 0, 1), foreign, partial});
  require_ok(results[0]);
  require_error(results[1], sp::store_errc::invalid_request);
  require_error(results[2], sp::store_errc::version_conflict);

  BOOST_TEST(read_all_of(*store, stream).size() == 2u);
  BOOST_TEST(read_all_of(*store, other).empty());
  BOOST_TEST(read_all_of(*store, good).size() == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(same_stream_twice_in_one_batch_builds_on_the_first, B, backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("twice");
  const auto broken = unique_stream("twice-broken");
  const auto first = make_request(stream, 0, 2);
  const auto results =
      store->append_batch({first, make_request(stream, 2, 1), make_request(broken, 0, 1),
                           make_request(broken, 0, 1), first});
  BOOST_REQUIRE_EQUAL(results.size(), 5u);
  require_ok(results[0]);
  BOOST_TEST(results[0]->version == 2);
  require_ok(results[1]);
  BOOST_TEST(results[1]->version == 3);
  BOOST_TEST(results[1]->last_position > results[0]->last_position);
  require_ok(results[2]);
  require_error(results[3], sp::store_errc::version_conflict);  // the first one took version 1
  BOOST_TEST(results[3].error().actual_version == 1);
  require_ok(results[4]);  // the same request again: its events are stored by then
  BOOST_TEST(results[4]->duplicate);
  BOOST_TEST(results[4]->version == 2);
  const auto events = read_all_of(*store, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[2].version == 3);
  BOOST_TEST(read_all_of(*store, broken).size() == 1u);
}

namespace {

/// A rider of one event for `stream`, to go on top of `base` (its last event).
sp::append_request rider_on(const sp::append_request& base) {
  auto rider = make_request(base.stream_id,
                            base.expected_version + static_cast<std::int64_t>(base.events.size()));
  rider.after_event_id = base.events.back().event_id;
  return rider;
}

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(riders_are_written_with_their_host, B, backends) {
  B backend;
  auto store = backend.open();
  const auto owner = unique_stream("rider-owner");
  const auto host_stream = unique_stream("rider-host");
  const auto base = make_request(owner, 0, 2);
  require_ok(store->append(base));

  // Its base written earlier by this store.
  auto host = make_request(host_stream, 0, 1);
  host.riders.push_back(rider_on(base));
  const auto written = store->append(host);
  require_ok(written);
  BOOST_TEST(written->version == 1);
  BOOST_TEST(written->riders_written == std::vector<std::uint8_t>{1});
  auto events = read_all_of(*store, owner);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[2].event_id == host.riders[0].events[0].event_id);
  BOOST_TEST(events[2].version == 3);

  // Its base earlier in the same batch; the rider of the second host builds on the first's.
  const auto owner2 = unique_stream("rider-owner");
  const auto base2 = make_request(owner2, 0, 1);
  auto host2 = make_request(unique_stream("rider-host"), 0, 1);
  host2.riders.push_back(rider_on(base2));
  auto host3 = make_request(unique_stream("rider-host"), 0, 2);
  host3.riders.push_back(rider_on(host2.riders[0]));
  const auto results = store->append_batch({base2, host2, host3});
  BOOST_REQUIRE_EQUAL(results.size(), 3u);
  require_ok(results[1]);
  require_ok(results[2]);
  BOOST_TEST(results[1]->riders_written == std::vector<std::uint8_t>{1});
  BOOST_TEST(results[2]->riders_written == std::vector<std::uint8_t>{1});
  events = read_all_of(*store, owner2);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[1].event_id == host2.riders[0].events[0].event_id);
  BOOST_TEST(events[2].event_id == host3.riders[0].events[0].event_id);

  // A replay of the whole request after a lost acknowledgement writes nothing more.
  const auto again = store->append(host);
  require_ok(again);
  BOOST_TEST(again->duplicate);
  BOOST_TEST(again->riders_written == std::vector<std::uint8_t>{0});
  BOOST_TEST(read_all_of(*store, owner).size() == 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_append_that_names_the_event_it_follows_goes_only_on_top_of_it, B,
                              backends) {
  // How an actor appends behind its own append still in flight: if that one is not written, an
  // event another writer put at its version must not do instead.
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("follows");
  const auto base = make_request(stream, 0, 2);
  require_ok(store->append(base));

  // On top of the event it names, written earlier by this store.
  const auto next = rider_on(base);
  const auto written = store->append(next);
  require_ok(written);
  BOOST_TEST(written->version == 3);
  // The same request again is a replay, not a conflict.
  const auto replay = store->append(next);
  require_ok(replay);
  BOOST_TEST(replay->duplicate);

  // At the right version, but another event is there.
  auto wrong_event = rider_on(next);
  wrong_event.after_event_id = base.events.back().event_id;
  require_error(store->append(wrong_event), sp::store_errc::version_conflict);
  // A new stream has no event to follow.
  auto nothing_there = make_request(unique_stream("follows"), 0, 1);
  nothing_there.after_event_id = sp::new_uuid();
  require_error(store->append(nothing_there), sp::store_errc::version_conflict);
  // The event it names failed to be written earlier in the batch; one at its version was not.
  const auto taken = unique_stream("follows");
  const auto first = make_request(taken, 0, 1);
  auto failing = make_request(taken, 1, 1);
  failing.after_event_id = sp::new_uuid();  // not the stream's event at version 1
  const auto behind = rider_on(failing);
  const auto results = store->append_batch({first, failing, behind});
  BOOST_REQUIRE_EQUAL(results.size(), 3u);
  require_ok(results[0]);
  require_error(results[1], sp::store_errc::version_conflict);
  require_error(results[2], sp::store_errc::version_conflict);
  // Chained in one batch, each on top of the one before.
  const auto chained = unique_stream("follows");
  const auto c1 = make_request(chained, 0, 1);
  const auto c2 = rider_on(c1);
  const auto c3 = rider_on(c2);
  const auto chain = store->append_batch({c1, c2, c3});
  BOOST_REQUIRE_EQUAL(chain.size(), 3u);
  for (const auto& r : chain) require_ok(r);
  BOOST_TEST(chain[2]->version == 3);

  const auto events = read_all_of(*store, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[2].event_id == next.events[0].event_id);
  BOOST_TEST(read_all_of(*store, taken).size() == 1u);
  BOOST_TEST(read_all_of(*store, chained).size() == 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_rider_that_does_not_apply_leaves_its_host_written, B, backends) {
  B backend;
  auto store = backend.open();
  const auto owner = unique_stream("rider-owner");
  const auto base = make_request(owner, 0, 2);
  require_ok(store->append(base));

  // Not on top of the event it names: another event at that version.
  auto wrong_event = make_request(unique_stream("rider-host"), 0, 1);
  wrong_event.riders.push_back(rider_on(base));
  wrong_event.riders[0].after_event_id = base.events.front().event_id;
  // The stream is not at its version.
  auto wrong_version = make_request(unique_stream("rider-host"), 0, 1);
  wrong_version.riders.push_back(rider_on(base));
  wrong_version.riders[0].expected_version = 1;
  // Its host conflicts: neither is written.
  const auto taken = unique_stream("rider-host");
  require_ok(store->append(make_request(taken, 0, 1)));
  auto conflicting = make_request(taken, 0, 1);
  conflicting.riders.push_back(rider_on(base));

  const auto results = store->append_batch({wrong_event, wrong_version, conflicting});
  BOOST_REQUIRE_EQUAL(results.size(), 3u);
  require_ok(results[0]);
  BOOST_TEST(results[0]->riders_written == std::vector<std::uint8_t>{0});
  require_ok(results[1]);
  BOOST_TEST(results[1]->riders_written == std::vector<std::uint8_t>{0});
  require_error(results[2], sp::store_errc::version_conflict);
  BOOST_TEST(read_all_of(*store, owner).size() == 2u);
  BOOST_TEST(read_all_of(*store, wrong_event.stream_id).size() == 1u);
  BOOST_TEST(read_all_of(*store, wrong_version.stream_id).size() == 1u);
  BOOST_TEST(read_all_of(*store, taken).size() == 1u);

  // Two riders on the same base: the first one written takes the version.
  auto first = make_request(unique_stream("rider-host"), 0, 1);
  first.riders.push_back(rider_on(base));
  auto second = make_request(unique_stream("rider-host"), 0, 1);
  second.riders.push_back(rider_on(base));
  const auto both = store->append_batch({first, second});
  require_ok(both[0]);
  require_ok(both[1]);
  BOOST_TEST(both[0]->riders_written == std::vector<std::uint8_t>{1});
  BOOST_TEST(both[1]->riders_written == std::vector<std::uint8_t>{0});
  BOOST_TEST(read_all_of(*store, owner).size() == 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(malformed_riders_make_the_request_invalid, B, backends) {
  B backend;
  auto store = backend.open();
  const auto owner = unique_stream("rider-owner");
  const auto base = make_request(owner, 0, 1);
  require_ok(store->append(base));
  const auto host_stream = unique_stream("rider-host");

  auto own_stream = make_request(host_stream, 0, 1);
  own_stream.riders.push_back(make_request(host_stream, 1, 1));
  auto nested = make_request(host_stream, 0, 1);
  nested.riders.push_back(rider_on(base));
  nested.riders[0].riders.push_back(make_request(unique_stream("rider-x"), 0, 1));
  auto shared_id = make_request(host_stream, 0, 1);
  shared_id.riders.push_back(rider_on(base));
  shared_id.riders[0].events[0].event_id = shared_id.events[0].event_id;
  auto bad_fence = make_request(host_stream, 0, 1);
  bad_fence.riders.push_back(rider_on(base));
  bad_fence.riders[0].after_event_id = "not-a-uuid";

  for (const auto& request : {own_stream, nested, shared_id, bad_fence}) {
    require_error(store->append(request), sp::store_errc::invalid_request);
  }
  BOOST_TEST(read_all_of(*store, host_stream).empty());
  BOOST_TEST(read_all_of(*store, owner).size() == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(invalid_requests_fail_alone_and_store_nothing, B, backends) {
  B backend;
  auto store = backend.open();
  std::vector<sp::append_request> bad;
  std::vector<std::string> streams;
  const auto add = [&](auto mutate) {
    auto r = make_request(unique_stream("invalid"), 0, 2);
    mutate(r);
    streams.push_back(r.stream_id);
    bad.push_back(std::move(r));
  };
  add([](sp::append_request& r) { r.events[1].payload = "{not json"; });
  add([](sp::append_request& r) { r.events[0].payload = "[1,2,3]"; });  // not an object
  add([](sp::append_request& r) { r.events[0].payload = ""; });
  add([](sp::append_request& r) { r.events[0].payload = R"({"a":"\u0000"})"; });
  add([](sp::append_request& r) { r.events[0].payload = "{\"a\":\"\xff\xfe\"}"; });
  add([](sp::append_request& r) { r.events[0].event_id = "not-a-uuid"; });
  add([](sp::append_request& r) { r.events[0].event_id = "12345678-1234-1234-1234-12345678901"; });
  add([](sp::append_request& r) { r.events[1].event_id = r.events[0].event_id; });
  add([](sp::append_request& r) { r.events[0].event_type.clear(); });
  add([](sp::append_request& r) { r.events[0].schema_version = 0; });
  add([](sp::append_request& r) { r.expected_version = -1; });
  add([](sp::append_request& r) { r.events.clear(); });
  add([](sp::append_request& r) { r.stream_type.clear(); });
  add([](sp::append_request& r) { r.stream_id += std::string(1, '\0'); });
  add([](sp::append_request& r) { r.stream_id += "\xc3"; });  // truncated UTF-8
  add([](sp::append_request& r) { r.events[0].metadata.user_id = "\xed\xa0\x80"; });  // surrogate
  const auto good = unique_stream("invalid-good");
  auto batch = bad;
  batch.push_back(make_request(good, 0, 1));
  sp::append_request empty_id = make_request("", 0, 1);
  batch.push_back(empty_id);

  const auto results = store->append_batch(batch);
  BOOST_REQUIRE_EQUAL(results.size(), batch.size());
  for (std::size_t i = 0; i < bad.size(); ++i) {
    BOOST_TEST_CONTEXT("bad request #" << i) {
      require_error(results[i], sp::store_errc::invalid_request);
    }
  }
  require_ok(results[bad.size()]);
  require_error(results[bad.size() + 1], sp::store_errc::invalid_request);
  for (const auto& s : streams) {
    auto events = store->read_stream(s);
    if (events) BOOST_TEST(events->empty());
  }
  BOOST_TEST(read_all_of(*store, good).size() == 1u);
  // Alone, too.
  require_error(store->append(bad[0]), sp::store_errc::invalid_request);
  BOOST_TEST(read_all_of(*store, streams[0]).empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(snapshots_save_load_and_newer_wins, B, backends) {
  B backend;
  auto store = backend.open();
  const auto stream = unique_stream("snap");
  const auto missing = store->load_snapshot(stream);
  BOOST_REQUIRE(missing.has_value());
  BOOST_TEST(!missing->has_value());

  sp::snapshot s{stream, "thing", 5, 2, R"({"total":5})", 0};
  auto saved = store->save_snapshot(s);
  BOOST_REQUIRE(saved.has_value());
  BOOST_TEST(*saved);
  auto loaded = store->load_snapshot(stream);
  BOOST_REQUIRE(loaded.has_value() && loaded->has_value());
  BOOST_TEST((*loaded)->version == 5);
  BOOST_TEST((*loaded)->schema_version == 2);
  BOOST_TEST((*loaded)->stream_type == "thing");
  BOOST_TEST(nlohmann::json::parse((*loaded)->payload) == nlohmann::json::parse(s.payload));
  BOOST_TEST((*loaded)->taken_at_ms > 0);

  // Older or equal versions never replace a newer snapshot.
  for (const std::int64_t v : {3, 5}) {
    sp::snapshot older{stream, "thing", v, 2, R"({"total":"old"})", 0};
    saved = store->save_snapshot(older);
    BOOST_REQUIRE(saved.has_value());
    BOOST_TEST(!*saved);
  }
  loaded = store->load_snapshot(stream);
  BOOST_TEST(nlohmann::json::parse((*loaded)->payload)["total"] == 5);

  sp::snapshot newer{stream, "thing", 9, 3, R"({"total":9})", 0};
  saved = store->save_snapshot(newer);
  BOOST_REQUIRE(saved.has_value());
  BOOST_TEST(*saved);
  loaded = store->load_snapshot(stream);
  BOOST_TEST((*loaded)->version == 9);
  BOOST_TEST((*loaded)->schema_version == 3);

  sp::snapshot broken{stream, "thing", 10, 1, "{oops", 0};
  const auto rejected = store->save_snapshot(broken);
  BOOST_REQUIRE(!rejected.has_value());
  BOOST_TEST(rejected.error().code == sp::store_errc::invalid_request);
  sp::snapshot zero{stream, "thing", 0, 1, "{}", 0};
  BOOST_TEST(!store->save_snapshot(zero).has_value());
  loaded = store->load_snapshot(stream);
  BOOST_TEST((*loaded)->version == 9);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(event_store_heads)

BOOST_AUTO_TEST_CASE_TEMPLATE(stream_heads_list_the_newest_event_per_stream_filtered_by_type, B,
                              backends) {
  B backend;
  auto store = backend.open();
  // A stream type of its own, so streams of other tests and runs never show up.
  const auto type = unique_stream("headtype");
  auto request_of = [&](const std::string& stream, std::int64_t expected,
                        std::vector<std::string> event_types) {
    sp::append_request r;
    r.stream_id = stream;
    r.stream_type = type;
    r.expected_version = expected;
    int n = 0;
    for (auto& t : event_types) r.events.push_back(make_event(t, ++n));
    return r;
  };
  const auto a = unique_stream("head-a");
  const auto b = unique_stream("head-b");
  const auto c = unique_stream("head-c");
  require_ok(store->append(request_of(a, 0, {"Started", "Stepped"})));
  require_ok(store->append(request_of(b, 0, {"Started", "Finished"})));
  require_ok(store->append(request_of(c, 0, {"Started"})));
  require_ok(store->append(request_of(a, 2, {"Stepped"})));
  auto other = make_request(unique_stream("head-other"), 0, 1);  // another type: never listed
  require_ok(store->append(other));

  auto all = store->stream_heads(type, {});
  BOOST_REQUIRE_MESSAGE(all.has_value(), (all ? std::string() : all.error().message));
  BOOST_REQUIRE_EQUAL(all->size(), 3u);
  std::map<std::string, sp::stream_head> by_id;
  for (auto& h : *all) by_id[h.stream_id] = h;
  BOOST_TEST(by_id.at(a).version == 3);
  BOOST_TEST(by_id.at(a).event_type == "Stepped");
  BOOST_TEST(nlohmann::json::parse(by_id.at(a).payload)["n"] == 1);
  BOOST_TEST(by_id.at(b).event_type == "Finished");
  BOOST_TEST(by_id.at(c).version == 1);
  BOOST_TEST(std::is_sorted(all->begin(), all->end(), [](const auto& x, const auto& y) {
    return x.stream_id < y.stream_id;
  }));

  // The filter applies to the newest event only: b started once, but has finished.
  auto unfinished = store->stream_heads(type, {"Started", "Stepped"});
  BOOST_REQUIRE(unfinished.has_value());
  BOOST_REQUIRE_EQUAL(unfinished->size(), 2u);
  BOOST_TEST(((*unfinished)[0].stream_id == a || (*unfinished)[1].stream_id == a));
  BOOST_TEST(((*unfinished)[0].stream_id == c || (*unfinished)[1].stream_id == c));

  auto none = store->stream_heads(unique_stream("no-such-type"), {});
  BOOST_REQUIRE(none.has_value());
  BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_SUITE_END()

// PostgreSQL-specific behaviour of pg_event_store: commit-ordered positions, round trips per
// batch, text that survives the JSON batch encoding, the correlation column, connection loss and
// recovery, and the per-request fallback when the database rejects one request of a batch.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "persistence/pg_admin.hpp"
#include "tests/persistence/support.hpp"

// libpqxx 6.4 leaks a PGresult (~2 KB) each time it finds its connection broken (reproduced
// with a ten-line program: connect, pg_terminate_backend, exec). The connection-loss tests do
// that on purpose; keep LeakSanitizer builds green without hiding leaks of our own.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpq.so\n"; }

namespace sp = saga::persistence;
using namespace saga::persistence::test;
using namespace std::chrono_literals;

namespace {

void require_ok(const sp::append_result& r) {
  if (!r) BOOST_FAIL("append failed: " + r.error().message);
}

sp::pg_store_options options(const std::string& app) {
  sp::pg_store_options o;
  o.database_url = database_url();
  o.application_name = app;
  return o;
}

void terminate_backend(int pid) {
  // The timeout makes the call wait until the backend has exited.
  const auto killed =
      sp::run_sql(database_url(), "SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)");
  if (!killed) BOOST_FAIL("pg_terminate_backend failed: " + killed.error().message);
  BOOST_REQUIRE_EQUAL(killed->size(), 1u);
  BOOST_REQUIRE_EQUAL((*killed)[0][0], "t");
}

// A throwaway schema with the journal migrated into it, dropped at the end of the test.
struct scratch_schema {
  std::string name = "test_pg_" + run_tag() + "_" + std::to_string(counter()++);
  scratch_schema() {
    auto applied = sp::apply_migrations(database_url(), sp::migration_options{name});
    if (!applied) BOOST_FAIL("migrating the scratch schema failed: " + applied.error().message);
  }
  ~scratch_schema() { (void)sp::run_sql(database_url(), "DROP SCHEMA " + name + " CASCADE"); }
  static std::atomic<int>& counter() {
    static std::atomic<int> c{0};
    return c;
  }
};

struct late_commit_outcome {
  bool reader_saw_a = false;
  bool reader_saw_b = false;
  bool b_finished_while_a_open = false;
  std::int64_t position_a = 0;
  std::int64_t position_b = 0;
};

// Transaction A draws its position first and commits last (it stalls before COMMIT);
// transaction B appends meanwhile, through a store (taking the journal lock) or, to show what
// the lock prevents, with a plain INSERT that bypasses it. A reader that only ever advances its
// checkpoint polls while A is open and again afterwards. Returns what the reader saw.
late_commit_outcome run_late_commit(bool b_bypasses_lock) {
  const auto stream_a = unique_stream("late-a");
  const auto stream_b = unique_stream("late-b");
  sp::pg_event_store reader(options("test-late-reader"));
  // Start at a fresh marker event, so the reader only pages through recent events.
  auto marker = reader.append(make_request(unique_stream("late-marker"), 0, 1));
  require_ok(marker);
  std::int64_t checkpoint = marker->last_position;
  late_commit_outcome out;
  std::string reader_error;  // Boost.Test assertions are for the main thread only
  const auto poll = [&] {
    for (;;) {
      auto page = reader.read_all(checkpoint, 1000);
      if (!page) {
        reader_error = page.error().message;
        return;
      }
      if (page->empty()) return;
      for (const auto& e : *page) {
        checkpoint = e.position;
        if (e.stream_id == stream_a) out.reader_saw_a = true;
        if (e.stream_id == stream_b) out.reader_saw_b = true;
      }
    }
  };

  std::promise<void> a_inserted;
  std::promise<void> b_done;
  auto b_done_future = b_done.get_future().share();
  auto a_options = options("test-late-a");
  a_options.before_commit = [&] {
    a_inserted.set_value();
    // Without the journal lock B commits now; with it B waits for our COMMIT.
    out.b_finished_while_a_open = b_done_future.wait_for(1500ms) == std::future_status::ready;
    poll();  // the reader looks while A is still open
  };
  sp::pg_event_store store_a(a_options);
  sp::pg_event_store store_b(options("test-late-b"));
  BOOST_REQUIRE(store_a.connect().has_value());
  BOOST_REQUIRE(store_b.connect().has_value());

  sp::append_result result_a =
      saga::unexpected{sp::store_error{sp::store_errc::internal, "not run", -1}};
  std::thread a([&] { result_a = store_a.append(make_request(stream_a, 0, 1)); });
  a_inserted.get_future().wait();
  if (b_bypasses_lock) {
    const auto inserted =
        sp::run_sql(database_url(),
                    "INSERT INTO events (stream_id, stream_type, version, event_id, event_type, "
                    "schema_version, payload) VALUES ('" +
                        stream_b + "', 'thing', 1, '" + sp::new_uuid() +
                        "', 'ThingHappened', 1, '{}') RETURNING position");
    b_done.set_value();
    a.join();
    if (!inserted) BOOST_FAIL("plain insert failed: " + inserted.error().message);
    out.position_b = std::stoll((*inserted)[0][0]);
  } else {
    const auto result_b = store_b.append(make_request(stream_b, 0, 1));
    b_done.set_value();
    a.join();
    require_ok(result_b);
    out.position_b = result_b->last_position;
  }
  require_ok(result_a);
  BOOST_REQUIRE_MESSAGE(reader_error.empty(), "read_all failed: " + reader_error);
  out.position_a = result_a->last_position;
  // Everything has committed now; the reader catches up from its checkpoint.
  poll();
  BOOST_REQUIRE_MESSAGE(reader_error.empty(), "read_all failed: " + reader_error);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pg_event_store)

BOOST_AUTO_TEST_CASE(without_the_journal_lock_a_late_commit_is_skipped_by_readers) {
  // The control experiment: proves the scenario below really exposes the anomaly.
  const auto out = run_late_commit(true);
  BOOST_TEST(out.b_finished_while_a_open);
  BOOST_TEST(out.position_a < out.position_b);
  BOOST_TEST(out.reader_saw_b);
  BOOST_TEST(!out.reader_saw_a);  // skipped for ever: its position was below the checkpoint
}

BOOST_AUTO_TEST_CASE(positions_are_commit_ordered_so_readers_never_skip_late_commits) {
  const auto out = run_late_commit(false);
  BOOST_TEST(!out.b_finished_while_a_open);  // B waited for A's commit
  BOOST_TEST(out.position_a < out.position_b);
  BOOST_TEST(out.reader_saw_a);
  BOOST_TEST(out.reader_saw_b);
}

BOOST_AUTO_TEST_CASE(a_vouched_batch_costs_one_round_trip_and_a_checked_round_one_more) {
  // Every request vouched for (new streams): one journal_append statement, its own transaction.
  sp::pg_event_store store(options("test-round-trips"));
  BOOST_REQUIRE(store.connect().has_value());
  std::vector<std::string> written;
  for (const int size : {1, 2, 200}) {
    std::vector<sp::append_request> batch;
    for (int i = 0; i < size; ++i) batch.push_back(make_request(unique_stream("rt"), 0, 2));
    const auto before = store.round_trips();
    const auto results = store.append_batch(batch);
    BOOST_TEST(store.round_trips() - before == 1u, "batch of " << size);
    for (const auto& r : results) require_ok(r);
    written.push_back(batch.front().stream_id);
  }
  // Streams at the version this store wrote are vouched for too, and so is a stream repeated in
  // the batch (its second round builds on the first in the same query string).
  const auto s = unique_stream("rt-twice");
  const auto before_known = store.round_trips();
  const auto known = store.append_batch({make_request(written[0], 2, 1), make_request(s, 0, 1),
                                         make_request(written[1], 2, 3), make_request(s, 1, 1)});
  BOOST_TEST(store.round_trips() - before_known == 1u);
  for (const auto& r : known) require_ok(r);
  BOOST_TEST(read_all_of(store, s).size() == 2u);
  BOOST_TEST(read_all_of(store, written[1]).size() == 5u);

  // A request this store cannot vouch for (a stream it has not seen) needs journal_check: BEGIN
  // plus the check, then the inserts plus COMMIT; whatever the batch size.
  for (const int size : {1, 200}) {
    std::vector<sp::append_request> batch;
    for (int i = 0; i < size; ++i) batch.push_back(make_request(unique_stream("rt"), 0, 2));
    batch.push_back(make_request(unique_stream("rt-conflict"), 7, 1));
    const auto before = store.round_trips();
    const auto results = store.append_batch(batch);
    BOOST_TEST(store.round_trips() - before == 2u, "batch of " << size << " and a check");
    for (std::size_t i = 0; i + 1 < results.size(); ++i) require_ok(results[i]);
    BOOST_REQUIRE(!results.back().has_value());
    BOOST_TEST(results.back().error().code == sp::store_errc::version_conflict);
  }
  // Nothing to insert: the check, then COMMIT.
  const auto before_conflict = store.round_trips();
  BOOST_TEST(!store.append(make_request(unique_stream("rt-only-conflict"), 3, 1)).has_value());
  BOOST_TEST(store.round_trips() - before_conflict == 2u);
  // A stream another store moved on: checked (found at the expected version) and written.
  sp::pg_event_store other(options("test-round-trips-other"));
  const auto foreign = unique_stream("rt-foreign");
  require_ok(other.append(make_request(foreign, 0, 2)));
  const auto before_foreign = store.round_trips();
  const auto ok = store.append(make_request(foreign, 2, 1));
  require_ok(ok);
  BOOST_TEST(ok->version == 3);
  BOOST_TEST(store.round_trips() - before_foreign == 2u);
  // Now known: vouched for.
  const auto before_again = store.round_trips();
  require_ok(store.append(make_request(foreign, 3, 1)));
  BOOST_TEST(store.round_trips() - before_again == 1u);
  // Two rounds that each need a check: one round trip each, plus the final COMMIT.
  const auto t = unique_stream("rt-two-checks");
  require_ok(other.append(make_request(t, 0, 1)));
  const auto before_two = store.round_trips();
  const auto two = store.append_batch({make_request(t, 1, 1), make_request(t, 5, 1)});
  BOOST_TEST(store.round_trips() - before_two == 3u);
  require_ok(two[0]);
  BOOST_REQUIRE(!two[1].has_value());
  BOOST_TEST(two[1].error().actual_version == 2);
}

BOOST_AUTO_TEST_CASE(a_huge_batch_is_sent_in_pieces_of_one_transaction) {
  // 40 events of ~1 MB: several journal_append calls (a jsonb value is limited), and the query
  // string goes out once mid-transaction; positions stay contiguous and in request order.
  sp::pg_event_store store(options("test-huge-batch"));
  BOOST_REQUIRE(store.connect().has_value());
  const auto a = unique_stream("huge-a");
  const auto b = unique_stream("huge-b");
  auto ra = make_request(a, 0, 25);
  auto rb = make_request(b, 0, 15);
  int n = 0;
  for (auto* r : {&ra, &rb}) {
    for (auto& e : r->events) {
      e.payload = R"({"n": )" + std::to_string(n++) + R"(, "pad": ")" +
                  std::string(sp::max_payload_bytes - 40, 'x') + "\"}";
    }
  }
  const auto before = store.round_trips();
  const auto results = store.append_batch({ra, rb});
  BOOST_TEST(store.round_trips() - before == 2u);
  require_ok(results[0]);
  require_ok(results[1]);
  BOOST_TEST(results[1]->last_position == results[0]->last_position + 15);
  std::int64_t position = results[0]->last_position - 25;
  n = 0;
  for (const auto& [stream, count] : {std::pair{a, 25u}, std::pair{b, 15u}}) {
    const auto events = read_all_of(store, stream);
    BOOST_REQUIRE_EQUAL(events.size(), count);
    for (const auto& e : events) {
      BOOST_TEST(e.position == ++position);
      BOOST_TEST(e.payload.size() == sp::max_payload_bytes - 40 + 18 + std::to_string(n).size());
      BOOST_TEST(e.payload.compare(0, 7 + std::to_string(n).size(),
                                   R"({"n": )" + std::to_string(n) + ",") == 0);
      ++n;
    }
  }
}

BOOST_AUTO_TEST_CASE(the_before_commit_hook_runs_before_commit_is_sent) {
  // The hook needs the rows written and COMMIT not yet sent: one more round trip.
  auto o = options("test-hook-round-trips");
  const auto stream = unique_stream("hook");
  std::size_t rows_seen_by_others = 99;
  o.before_commit = [&] {
    sp::pg_event_store observer(options("test-hook-observer"));
    rows_seen_by_others = read_all_of(observer, stream).size();
  };
  sp::pg_event_store store(o);
  BOOST_REQUIRE(store.connect().has_value());
  const auto before = store.round_trips();
  require_ok(store.append(make_request(stream, 0, 2)));
  BOOST_TEST(store.round_trips() - before == 2u);
  BOOST_TEST(rows_seen_by_others == 0u);  // not committed while the hook ran
  BOOST_TEST(read_all_of(store, stream).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_conflict_in_one_stream_fails_only_that_stream) {
  sp::pg_event_store other(options("test-conflict-other"));
  const auto moved = unique_stream("conflict-moved");
  require_ok(other.append(make_request(moved, 0, 3)));
  sp::pg_event_store store(options("test-conflict"));
  const auto a = unique_stream("conflict-a");
  const auto b = unique_stream("conflict-b");
  // Checked (unknown to this store) and wrong.
  const auto results =
      store.append_batch({make_request(a, 0, 2), make_request(moved, 1, 1), make_request(b, 0, 1)});
  require_ok(results[0]);
  BOOST_REQUIRE(!results[1].has_value());
  BOOST_TEST(results[1].error().code == sp::store_errc::version_conflict);
  BOOST_TEST(results[1].error().actual_version == 3);
  require_ok(results[2]);
  // The others' positions are contiguous, in request order.
  BOOST_TEST(results[2]->last_position == results[0]->last_position + 1);
  BOOST_TEST(read_all_of(store, a).size() == 2u);
  BOOST_TEST(read_all_of(store, b).size() == 1u);
  BOOST_TEST(read_all_of(store, moved).size() == 3u);

  // Vouched for but stale (this store wrote version 1, another moved it on): the insert hits
  // the unique index, and the redone transaction fails only that stream.
  const auto stale = unique_stream("conflict-stale");
  require_ok(store.append(make_request(stale, 0, 1)));
  require_ok(other.append(make_request(stale, 1, 1)));
  const auto c = unique_stream("conflict-c");
  const auto again = store.append_batch({make_request(c, 0, 1), make_request(stale, 1, 1)});
  require_ok(again[0]);
  BOOST_REQUIRE(!again[1].has_value());
  BOOST_TEST(again[1].error().code == sp::store_errc::version_conflict);
  BOOST_TEST(again[1].error().actual_version == 2);
  BOOST_TEST(read_all_of(store, c).size() == 1u);
  BOOST_TEST(read_all_of(store, stale).size() == 2u);
}

BOOST_AUTO_TEST_CASE(text_with_quotes_backslashes_unicode_and_control_characters_round_trips) {
  // The batch travels as one JSON array in one SQL string literal: every field must come back
  // exactly. The payloads are written in jsonb's own output form (keys by length then bytes,
  // ": " and ", "), so the stored text must equal them byte for byte.
  const std::string payload_a =
      R"({"a": "double \" single ' back \\ slash / $$ $j$", "c": "\b\f\n\r\t \u0001 \u001f", )"
      R"("u": "héllo ☃ 😀 ë", "nested": {"x": [1, 2.50, -0.0000003, true, null, "'; DROP"]}})";
  // Escaped input: jsonb stores the characters, and prints them raw.
  const std::string payload_b = R"({"e":"\u00e9\ud83d\ude00\u2603","s":"\/"})";
  const std::string payload_b_stored = R"({"e": "é😀☃", "s": "/"})";
  const std::string weird = "it's \"quoted\" \\ tab\t nl\n bell\x07 é ☃";
  const auto stream = unique_stream("weird") + "-" + weird;

  sp::append_request r;
  r.stream_id = stream;
  r.stream_type = "type " + weird;
  r.expected_version = 0;
  for (const auto* payload : {&payload_a, &payload_b}) {
    sp::new_event e = make_event();
    e.event_type = "Event " + weird;
    e.payload = *payload;
    e.metadata.correlation_id = "corr " + weird;
    e.metadata.causation_id = weird;
    e.metadata.user_id = "'";
    r.events.push_back(e);
  }
  sp::pg_event_store store(options("test-weird-text"));
  const auto ok = store.append(r);
  require_ok(ok);
  const auto events = read_all_of(store, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 2u);
  BOOST_TEST(events[0].payload == payload_a);
  BOOST_TEST(events[1].payload == payload_b_stored);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    BOOST_TEST(e.stream_id == stream);
    BOOST_TEST(e.stream_type == r.stream_type);
    BOOST_TEST(e.event_type == r.events[i].event_type);
    BOOST_TEST(e.event_id == r.events[i].event_id);
    BOOST_TEST(e.metadata.correlation_id == r.events[i].metadata.correlation_id);
    BOOST_TEST(e.metadata.causation_id == weird);
    BOOST_TEST(e.metadata.command_id == "cmd");
    BOOST_TEST(e.metadata.user_id == "'");
    BOOST_TEST(e.version == static_cast<std::int64_t>(i + 1));
  }
  BOOST_TEST(events[1].position == ok->last_position);
  // The correlation column holds the same text.
  const auto column =
      sp::run_sql(database_url(),
                  "SELECT correlation_id = metadata ->> 'correlation_id', octet_length("
                  "correlation_id) FROM events WHERE event_id = '" +
                      r.events[0].event_id + "'");
  BOOST_REQUIRE(column.has_value());
  BOOST_REQUIRE_EQUAL(column->size(), 1u);
  BOOST_TEST((*column)[0][0] == "t");
  BOOST_TEST((*column)[0][1] == std::to_string(r.events[0].metadata.correlation_id.size()));
}

BOOST_AUTO_TEST_CASE(the_correlation_column_is_filled_and_null_without_a_correlation_id) {
  sp::pg_event_store store(options("test-correlation-column"));
  const auto stream = unique_stream("corr-column");
  auto r = make_request(stream, 0, 3);
  r.events[1].metadata.correlation_id.clear();  // the other metadata stays
  require_ok(store.append(r));
  const auto rows =
      sp::run_sql(database_url(),
                  "SELECT version, coalesce(correlation_id, '<null>'), metadata ->> 'causation_id' "
                  "FROM events WHERE stream_id = '" +
                      stream + "' ORDER BY version");
  BOOST_REQUIRE(rows.has_value());
  BOOST_REQUIRE_EQUAL(rows->size(), 3u);
  BOOST_TEST((*rows)[0][1] == r.events[0].metadata.correlation_id);
  BOOST_TEST((*rows)[1][1] == "<null>");
  BOOST_TEST((*rows)[1][2] == "cause");
  BOOST_TEST((*rows)[2][1] == r.events[2].metadata.correlation_id);
  const auto events = read_all_of(store, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 3u);
  BOOST_TEST(events[1].metadata.correlation_id.empty());
  BOOST_TEST(events[2].metadata.correlation_id == r.events[2].metadata.correlation_id);
}

BOOST_AUTO_TEST_CASE(a_stale_version_remembered_by_one_store_still_conflicts) {
  // Store A remembers the version it wrote and skips the lookup when a request expects it;
  // the unique index must still stop it once store B has moved the stream on.
  sp::pg_event_store a(options("test-stale-a"));
  sp::pg_event_store b(options("test-stale-b"));
  const auto stream = unique_stream("stale");
  const auto other = unique_stream("stale-other");
  require_ok(a.append(make_request(stream, 0, 1)));
  require_ok(a.append(make_request(other, 0, 1)));
  require_ok(b.append(make_request(stream, 1, 2)));
  // In one batch with a request A can vouch for, which must still commit.
  const auto results = a.append_batch({make_request(stream, 1, 1), make_request(other, 1, 1)});
  BOOST_REQUIRE(!results[0].has_value());
  BOOST_TEST(results[0].error().code == sp::store_errc::version_conflict);
  BOOST_TEST(results[0].error().actual_version == 3);
  require_ok(results[1]);
  BOOST_TEST(results[1]->version == 2);
  // The conflict taught A the real version: its retry goes through.
  const auto retried = a.append(make_request(stream, 3, 1));
  require_ok(retried);
  BOOST_TEST(retried->version == 4);
  const auto events = read_all_of(a, stream);
  BOOST_REQUIRE_EQUAL(events.size(), 4u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST(events[i].version == static_cast<std::int64_t>(i + 1));
  }
}

BOOST_AUTO_TEST_CASE(riders_are_written_only_where_the_store_can_vouch_for_them) {
  // A rider is never looked up: store A writes it only on top of an event A itself wrote, and
  // when B has moved that stream on meanwhile, the unique index stops it and the host is
  // written without it.
  sp::pg_event_store a(options("test-rider-a"));
  sp::pg_event_store b(options("test-rider-b"));
  const auto mine = unique_stream("rider-mine");
  const auto theirs = unique_stream("rider-theirs");
  const auto base_mine = make_request(mine, 0, 1);
  const auto base_theirs = make_request(theirs, 0, 1);
  require_ok(a.append(base_mine));
  require_ok(b.append(base_theirs));
  const auto rider_on = [](const sp::append_request& base) {
    auto rider = make_request(base.stream_id, 1, 1);
    rider.after_event_id = base.events.back().event_id;
    return rider;
  };
  auto unknown = make_request(unique_stream("rider-host"), 0, 1);
  unknown.riders.push_back(rider_on(base_theirs));
  const auto r1 = a.append(unknown);
  require_ok(r1);
  BOOST_TEST(r1->riders_written == std::vector<std::uint8_t>{0});
  BOOST_TEST(read_all_of(a, theirs).size() == 1u);

  require_ok(b.append(make_request(mine, 1, 1)));  // A does not know
  auto stale = make_request(unique_stream("rider-host"), 0, 1);
  stale.riders.push_back(rider_on(base_mine));
  const auto r2 = a.append(stale);
  require_ok(r2);
  BOOST_TEST(r2->riders_written == std::vector<std::uint8_t>{0});
  const auto events = read_all_of(a, mine);
  BOOST_REQUIRE_EQUAL(events.size(), 2u);
  BOOST_TEST(events[1].event_id != stale.riders[0].events[0].event_id);
  BOOST_TEST(read_all_of(a, stale.stream_id).size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_append_that_names_its_event_is_written_only_where_the_store_vouches) {
  // The event an append names (after_event_id) is never looked up either: store A writes the
  // append on top of an event A wrote, and answers a conflict when B wrote the stream's last
  // event, even the one named, or moved the stream on at the version A knew.
  sp::pg_event_store a(options("test-follow-a"));
  sp::pg_event_store b(options("test-follow-b"));
  const auto behind = [](const sp::append_request& base) {
    auto next = make_request(
        base.stream_id, base.expected_version + static_cast<std::int64_t>(base.events.size()), 1);
    next.after_event_id = base.events.back().event_id;
    return next;
  };
  const auto theirs = make_request(unique_stream("follow-theirs"), 0, 1);
  require_ok(b.append(theirs));
  const auto unknown = a.append(behind(theirs));
  BOOST_REQUIRE(!unknown.has_value());
  BOOST_TEST(unknown.error().code == sp::store_errc::version_conflict);

  const auto mine = make_request(unique_stream("follow-mine"), 0, 1);
  require_ok(a.append(mine));
  require_ok(b.append(make_request(mine.stream_id, 1, 1)));  // A does not know
  const auto moved = a.append(behind(mine));
  BOOST_REQUIRE(!moved.has_value());
  BOOST_TEST(moved.error().code == sp::store_errc::version_conflict);

  const auto own = make_request(unique_stream("follow-own"), 0, 1);
  require_ok(a.append(own));
  require_ok(a.append(behind(own)));
  BOOST_TEST(read_all_of(a, theirs.stream_id).size() == 1u);
  BOOST_TEST(read_all_of(a, mine.stream_id).size() == 2u);
  BOOST_TEST(read_all_of(a, own.stream_id).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_stream_written_to_lately_is_not_forgotten_when_the_memory_is_full) {
  // Many other streams pass through the store between two appends to a hot one; the hot one's
  // appends that name the event they follow are still vouched for.
  auto o = options("test-follow-hot");
  o.known_versions_capacity = 4;
  sp::pg_event_store store(o);
  auto last = make_request(unique_stream("hot"), 0, 1);
  require_ok(store.append(last));
  for (int i = 0; i < 10; ++i) {
    require_ok(store.append(make_request(unique_stream("cold"), 0, 1)));
    auto next = make_request(last.stream_id, i + 1, 1);
    next.after_event_id = last.events.back().event_id;
    require_ok(store.append(next));
    last = next;
  }
  BOOST_TEST(read_all_of(store, last.stream_id).size() == 11u);
}

BOOST_AUTO_TEST_CASE(last_position_matches_the_stored_rows) {
  sp::pg_event_store store(options("test-positions"));
  std::vector<sp::append_request> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(make_request(unique_stream("pos"), 0, i + 1));
  const auto s = unique_stream("pos-twice");
  batch.push_back(make_request(s, 0, 2));
  batch.push_back(make_request(s, 2, 3));  // second round of the same transaction
  const auto results = store.append_batch(batch);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    require_ok(results[i]);
    const auto events = read_all_of(store, batch[i].stream_id);
    BOOST_REQUIRE(!events.empty());
    // The request's last event is the stream's event at the returned version.
    const auto it = std::find_if(events.begin(), events.end(), [&](const sp::recorded_event& e) {
      return e.version == results[i]->version;
    });
    BOOST_REQUIRE(it != events.end());
    BOOST_TEST(it->position == results[i]->last_position);
    BOOST_TEST(it->event_id == batch[i].events.back().event_id);
  }
}

BOOST_AUTO_TEST_CASE(a_lost_connection_is_retryable_and_the_next_call_reconnects) {
  sp::pg_event_store store(options("test-lost-idle"));
  const auto pid = store.backend_pid();
  BOOST_REQUIRE(pid.has_value());
  BOOST_TEST(store.connections_opened() == 1u);
  terminate_backend(*pid);

  const auto stream = unique_stream("lost-idle");
  const auto request = make_request(stream, 0, 2);
  const auto failed = store.append(request);
  BOOST_REQUIRE(!failed.has_value());
  BOOST_TEST(failed.error().code == sp::store_errc::retryable);

  const auto retried = store.append(request);
  require_ok(retried);
  BOOST_TEST(!retried->duplicate);  // nothing was written by the failed attempt
  BOOST_TEST(retried->version == 2);
  BOOST_TEST(store.connections_opened() == 2u);
  const auto new_pid = store.backend_pid();
  BOOST_REQUIRE(new_pid.has_value());
  BOOST_TEST(*new_pid != *pid);
  BOOST_TEST(read_all_of(store, stream).size() == 2u);
}

BOOST_AUTO_TEST_CASE(connection_lost_inside_the_transaction_writes_nothing) {
  int pid = 0;
  auto o = options("test-lost-in-tx");
  bool kill = true;
  o.before_commit = [&] {
    if (kill) terminate_backend(pid);
  };
  sp::pg_event_store store(o);
  const auto got = store.backend_pid();
  BOOST_REQUIRE(got.has_value());
  pid = *got;

  const auto a = unique_stream("lost-tx-a");
  const auto b = unique_stream("lost-tx-b");
  const std::vector<sp::append_request> batch = {make_request(a, 0, 2), make_request(b, 0, 3)};
  const auto failed = store.append_batch(batch);
  BOOST_REQUIRE_EQUAL(failed.size(), 2u);
  for (const auto& r : failed) {
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == sp::store_errc::retryable);
  }
  sp::pg_event_store observer(options("test-lost-observer"));
  BOOST_TEST(read_all_of(observer, a).empty());
  BOOST_TEST(read_all_of(observer, b).empty());

  kill = false;
  const auto retried = store.append_batch(batch);
  require_ok(retried[0]);
  require_ok(retried[1]);
  BOOST_TEST(!retried[0]->duplicate);
  BOOST_TEST(read_all_of(observer, a).size() == 2u);
  BOOST_TEST(read_all_of(observer, b).size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_request_the_database_rejects_fails_alone) {
  // A constraint only the database knows about makes journal_append fail for the whole batch;
  // the store then isolates the offending request.
  scratch_schema schema;
  const auto added = sp::run_sql(database_url(), "ALTER TABLE " + schema.name +
                                                     ".events ADD CONSTRAINT test_no_poison "
                                                     "CHECK (payload->>'poison' IS NULL)");
  if (!added) BOOST_FAIL("adding the constraint failed: " + added.error().message);
  auto o = options("test-fallback");
  o.schema = schema.name;
  sp::pg_event_store store(o);
  auto poison = make_request("poisoned", 0, 1);
  poison.events[0].payload = R"({"poison":true})";
  const auto results =
      store.append_batch({make_request("good-1", 0, 2), poison, make_request("good-2", 0, 1)});
  require_ok(results[0]);
  BOOST_REQUIRE(!results[1].has_value());
  BOOST_TEST(results[1].error().code == sp::store_errc::invalid_request);
  require_ok(results[2]);
  BOOST_TEST(read_all_of(store, "good-1").size() == 2u);
  BOOST_TEST(read_all_of(store, "poisoned").empty());
  BOOST_TEST(read_all_of(store, "good-2").size() == 1u);

  // A rider the database rejects: its host is written without it.
  const auto base = make_request("owner", 0, 1);
  require_ok(store.append(base));
  auto host = make_request("host", 0, 1);
  auto rider = make_request("owner", 1, 1);
  rider.after_event_id = base.events[0].event_id;
  rider.events[0].payload = R"({"poison":true})";
  host.riders.push_back(rider);
  const auto alone = store.append(host);
  require_ok(alone);
  BOOST_TEST(alone->riders_written == std::vector<std::uint8_t>{0});
  BOOST_TEST(read_all_of(store, "host").size() == 1u);
  BOOST_TEST(read_all_of(store, "owner").size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_database_without_the_journal_is_an_internal_error) {
  auto o = options("test-no-journal");
  o.schema = "test_no_journal_" + run_tag();  // never migrated
  sp::pg_event_store store(o);
  const auto r = store.append(make_request(unique_stream("nowhere"), 0, 1));
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().code == sp::store_errc::internal);
  BOOST_TEST(r.error().message.find("journal_check") != std::string::npos, r.error().message);
}

BOOST_AUTO_TEST_CASE(an_unreachable_database_is_retryable) {
  sp::pg_store_options o;
  o.database_url = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2";
  sp::pg_event_store store(o);
  const auto r = store.append(make_request(unique_stream("unreachable"), 0, 1));
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().code == sp::store_errc::retryable);
  const auto read = store.read_all(0, 10);
  BOOST_REQUIRE(!read.has_value());
  BOOST_TEST(read.error().code == sp::store_errc::retryable);
}

BOOST_AUTO_TEST_SUITE_END()

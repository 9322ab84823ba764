// The migrator: applies pending files once, atomically, serialized across processes; refuses
// edited or unknown applied migrations. Each test works in its own throwaway schema.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "persistence/pg_admin.hpp"
#include "tests/persistence/support.hpp"

namespace sp = saga::persistence;
using namespace saga::persistence::test;

namespace {

struct throwaway_schema {
  std::string name;
  explicit throwaway_schema(const std::string& what) {
    static std::atomic<int> counter{0};
    name = "test_mig_" + what + "_" + run_tag() + "_" + std::to_string(counter.fetch_add(1));
  }
  ~throwaway_schema() {
    (void)sp::run_sql(database_url(), "DROP SCHEMA IF EXISTS " + name + " CASCADE");
  }
  sp::migration_options options() const { return sp::migration_options{name}; }
};

std::vector<std::string> applied_versions(const throwaway_schema& schema) {
  const auto rows = sp::run_sql(
      database_url(), "SELECT name FROM " + schema.name + ".schema_migrations ORDER BY version");
  if (!rows) BOOST_FAIL("reading schema_migrations failed: " + rows.error().message);
  std::vector<std::string> names;
  for (const auto& row : *rows) names.push_back(row[0]);
  return names;
}

bool table_exists(const throwaway_schema& schema, const std::string& table) {
  const auto rows =
      sp::run_sql(database_url(), "SELECT to_regclass('" + schema.name + "." + table + "')");
  if (!rows) BOOST_FAIL("to_regclass failed: " + rows.error().message);
  return !(*rows)[0][0].empty();
}

using names = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_SUITE(migrations)

BOOST_AUTO_TEST_CASE(embedded_files_are_numbered_and_sorted) {
  const auto& files = sp::embedded_migrations();
  BOOST_REQUIRE(files.size() >= 2u);
  BOOST_TEST(files[0].name == "0001_journal.sql");
  for (std::size_t i = 1; i < files.size(); ++i) BOOST_TEST((files[i - 1].name < files[i].name));
  for (const auto& f : files) BOOST_TEST(!f.sql.empty());
}

BOOST_AUTO_TEST_CASE(apply_records_each_file_and_a_second_apply_is_a_no_op) {
  throwaway_schema schema("noop");
  const std::vector<sp::migration_file> files = {{"0001_a.sql", "CREATE TABLE a (x int);"},
                                                 {"0002_b.sql", "CREATE TABLE b (y int);"}};
  const auto first = sp::apply_migrations(database_url(), files, schema.options());
  if (!first) BOOST_FAIL(first.error().message);
  BOOST_TEST(*first == (names{"0001_a.sql", "0002_b.sql"}));
  BOOST_TEST(table_exists(schema, "a"));
  BOOST_TEST(table_exists(schema, "b"));

  const auto second = sp::apply_migrations(database_url(), files, schema.options());
  if (!second) BOOST_FAIL(second.error().message);
  BOOST_TEST(second->empty());

  auto more = files;
  more.push_back({"0003_c.sql", "CREATE TABLE c (z int);"});
  const auto third = sp::apply_migrations(database_url(), more, schema.options());
  if (!third) BOOST_FAIL(third.error().message);
  BOOST_TEST(*third == (names{"0003_c.sql"}));
  BOOST_TEST(applied_versions(schema) == (names{"0001_a.sql", "0002_b.sql", "0003_c.sql"}));
}

BOOST_AUTO_TEST_CASE(an_edited_applied_migration_is_refused) {
  throwaway_schema schema("checksum");
  std::vector<sp::migration_file> files = {{"0001_a.sql", "CREATE TABLE a (x int);"}};
  BOOST_REQUIRE(sp::apply_migrations(database_url(), files, schema.options()).has_value());
  files[0].sql = "CREATE TABLE a (x bigint);";
  files.push_back({"0002_b.sql", "CREATE TABLE b (y int);"});
  const auto r = sp::apply_migrations(database_url(), files, schema.options());
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().code == sp::store_errc::internal);
  BOOST_TEST(r.error().message.find("0001_a.sql") != std::string::npos);
  BOOST_TEST(r.error().message.find("checksum") != std::string::npos);
  BOOST_TEST(!table_exists(schema, "b"));  // nothing else applied either
  BOOST_TEST(applied_versions(schema) == (names{"0001_a.sql"}));
}

BOOST_AUTO_TEST_CASE(unknown_or_out_of_order_migrations_are_refused) {
  throwaway_schema schema("unknown");
  const std::vector<sp::migration_file> files = {{"0001_a.sql", "CREATE TABLE a (x int);"},
                                                 {"0002_b.sql", "CREATE TABLE b (y int);"}};
  BOOST_REQUIRE(sp::apply_migrations(database_url(), files, schema.options()).has_value());
  // An older binary that lacks 0002.
  const auto older = sp::apply_migrations(database_url(), {files[0]}, schema.options());
  BOOST_REQUIRE(!older.has_value());
  BOOST_TEST(older.error().message.find("0002_b.sql") != std::string::npos);
  // A new file numbered below an applied one.
  auto late = files;
  late.insert(late.begin(), {"0000_early.sql", "CREATE TABLE early (x int);"});
  const auto r = sp::apply_migrations(database_url(), late, schema.options());
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().message.find("0000_early.sql") != std::string::npos);
  BOOST_TEST(!table_exists(schema, "early"));
}

BOOST_AUTO_TEST_CASE(bad_file_names_are_rejected_before_connecting) {
  for (const auto& bad : {"1_a.sql", "0001-a.sql", "0001_a.txt", "0001_A.sql", "abcd_a.sql"}) {
    const auto r = sp::apply_migrations("postgresql://nowhere.invalid/x",
                                        std::vector<sp::migration_file>{{bad, "SELECT 1;"}});
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == sp::store_errc::invalid_request, bad);
  }
  const auto dup = sp::apply_migrations(
      "postgresql://nowhere.invalid/x",
      std::vector<sp::migration_file>{{"0001_a.sql", "SELECT 1;"}, {"0001_b.sql", "SELECT 1;"}});
  BOOST_REQUIRE(!dup.has_value());
  BOOST_TEST(dup.error().code == sp::store_errc::invalid_request);
}

BOOST_AUTO_TEST_CASE(a_failing_migration_applies_nothing) {
  throwaway_schema schema("atomic");
  const std::vector<sp::migration_file> files = {{"0001_a.sql", "CREATE TABLE a (x int);"},
                                                 {"0002_bad.sql", "CREATE TABLE oops (;"}};
  const auto r = sp::apply_migrations(database_url(), files, schema.options());
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().message.find("0002_bad.sql") != std::string::npos);
  BOOST_TEST(!table_exists(schema, "a"));  // the whole run rolled back
  const auto fixed = sp::apply_migrations(database_url(), {files[0]}, schema.options());
  if (!fixed) BOOST_FAIL(fixed.error().message);
  BOOST_TEST(*fixed == (names{"0001_a.sql"}));
}

BOOST_AUTO_TEST_CASE(concurrent_start_ups_apply_each_migration_once) {
  throwaway_schema schema("race");
  constexpr int processes = 4;
  std::vector<saga::expected<std::vector<std::string>, sp::store_error>> results(
      processes, saga::unexpected{sp::store_error{sp::store_errc::internal, "not run", -1}});
  const auto url = database_url();
  std::vector<std::thread> threads;
  for (int i = 0; i < processes; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] = sp::apply_migrations(url, schema.options());
    });
  }
  for (auto& t : threads) t.join();
  int appliers = 0;
  for (const auto& r : results) {
    if (!r) BOOST_FAIL("a concurrent apply failed: " + r.error().message);
    if (!r->empty()) {
      ++appliers;
      BOOST_TEST(r->size() == sp::embedded_migrations().size());
    }
  }
  BOOST_TEST(appliers == 1);

  // The journal works in that schema (journal_append resolves its tables there too).
  sp::pg_store_options o;
  o.database_url = url;
  o.schema = schema.name;
  sp::pg_event_store store(o);
  const auto appended = store.append(make_request("in-schema", 0, 2));
  if (!appended) BOOST_FAIL(appended.error().message);
  BOOST_TEST(appended->version == 2);
  BOOST_TEST(read_all_of(store, "in-schema").size() == 2u);
  const auto count = sp::run_sql(url, "SELECT count(*) FROM " + schema.name + ".events");
  BOOST_REQUIRE(count.has_value());
  BOOST_TEST((*count)[0][0] == "2");
}

BOOST_AUTO_TEST_CASE(the_correlation_column_is_backfilled_on_upgrade) {
  // A journal written before 0006 gets events.correlation_id from its metadata, and traces read
  // it through the new index.
  throwaway_schema schema("corr");
  std::vector<sp::migration_file> before;
  for (const auto& f : sp::embedded_migrations()) {
    if (f.name < "0006") before.push_back(f);
  }
  BOOST_REQUIRE(!before.empty());
  BOOST_REQUIRE(sp::apply_migrations(database_url(), before, schema.options()).has_value());
  const auto inserted = sp::run_sql(
      database_url(),
      "SET search_path TO " + schema.name +
          "; INSERT INTO events (stream_id, stream_type, version, event_id, event_type, "
          "schema_version, payload, metadata) VALUES "
          "('s', 't', 1, '" +
          sp::new_uuid() +
          "', 'E', 1, '{}', '{\"correlation_id\": \"c-1\", \"node_id\": \"n\"}'), "
          "('s', 't', 2, '" +
          sp::new_uuid() +
          "', 'E', 1, '{}', '{\"node_id\": \"n\"}'), "
          "('s', 't', 3, '" +
          sp::new_uuid() + "', 'E', 1, '{}', '{\"correlation_id\": \"c-1\"}')");
  if (!inserted) BOOST_FAIL("inserting old events failed: " + inserted.error().message);
  const auto upgraded = sp::apply_migrations(database_url(), schema.options());
  if (!upgraded) BOOST_FAIL("upgrading failed: " + upgraded.error().message);
  BOOST_TEST(upgraded->size() == sp::embedded_migrations().size() - before.size());
  const auto rows = sp::run_sql(database_url(),
                                "SELECT version, coalesce(correlation_id, '<null>')"
                                " FROM " +
                                    schema.name + ".events ORDER BY version");
  BOOST_REQUIRE(rows.has_value());
  BOOST_REQUIRE_EQUAL(rows->size(), 3u);
  BOOST_TEST((*rows)[0][1] == "c-1");
  BOOST_TEST((*rows)[1][1] == "<null>");
  BOOST_TEST((*rows)[2][1] == "c-1");
  // The expression index of 0004 is gone; the column's index replaces it.
  BOOST_TEST(!table_exists(schema, "events_correlation_id_idx"));
  BOOST_TEST(table_exists(schema, "events_correlation_idx"));
  // New appends fill the column and follow the old events.
  sp::pg_store_options o;
  o.database_url = database_url();
  o.schema = schema.name;
  sp::pg_event_store store(o);
  auto request = make_request("s", 3, 1);
  request.events[0].metadata.correlation_id = "c-1";
  const auto appended = store.append(request);
  if (!appended) BOOST_FAIL(appended.error().message);
  const auto trace = sp::run_sql(database_url(),
                                 "SELECT string_agg(version::text, ',' ORDER BY "
                                 "position) FROM " +
                                     schema.name + ".events WHERE correlation_id = 'c-1'");
  BOOST_REQUIRE(trace.has_value());
  BOOST_TEST((*trace)[0][0] == "1,3,4");
}

BOOST_AUTO_TEST_SUITE_END()

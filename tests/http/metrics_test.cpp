// Prometheus registry specs: exact text of a small registry, label escaping, cumulative
// histogram buckets, the HTTP request metrics and exact sums under concurrent updates.
#include <boost/test/unit_test.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http/metrics.hpp"

namespace h = saga::http;

namespace {

const std::string http_families =
    "# HELP saga_http_request_duration_seconds HTTP request latency in seconds, by route pattern "
    "and method\n"
    "# TYPE saga_http_request_duration_seconds histogram\n"
    "# HELP saga_http_requests_total HTTP requests served, by route pattern, method and status\n"
    "# TYPE saga_http_requests_total counter\n";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(exact_text_of_a_small_registry) {
  h::metrics_registry reg;
  reg.add_counter("jobs_total", "Jobs done", {{"kind", "b"}}, 1.5);
  reg.add_counter("jobs_total", "Jobs done", {{"kind", "a"}}, 2);
  reg.set_gauge("queue_depth", "Queued items", {}, 7);
  const std::vector<double> buckets{0.1, 0.5, 1};
  reg.observe("job_seconds", "Job latency", {{"kind", "a"}}, 0.25, buckets);
  reg.observe("job_seconds", "Job latency", {{"kind", "a"}}, 0.0625, buckets);
  reg.observe("job_seconds", "Job latency", {{"kind", "a"}}, 2, buckets);
  reg.observe("job_seconds", "Job latency", {{"kind", "a"}}, 0.5, buckets);  // le is inclusive
  const std::string expected =
      "# HELP job_seconds Job latency\n"
      "# TYPE job_seconds histogram\n"
      "job_seconds_bucket{kind=\"a\",le=\"0.1\"} 1\n"
      "job_seconds_bucket{kind=\"a\",le=\"0.5\"} 3\n"
      "job_seconds_bucket{kind=\"a\",le=\"1\"} 3\n"
      "job_seconds_bucket{kind=\"a\",le=\"+Inf\"} 4\n"
      "job_seconds_sum{kind=\"a\"} 2.8125\n"
      "job_seconds_count{kind=\"a\"} 4\n"
      "# HELP jobs_total Jobs done\n"
      "# TYPE jobs_total counter\n"
      "jobs_total{kind=\"a\"} 2\n"
      "jobs_total{kind=\"b\"} 1.5\n"
      "# HELP queue_depth Queued items\n"
      "# TYPE queue_depth gauge\n"
      "queue_depth 7\n" +
      http_families;
  BOOST_TEST(reg.render() == expected);
}

BOOST_AUTO_TEST_CASE(values_are_written_in_full) {
  h::metrics_registry reg;
  reg.set_gauge("big", "B", {}, 123456789012);
  reg.set_gauge("small", "S", {}, 0.0025);
  reg.set_gauge("neg", "N", {}, -10);
  reg.set_gauge("third", "T", {}, 1.0 / 3);
  const std::string text = reg.render();
  BOOST_TEST(contains(text, "big 123456789012\n"));
  BOOST_TEST(contains(text, "small 0.0025\n"));
  BOOST_TEST(contains(text, "neg -10\n"));
  BOOST_TEST(contains(text, "third 0.3333333333333333\n"));
}

BOOST_AUTO_TEST_CASE(help_and_type_appear_once_per_family) {
  h::metrics_registry reg;
  for (int i = 0; i < 5; ++i)
    reg.set_gauge("actors_active", "Active actors", {{"type", "t" + std::to_string(i)}}, i);
  const std::string text = reg.render();
  std::size_t helps = 0, pos = 0;
  while ((pos = text.find("# HELP actors_active ", pos)) != std::string::npos) ++helps, ++pos;
  BOOST_TEST(helps == 1u);
  BOOST_TEST(contains(text, "actors_active{type=\"t4\"} 4\n"));
}

BOOST_AUTO_TEST_CASE(label_values_and_help_are_escaped) {
  BOOST_TEST(h::escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  h::metrics_registry reg;
  reg.set_gauge("odd", "help with \\ and\nnewline", {{"path", "C:\\dir \"x\"\nnext"}}, 1);
  const std::string text = reg.render();
  BOOST_TEST(contains(text, "# HELP odd help with \\\\ and\\nnewline\n"));
  BOOST_TEST(contains(text, "odd{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_and_end_with_inf) {
  h::metrics_registry reg;
  const std::vector<double> buckets{1, 2, 3};
  for (double v : {0.5, 1.5, 1.75, 2.5, 2.625, 2.75, 9.0})
    reg.observe("lat", "Latency", {}, v, buckets);
  const std::string text = reg.render();
  BOOST_TEST(contains(text, "lat_bucket{le=\"1\"} 1\n"));
  BOOST_TEST(contains(text, "lat_bucket{le=\"2\"} 3\n"));
  BOOST_TEST(contains(text, "lat_bucket{le=\"3\"} 6\n"));
  BOOST_TEST(contains(text, "lat_bucket{le=\"+Inf\"} 7\n"));
  BOOST_TEST(contains(text, "lat_count 7\n"));
  BOOST_TEST(contains(text, "lat_sum 20.625\n"));
}

BOOST_AUTO_TEST_CASE(count_request_feeds_both_http_families) {
  h::metrics_registry reg;
  reg.count_request("/orders/:id", "GET", 404, 0.003);
  reg.count_request("/orders/:id", "GET", 200, 0.0005);
  reg.count_request("/orders/:id", "GET", 200, 20);
  const std::string text = reg.render();
  BOOST_TEST(contains(
      text, "saga_http_requests_total{route=\"/orders/:id\",method=\"GET\",status=\"200\"} 2\n"));
  BOOST_TEST(contains(
      text, "saga_http_requests_total{route=\"/orders/:id\",method=\"GET\",status=\"404\"} 1\n"));
  const std::string series =
      "saga_http_request_duration_seconds_bucket{route=\"/orders/:id\",method=\"GET\",";
  BOOST_TEST(contains(text, series + "le=\"0.001\"} 1\n"));
  BOOST_TEST(contains(text, series + "le=\"0.0025\"} 1\n"));
  BOOST_TEST(contains(text, series + "le=\"0.005\"} 2\n"));
  BOOST_TEST(contains(text, series + "le=\"10\"} 2\n"));
  BOOST_TEST(contains(text, series + "le=\"+Inf\"} 3\n"));
  BOOST_TEST(contains(
      text, "saga_http_request_duration_seconds_count{route=\"/orders/:id\",method=\"GET\"} 3\n"));
  BOOST_TEST(reg.value("saga_http_requests_total",
                       {{"route", "/orders/:id"}, {"method", "GET"}, {"status", "200"}}) == 2);
  BOOST_TEST(h::http_latency_buckets().front() == 0.001);
  BOOST_TEST(h::http_latency_buckets().back() == 10);
}

BOOST_AUTO_TEST_CASE(concurrent_count_request_sums_exactly) {
  h::metrics_registry reg;
  constexpr int threads = 4, per_thread = 20000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&reg, t] {
      for (int i = 0; i < per_thread; ++i) {
        reg.count_request("/orders", "POST", 202, 0.5);
        // Series created while others update: a fresh route per thread every 1000 requests.
        if (i % 1000 == 0)
          reg.count_request("/t" + std::to_string(t) + "/" + std::to_string(i), "GET", 200, 0.25);
        reg.add_counter("work_total", "Work", {{"thread", "any"}}, 1);
      }
    });
  }
  for (auto& w : workers) w.join();
  BOOST_TEST(reg.value("saga_http_requests_total",
                       {{"route", "/orders"}, {"method", "POST"}, {"status", "202"}}) ==
             threads * per_thread);
  BOOST_TEST(reg.value("work_total", {{"thread", "any"}}) == threads * per_thread);
  const std::string text = reg.render();
  BOOST_TEST(contains(
      text, "saga_http_request_duration_seconds_count{route=\"/orders\",method=\"POST\"} " +
                std::to_string(threads * per_thread) + "\n"));
  BOOST_TEST(
      contains(text, "saga_http_request_duration_seconds_sum{route=\"/orders\",method=\"POST\"} " +
                         std::to_string(threads * per_thread / 2) + "\n"));
  BOOST_TEST(contains(
      text, "saga_http_requests_total{route=\"/t3/19000\",method=\"GET\",status=\"200\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(counters_never_go_down) {
  h::metrics_registry reg;
  reg.add_counter("c_total", "C", {}, 3);
  reg.add_counter("c_total", "C", {}, -2);
  BOOST_TEST(reg.value("c_total", {}) == 3);
  reg.set_gauge("g", "G", {}, 3);
  reg.set_gauge("g", "G", {}, -2);
  BOOST_TEST(reg.value("g", {}) == -2);
  BOOST_TEST(reg.value("missing", {}) == 0);
}

BOOST_AUTO_TEST_CASE(misuse_is_a_clear_error) {
  h::metrics_registry reg;
  reg.set_gauge("g", "G", {}, 1);
  BOOST_CHECK_THROW(reg.add_counter("g", "G", {}, 1), std::invalid_argument);
  BOOST_CHECK_THROW(reg.set_gauge("bad-name", "x", {}, 1), std::invalid_argument);
  BOOST_CHECK_THROW(reg.set_gauge("1abc", "x", {}, 1), std::invalid_argument);
  BOOST_CHECK_THROW(reg.set_gauge("ok", "x", {{"bad label", "v"}}, 1), std::invalid_argument);
  BOOST_CHECK_THROW(reg.observe("h", "x", {{"le", "1"}}, 1, {1}), std::invalid_argument);
  BOOST_CHECK_THROW(reg.observe("h2", "x", {}, 1, {2, 1}), std::invalid_argument);
  BOOST_CHECK_THROW(reg.observe("h3", "x", {}, 1, {}), std::invalid_argument);
  // The failed registrations left nothing behind.
  BOOST_TEST(!contains(reg.render(), "h2"));
}

BOOST_AUTO_TEST_SUITE_END()

// Helpers for the process-level tests: a scratch database per test (created on DATABASE_URL's
// server, dropped when the test ends, pass or fail), real saga-node processes started with
// posix_spawn whose stdout/stderr go to files in the build tree, and journal queries.
// Used from the test's main thread only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include "persistence/pg_admin.hpp"

extern char** environ;

namespace saga::integration {

using clock_type = std::chrono::steady_clock;
using persistence::sql_rows;

/// Whether the running test case has failed so far (to decide whether to print log tails).
inline bool current_test_failed() {
  namespace ut = boost::unit_test;
  return !ut::results_collector.results(ut::framework::current_test_case().p_id).passed();
}

/// `url` with its database name replaced by `database`; fails the test for a URL that is not
/// of the postgresql://…/name form.
inline std::string with_database(const std::string& url, const std::string& database) {
  const auto scheme = url.find("://");
  BOOST_REQUIRE_MESSAGE(scheme != std::string::npos,
                        "DATABASE_URL must be a postgresql:// URL, got '" + url + "'");
  const auto query = url.find('?', scheme + 3);
  const auto slash = url.find('/', scheme + 3);
  const auto path_start = slash == std::string::npos || slash > query ? query : slash;
  std::string out = url.substr(0, path_start == std::string::npos ? url.size() : path_start);
  out += "/" + database;
  if (query != std::string::npos) out += url.substr(query);
  return out;
}

/// A database of its own for one test: CREATE DATABASE saga_it_<random> on DATABASE_URL's
/// server; DROP … WITH (FORCE) in the destructor, which also cuts off killed nodes' sessions.
class scratch_database {
 public:
  scratch_database() {
    const char* url = std::getenv("DATABASE_URL");
    BOOST_REQUIRE_MESSAGE(url != nullptr && *url != '\0',
                          "DATABASE_URL is not set: the integration tests need a PostgreSQL "
                          "server (script/test starts a private cluster)");
    server_url_ = url;
    std::random_device rd;
    name_ = "saga_it_" + std::to_string(rd()) + "_" + std::to_string(rd() % 100000);
    auto created = persistence::run_sql(server_url_, "CREATE DATABASE " + name_);
    BOOST_REQUIRE_MESSAGE(created, "CREATE DATABASE " + name_ + " failed: " +
                                       (created ? std::string() : created.error().message));
    url_ = with_database(server_url_, name_);
  }
  ~scratch_database() {
    auto dropped =
        persistence::run_sql(server_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    if (!dropped) {
      std::cerr << "integration: DROP DATABASE " << name_ << " failed: " << dropped.error().message
                << '\n';
    }
  }
  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;

  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] const std::string& name() const { return name_; }

  /// Rows of `sql` run on this database; fails the test on an error.
  [[nodiscard]] sql_rows query(const std::string& sql) const {
    auto rows = persistence::run_sql(url_, sql);
    BOOST_REQUIRE_MESSAGE(
        rows, "query failed: " + (rows ? std::string() : rows.error().message) + "\n  " + sql);
    return *rows;
  }

  /// Waits until no session but the asking one is connected to this database, so that the
  /// transactions of a killed node have committed or rolled back; false after `timeout`.
  bool wait_for_no_other_sessions(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (scalar("SELECT count(*) FROM pg_stat_activity"
                 " WHERE datname = current_database() AND pid <> pg_backend_pid()") == 0) {
        return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// The single integer `sql` yields.
  [[nodiscard]] std::int64_t scalar(const std::string& sql) const {
    const auto rows = query(sql);
    BOOST_REQUIRE_MESSAGE(rows.size() == 1 && rows[0].size() == 1,
                          "expected one value from: " + sql);
    return rows[0][0].empty() ? 0 : std::stoll(rows[0][0]);
  }

 private:
  std::string server_url_;
  std::string name_;
  std::string url_;
};

/// How a process ended.
struct exit_status {
  bool exited = false;  ///< false: killed by `signal`
  int code = -1;
  int signal = 0;

  [[nodiscard]] std::string describe() const {
    return exited ? "exit status " + std::to_string(code)
                  : "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// The last `lines` lines of `text`.
inline std::string tail(const std::string& text, std::size_t lines) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t seen = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
  }
  return text.substr(pos);
}

/// A test-unique prefix for log files: <log dir>/<test case name>-<database>-.
inline std::string log_prefix(const scratch_database& db) {
  const auto test = boost::unit_test::framework::current_test_case().p_name.get();
  return std::string(SAGA_IT_LOG_DIR) + "/" + test + "-" + db.name() + "-";
}

/// One saga-node process. Its stdout and stderr go to <prefix><name>.{stdout,stderr}; on a
/// failed test the destructor prints their tails. A process still running at destruction is
/// killed (SIGKILL) and reaped.
class node_process {
 public:
  /// Starts SAGA_NODE_PATH with `args`, without DATABASE_URL in its environment (tests pass
  /// --database-url explicitly) and with SAGA_HTTP_PORT=0 (no HTTP server, so nodes of
  /// concurrent tests never compete for a port; a test that wants HTTP passes --http-port).
  node_process(std::string name, const std::vector<std::string>& args,
               const std::string& log_prefix)
      : name_(std::move(name)),
        stdout_path_(log_prefix + name_ + ".stdout"),
        stderr_path_(log_prefix + name_ + ".stderr") {
    std::vector<std::string> argv_strings{SAGA_NODE_PATH};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "DATABASE_URL=", 13) != 0 &&
          std::strncmp(*e, "SAGA_HTTP_PORT=", 15) != 0) {
        envp.push_back(*e);
      }
    }
    std::string no_http = "SAGA_HTTP_PORT=0";
    envp.push_back(no_http.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, stdout_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&files, STDERR_FILENO, stderr_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    // Boost.Test installs signal handlers and the child must start with none blocked.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const int rc = posix_spawn(&pid_, argv[0], &files, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&files);
    BOOST_REQUIRE_MESSAGE(rc == 0, "posix_spawn " + argv_strings[0] + ": " + strerror(rc));
    started_ = clock_type::now();
  }

  ~node_process() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (current_test_failed()) print_tails();
  }
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] clock_type::time_point started() const { return started_; }
  [[nodiscard]] std::string out() const { return read_file(stdout_path_); }
  [[nodiscard]] std::string err() const { return read_file(stderr_path_); }

  /// Whether the process has not been reaped yet (reaps it if it has ended).
  bool running() {
    if (status_) return false;
    int status = 0;
    const auto r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) record(status);
    return !status_;
  }

  void signal(int sig) { BOOST_REQUIRE_EQUAL(::kill(pid_, sig), 0); }

  /// Waits up to `timeout` for the process to end; empty if it is still running.
  std::optional<exit_status> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (running()) {
      if (clock_type::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }

  /// Waits until stdout contains `needle`; false when the process ended or `timeout` passed.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      if (out().find(needle) != std::string::npos) return true;
      if (!running() || clock_type::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void print_tails() const {
    std::cerr << "---- " << name_ << " (pid " << pid_ << ") stdout tail, " << stdout_path_
              << " ----\n"
              << tail(out(), 30) << "\n---- " << name_ << " stderr tail, " << stderr_path_
              << " ----\n"
              << tail(err(), 30) << "\n---- end of " << name_ << " ----" << std::endl;
  }

 private:
  void record(int status) {
    exit_status s;
    if (WIFEXITED(status)) {
      s.exited = true;
      s.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      s.signal = WTERMSIG(status);
    }
    status_ = s;
  }

  std::string name_;
  std::string stdout_path_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  clock_type::time_point started_;
  std::optional<exit_status> status_;
};

/// Milliseconds since `t`.
inline long long ms_since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t).count();
}

}  // namespace saga::integration

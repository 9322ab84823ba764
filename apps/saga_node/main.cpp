// saga-node: the server process. Today it prepares the journal (applies the embedded
// migrations) and then runs until SIGTERM/SIGINT; the actor runtime and the HTTP front
// start here as they land.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "persistence/migrations.hpp"

namespace {

constexpr std::string_view usage =
    "usage: saga-node [--database-url URL]\n"
    "\n"
    "  --database-url URL  PostgreSQL connection URL (default: $DATABASE_URL)\n"
    "  -h, --help          show this help\n";

int fail(std::string_view message, int status) {
  std::cerr << "saga-node: " << message << '\n';
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::string database_url;
  if (const char* env = std::getenv("DATABASE_URL")) database_url = env;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--database-url" && i + 1 < argc) {
      database_url = argv[++i];
    } else {
      std::cerr << usage;
      return fail("unknown or incomplete argument '" + std::string(arg) + "'", 2);
    }
  }
  if (database_url.empty()) return fail("no database: set DATABASE_URL or --database-url", 2);

  // Block the stop signals before any thread starts so that sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto applied = saga::persistence::apply_migrations(database_url);
  if (!applied) return fail("migrations failed: " + applied.error().message, 1);
  std::cout << "saga-node: journal ready (" << applied->size() << " migrations applied)"
            << std::endl;
  std::cout << "saga-node: running; stop with SIGTERM or Ctrl-C" << std::endl;

  int received = 0;
  sigwait(&stop_signals, &received);
  std::cout << "saga-node: received " << (received == SIGTERM ? "SIGTERM" : "SIGINT") << ", stopped"
            << std::endl;
  return 0;
}

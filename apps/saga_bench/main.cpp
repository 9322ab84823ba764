// saga-bench: load generator with one subcommand per measured layer. Single-threaded dispatcher;
// each mode owns its threads and connections. Exit codes: 0 ok, 1 run failed, 2 bad arguments.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "apps/saga_bench/modes.hpp"

namespace {

struct mode {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
  void (*usage)(std::ostream& out);
};

const mode modes[] = {
    {"journal", "event journal throughput: one event per transaction, raw COPY, group commit",
     saga::bench::run_journal, saga::bench::journal_usage},
    {"sagas", "order sagas/s and latency through the actor runtime on the real journal",
     saga::bench::run_sagas, saga::bench::sagas_usage},
    {"actors", "activation rate and resident memory per idle aggregate actor",
     saga::bench::run_actors, saga::bench::actors_usage},
    {"recover", "recovery time of a long stream, without and with a snapshot",
     saga::bench::run_recover, saga::bench::recover_usage},
};

void usage(std::ostream& out) {
  out << "usage: saga-bench <mode> [options]\n\nmodes:\n";
  for (const auto& m : modes) out << "  " << m.name << "  " << m.summary << "\n";
  out << "\n`saga-bench <mode> --help` lists a mode's options. The last line of a run's output "
         "is one JSON object with its figures.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  for (const auto& m : modes) {
    if (name != m.name) continue;
    std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& a : args) {
      if (a == "--help" || a == "-h") {
        m.usage(std::cout);
        return 0;
      }
    }
    return m.run(args);
  }
  std::cerr << "saga-bench: unknown mode '" << name << "'\n\n";
  usage(std::cerr);
  return 2;
}

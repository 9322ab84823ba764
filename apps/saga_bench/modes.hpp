// The subcommands of saga-bench, one function pair per mode. Each runs on the calling thread
// and returns the process exit code (0 ok, 1 run failed, 2 bad arguments).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace saga::bench {

/// `saga-bench journal`: events/s of the journal append paths against one database.
int run_journal(const std::vector<std::string>& args);
void journal_usage(std::ostream& out);

}  // namespace saga::bench

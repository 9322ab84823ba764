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
/// The raw batch path of `journal` alone (plain COPY, `streams` events per transaction) in an
/// already migrated schema: events/s. Other modes quote it as the limit measured in their run.
double measure_raw_batch_eps(const std::string& database_url, const std::string& schema,
                             std::size_t events, std::size_t streams);

/// `saga-bench sagas`: OrderProcessing sagas/s and latency through the whole runtime.
int run_sagas(const std::vector<std::string>& args);
void sagas_usage(std::ostream& out);

/// `saga-bench actors`: activation rate and memory per idle aggregate actor.
int run_actors(const std::vector<std::string>& args);
void actors_usage(std::ostream& out);

/// `saga-bench recover`: recovery time of one long stream with and without a snapshot.
int run_recover(const std::vector<std::string>& args);
void recover_usage(std::ostream& out);

}  // namespace saga::bench

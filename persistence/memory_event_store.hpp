// In-memory `event_store` with the same semantics as the PostgreSQL one (positions have no
// gaps here). For actor tests and tools. Thread-safe: every call takes one mutex, so a batch
// is atomic with respect to other callers.
#pragma once

#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "persistence/event_store.hpp"

namespace saga::persistence {

class memory_event_store final : public event_store {
 public:
  std::vector<append_result> append_batch(const std::vector<append_request>& requests) override;
  expected<std::vector<recorded_event>, store_error> read_stream(
      const std::string& stream_id, std::int64_t from_version = 1,
      std::size_t limit = std::numeric_limits<std::size_t>::max()) override;
  expected<std::vector<recorded_event>, store_error> read_all(std::int64_t after_position,
                                                              std::size_t limit) override;
  expected<bool, store_error> save_snapshot(const snapshot& snap) override;
  expected<std::optional<snapshot>, store_error> load_snapshot(
      const std::string& stream_id) override;

 private:
  append_result append_locked(append_request request, std::int64_t now_ms);
  /// One stream's append, validated already.
  append_result write_locked(append_request& request, std::int64_t now_ms);

  std::mutex mutex_;
  std::vector<recorded_event> log_;                                    // index = position - 1
  std::unordered_map<std::string, std::vector<std::size_t>> streams_;  // stream → log indexes
  std::unordered_map<std::string, std::size_t> by_event_id_;           // event id → log index
  std::unordered_map<std::string, snapshot> snapshots_;
};

}  // namespace saga::persistence

#include "persistence/memory_event_store.hpp"

#include <chrono>

namespace saga::persistence {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::vector<append_result> memory_event_store::append_batch(
    const std::vector<append_request>& requests) {
  std::vector<append_result> results;
  results.reserve(requests.size());
  const std::int64_t now = now_ms();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& request : requests) results.push_back(append_locked(request, now));
  return results;
}

// A request and its riders: the riders only when the request is written afresh, each only on
// top of the event it names.
append_result memory_event_store::append_locked(append_request request, std::int64_t now) {
  if (auto error = validate_and_normalize(request)) return unexpected{std::move(*error)};
  auto result = write_locked(request, now);
  if (!result) return result;
  result->riders_written.assign(request.riders.size(), 0);
  if (result->duplicate) return result;
  for (std::size_t k = 0; k < request.riders.size(); ++k) {
    auto& rider = request.riders[k];
    if (!rider.after_event_id.empty()) {
      const auto it = streams_.find(rider.stream_id);
      const auto version = it == streams_.end() ? 0 : static_cast<std::int64_t>(it->second.size());
      if (rider.expected_version < 1 || version != rider.expected_version ||
          log_[it->second.back()].event_id != rider.after_event_id) {
        continue;
      }
    }
    const auto written = write_locked(rider, now);
    if (written) result->riders_written[k] = 1;
  }
  return result;
}

// Mirrors journal_check and journal_append (persistence/migrations) for one request.
append_result memory_event_store::write_locked(append_request& request, std::int64_t now) {
  auto& indexes = streams_[request.stream_id];
  const auto actual = static_cast<std::int64_t>(indexes.size());

  std::size_t seen = 0;
  std::size_t seen_same = 0;
  std::int64_t seen_version = 0;
  std::int64_t seen_position = 0;
  for (const auto& ev : request.events) {
    const auto it = by_event_id_.find(ev.event_id);
    if (it == by_event_id_.end()) continue;
    const auto& stored = log_[it->second];
    ++seen;
    if (stored.stream_id == request.stream_id) ++seen_same;
    seen_version = std::max(seen_version, stored.version);
    seen_position = std::max(seen_position, stored.position);
  }
  const auto n = request.events.size();
  if (seen == n && seen_same == n) return append_ok{seen_version, seen_position, true, {}};
  if (seen_same < seen) {
    return unexpected{store_error{store_errc::invalid_request,
                                  "an event_id is already used by another stream", -1}};
  }
  if (seen > 0 || request.expected_version != actual) {
    return unexpected{store_error{store_errc::version_conflict,
                                  "stream " + request.stream_id + " is at version " +
                                      std::to_string(actual) + ", expected " +
                                      std::to_string(request.expected_version),
                                  actual}};
  }
  if (!request.after_event_id.empty() &&
      (actual < 1 || log_[indexes.back()].event_id != request.after_event_id)) {
    return unexpected{store_error{
        store_errc::version_conflict,
        "stream " + request.stream_id + " does not end with the event the append follows", actual}};
  }
  std::int64_t version = actual;
  for (auto& ev : request.events) {
    recorded_event rec;
    rec.position = static_cast<std::int64_t>(log_.size()) + 1;
    rec.stream_id = request.stream_id;
    rec.stream_type = request.stream_type;
    rec.version = ++version;
    rec.event_id = std::move(ev.event_id);
    rec.event_type = std::move(ev.event_type);
    rec.schema_version = ev.schema_version;
    rec.payload = std::move(ev.payload);
    rec.metadata = std::move(ev.metadata);
    rec.recorded_at_ms = now;
    by_event_id_.emplace(rec.event_id, log_.size());
    indexes.push_back(log_.size());
    log_.push_back(std::move(rec));
  }
  return append_ok{version, static_cast<std::int64_t>(log_.size()), false, {}};
}

expected<std::vector<recorded_event>, store_error> memory_event_store::read_stream(
    const std::string& stream_id, std::int64_t from_version, std::size_t limit) {
  std::vector<recorded_event> out;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = streams_.find(stream_id);
  if (it == streams_.end()) return out;
  const auto start = static_cast<std::size_t>(std::max<std::int64_t>(from_version, 1) - 1);
  for (std::size_t i = start; i < it->second.size() && out.size() < limit; ++i) {
    out.push_back(log_[it->second[i]]);
  }
  return out;
}

expected<std::vector<recorded_event>, store_error> memory_event_store::read_all(
    std::int64_t after_position, std::size_t limit) {
  std::vector<recorded_event> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto i = static_cast<std::size_t>(std::max<std::int64_t>(after_position, 0));
       i < log_.size() && out.size() < limit; ++i) {
    out.push_back(log_[i]);
  }
  return out;
}

expected<bool, store_error> memory_event_store::save_snapshot(const snapshot& snap) {
  if (auto error = validate_snapshot(snap)) return unexpected{std::move(*error)};
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = snapshots_.find(snap.stream_id);
  if (it != snapshots_.end() && it->second.version >= snap.version) return false;
  auto stored = snap;
  stored.taken_at_ms = now_ms();
  snapshots_[snap.stream_id] = std::move(stored);
  return true;
}

expected<std::optional<snapshot>, store_error> memory_event_store::load_snapshot(
    const std::string& stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = snapshots_.find(stream_id);
  if (it == snapshots_.end()) return std::optional<snapshot>{};
  return std::optional<snapshot>{it->second};
}

}  // namespace saga::persistence

// The event journal interface: envelopes, typed errors and the abstract `event_store`
// (LevelDB `Env` style) with a PostgreSQL and an in-memory implementation. Deals in JSON text
// and generic envelopes, never in domain event types. Thread-safety is per implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "domain/expected.hpp"

namespace saga::persistence {

/// Who and what caused an event; stored as the `metadata` JSON object.
struct event_metadata {
  std::string correlation_id;
  std::string causation_id;
  std::string command_id;
  std::string node_id;
  std::string user_id;
};

/// An event to append. `event_id` makes the append idempotent.
struct new_event {
  std::string event_id;  ///< UUID text (any case; stored and returned in lower case)
  std::string event_type;
  int schema_version = 1;
  std::string payload;  ///< a JSON object, as text (see is_storable_json_object)
  event_metadata metadata;
};

/// An event read back from the journal.
struct recorded_event {
  std::int64_t position = 0;  ///< global, commit-ordered; may have gaps, never goes back
  std::string stream_id;
  std::string stream_type;
  std::int64_t version = 0;  ///< 1-based, contiguous within the stream
  std::string event_id;
  std::string event_type;
  int schema_version = 1;
  std::string payload;  ///< equivalent JSON, not byte-identical (PostgreSQL normalizes jsonb)
  event_metadata metadata;
  std::int64_t recorded_at_ms = 0;  ///< wall clock when its transaction began, ms since epoch
};

/// Append `events` to `stream_id` if the stream is at `expected_version` (0 = new stream).
struct append_request {
  std::string stream_id;
  std::string stream_type;
  std::int64_t expected_version = 0;
  std::vector<new_event> events;
  /// The id of the stream's event at `expected_version`: the request is written only on top of
  /// that very event, not merely at that version (an actor's append behind its own append still
  /// in flight: if that one fails, another writer's event at its version must not do instead).
  /// Otherwise version_conflict, also where a store cannot vouch for the event cheaply (the
  /// PostgreSQL store when the stream's last append did not go through it); a rider is then not
  /// written. Empty: no condition.
  std::string after_event_id{};
  /// Riders: appends to other streams that go into the same transaction as this request, and
  /// only if it is written afresh (not a duplicate). Each rider is checked on its own: one that
  /// does not apply (its stream moved on, its `after_event_id` is not the stream's last event)
  /// is simply not written, and this request is written all the same. A store writes a rider
  /// only when it can vouch for its expected version cheaply (the memory store always can, the
  /// PostgreSQL store when the stream's last append went through it); otherwise the rider is
  /// not written. So a caller must treat "not written" as the normal case, never as an error.
  /// Riders have no riders, and their streams differ from this request's.
  std::vector<append_request> riders{};
};

/// A successful append.
struct append_ok {
  std::int64_t version = 0;        ///< stream version after the append
  std::int64_t last_position = 0;  ///< position of the request's last event
  bool duplicate = false;  ///< all event ids were already stored in this stream: an idempotent
                           ///< replay (ids are compared, not contents); nothing was written
  /// Per rider of the request, in order: 1 when its events are in the journal with this
  /// request's (written in the same transaction, or an idempotent replay of such a write).
  std::vector<std::uint8_t> riders_written{};
};

enum class store_errc {
  version_conflict,  ///< the stream is not at expected_version (see actual_version)
  retryable,         ///< transient (connection lost, serialization failure, deadlock, writer
                     ///< stopped); it may or may not have been written: resubmitting the same
                     ///< events is safe because appends are idempotent by event id
  invalid_request,   ///< the request itself is wrong (empty id, non-JSON payload, bad uuid…)
  internal,          ///< a bug or a broken database (schema missing, unexpected SQL error)
};

/// Short stable name of an error code, for logs and metrics labels.
[[nodiscard]] const char* to_string(store_errc code) noexcept;

struct store_error {
  store_errc code = store_errc::internal;
  std::string message;
  std::int64_t actual_version = -1;  ///< the stream's version on version_conflict (-1 if unknown)
};

/// The saved state of a stream at `version`.
struct snapshot {
  std::string stream_id;
  std::string stream_type;
  std::int64_t version = 0;
  int schema_version = 1;
  std::string payload;           ///< a JSON object, as text
  std::int64_t taken_at_ms = 0;  ///< set by the store when saved; ignored on save
};

/// The newest event of one stream (see event_store::stream_heads).
struct stream_head {
  std::string stream_id;
  std::int64_t version = 0;
  std::string event_type;  ///< of the newest event
  std::string payload;     ///< of the newest event (JSON text)
};

/// "Nothing to return" for operations that only succeed or fail.
struct done {};

/// The result of one append.
using append_result = expected<append_ok, store_error>;

/// Limits every store enforces on a request (checked before any I/O).
inline constexpr std::size_t max_riders_per_request = 64;
inline constexpr std::size_t max_stream_id_bytes = 512;
inline constexpr std::size_t max_type_bytes = 128;
inline constexpr std::size_t max_payload_bytes = 1 << 20;
inline constexpr std::size_t max_json_depth = 128;
inline constexpr std::size_t max_events_per_request = 10'000;

/// The journal. Every implementation has the same semantics; the contract tests run on each.
class event_store {
 public:
  virtual ~event_store() = default;

  /// Appends one request atomically; same as a batch of one.
  virtual append_result append(const append_request& request);

  /// Appends many requests in one transaction and answers each on its own: an invalid or
  /// conflicting request fails alone, the others are written; a stream is never half-written.
  /// Requests are applied in order, so a later request for the same stream builds on an
  /// earlier one. An infrastructure failure fails every request with `retryable`.
  virtual std::vector<append_result> append_batch(const std::vector<append_request>& requests) = 0;

  /// append_batch for requests that validate_and_normalize has already passed (the group
  /// commit writer checks each on the submitting thread, off its own). A store may skip its
  /// checks; the default does not.
  virtual std::vector<append_result> append_checked_batch(
      const std::vector<append_request>& requests) {
    return append_batch(requests);
  }

  /// The events of a stream with version >= from_version, ordered by version.
  virtual expected<std::vector<recorded_event>, store_error> read_stream(
      const std::string& stream_id, std::int64_t from_version = 1,
      std::size_t limit = std::numeric_limits<std::size_t>::max()) = 0;

  /// Events with position > after_position, ordered by position, at most `limit`.
  virtual expected<std::vector<recorded_event>, store_error> read_all(std::int64_t after_position,
                                                                      std::size_t limit) = 0;

  /// Stores `snap` unless a snapshot of the same or a newer version is already stored;
  /// returns whether it was stored.
  virtual expected<bool, store_error> save_snapshot(const snapshot& snap) = 0;

  /// The latest snapshot of a stream, if any.
  virtual expected<std::optional<snapshot>, store_error> load_snapshot(
      const std::string& stream_id) = 0;

  /// The newest event of every stream of `stream_type` whose newest event's type is one of
  /// `last_event_types` (all streams when empty), ordered by stream id. Start-up recovery uses
  /// it to find unfinished work. The default scans the whole journal with read_all; stores
  /// override it with something faster.
  virtual expected<std::vector<stream_head>, store_error> stream_heads(
      const std::string& stream_type, const std::vector<std::string>& last_event_types);
};

/// A new version 7 UUID (RFC 9562: Unix milliseconds, then random bits) in canonical lower-case
/// text form. Ids made later sort later, so the indexes they key grow at their right edge.
[[nodiscard]] std::string new_uuid();

/// Checks a request against the store contract (before any I/O); returns why it is invalid.
/// Event ids may be in any case; a store lower-cases them with normalize_event_ids.
[[nodiscard]] std::optional<store_error> validate_append(const append_request& request);

/// Lower-cases the event ids (the riders' and after_event_id too); returns whether any changed.
bool normalize_event_ids(append_request& request);

/// validate_append, then normalize_event_ids when valid.
[[nodiscard]] std::optional<store_error> validate_and_normalize(append_request& request);

/// Checks a snapshot before saving (non-empty ids, version >= 1, JSON object payload).
[[nodiscard]] std::optional<store_error> validate_snapshot(const snapshot& snap);

/// Whether `text` is one JSON object every store can hold: RFC 8259 syntax, valid UTF-8, no
/// \u0000 (jsonb cannot store it), nesting <= max_json_depth, numbers below 1e309 in size.
[[nodiscard]] bool is_storable_json_object(const std::string& text);

/// Appends `value` as a JSON string literal (quotes, backslashes and control characters
/// escaped; the rest as is). For valid UTF-8 without NUL, as validate_append requires.
void append_json_string(std::string& out, const std::string& value);

/// Renders metadata as the JSON object stored in the `metadata` column (empty fields left out).
[[nodiscard]] std::string metadata_to_json(const event_metadata& metadata);

/// Parses the stored metadata JSON object back; unknown keys are ignored.
[[nodiscard]] event_metadata metadata_from_json(const std::string& json);

}  // namespace saga::persistence

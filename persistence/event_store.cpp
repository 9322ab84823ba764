#include "persistence/event_store.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

namespace saga::persistence {

namespace {

store_error invalid(std::string message) {
  return store_error{store_errc::invalid_request, std::move(message), -1};
}

// Length of the valid UTF-8 sequence starting at p (a byte >= 0x80), or 0 if it is invalid:
// truncated, overlong, a surrogate or past U+10FFFF.
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = *p;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1Fu;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0Fu;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[k] & 0x3Fu);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    return 0;
  }
  return len;
}

// PostgreSQL text cannot hold NUL and the database encoding is UTF-8: reject both up front so
// that a bad request fails alone instead of failing the statement that carries a whole batch.
bool valid_utf8_text(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (*p == 0) return false;
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const auto len = utf8_sequence(p, end);
    if (len == 0) return false;
    p += len;
  }
  return true;
}

std::optional<store_error> check_text(const std::string& value, const char* what,
                                      std::size_t max_bytes, bool required) {
  if (required && value.empty()) return invalid(std::string(what) + " is empty");
  if (value.size() > max_bytes) {
    return invalid(std::string(what) + " is longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (!valid_utf8_text(value)) {
    return invalid(std::string(what) + " is not valid UTF-8 text (or contains NUL)");
  }
  return std::nullopt;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Canonical 8-4-4-4-12 form in any case; the 16 bytes go to `out`.
bool parse_uuid(const std::string& id, std::array<unsigned char, 16>& out) {
  if (id.size() != 36) return false;
  std::size_t byte = 0;
  for (std::size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return false;
      ++i;
      continue;
    }
    const int hi = hex_value(id[i]);
    const int lo = hex_value(id[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[byte++] = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// A strict RFC 8259 validator that builds nothing (several times faster than a DOM or SAX
// parse, and this runs for every event of every batch). Also enforces what jsonb can store.
class json_scanner {
 public:
  explicit json_scanner(const std::string& text)
      : p_(reinterpret_cast<const unsigned char*>(text.data())), end_(p_ + text.size()) {}

  bool object_document() {
    skip_ws();
    if (p_ == end_ || *p_ != '{') return false;
    if (!value(0)) return false;
    skip_ws();
    return p_ == end_;
  }

 private:
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool literal(const char* word) {
    const std::size_t n = std::strlen(word);
    if (static_cast<std::size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  bool value(std::size_t depth) {
    skip_ws();
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return container(depth, '}', true);
      case '[':
        return container(depth, ']', false);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool container(std::size_t depth, unsigned char close, bool object) {
    if (++depth > max_json_depth) return false;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == close) {
      ++p_;
      return true;
    }
    for (;;) {
      if (object) {
        skip_ws();
        if (p_ == end_ || *p_ != '"' || !string()) return false;
        skip_ws();
        if (p_ == end_ || *p_ != ':') return false;
        ++p_;
      }
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != close) return false;
      ++p_;
      return true;
    }
  }

  bool hex4(std::uint32_t& cp) {
    if (end_ - p_ < 4) return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(static_cast<char>(p_[i]));
      if (h < 0) return false;
      cp = cp * 16 + static_cast<std::uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  bool string() {
    ++p_;  // opening quote
    while (p_ < end_) {
      const unsigned char c = *p_;
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++p_ == end_) return false;
        const unsigned char e = *p_++;
        if (e == 'u') {
          std::uint32_t cp = 0;
          if (!hex4(cp) || cp == 0) return false;  // jsonb cannot store U+0000
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
          }
        } else if (std::strchr("\"\\/bfnrt", e) == nullptr || e == 0) {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++p_;
        continue;
      }
      const auto len = utf8_sequence(p_, end_);
      if (len == 0) return false;
      p_ += len;
    }
    return false;
  }

  bool digits(std::size_t& count) {
    const auto* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    count = static_cast<std::size_t>(p_ - start);
    return count > 0;
  }

  bool number() {
    if (*p_ == '-') ++p_;
    std::size_t int_digits = 0;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
      int_digits = 0;  // a leading zero adds no magnitude
    } else if (!digits(int_digits)) {
      return false;
    }
    std::size_t n = 0;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits(n)) return false;
    }
    long exponent = 0;
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      bool negative = false;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) negative = *p_++ == '-';
      const auto* start = p_;
      if (!digits(n)) return false;
      if (n > 6) return false;  // beyond any sane magnitude (and beyond jsonb numeric)
      for (const auto* d = start; d < p_; ++d) exponent = exponent * 10 + (*d - '0');
      if (negative) exponent = -exponent;
    }
    // Numbers as large as 1e309 overflow a double; no consumer can read them.
    return static_cast<long>(int_digits) + exponent <= 309 && exponent >= -16000;
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

std::optional<store_error> check_json_object(const std::string& payload, const char* what) {
  if (payload.size() > max_payload_bytes) {
    return invalid(std::string(what) + " is larger than " + std::to_string(max_payload_bytes) +
                   " bytes");
  }
  if (!is_storable_json_object(payload)) {
    return invalid(std::string(what) +
                   " is not a storable JSON object (syntax, UTF-8, \\u0000, nesting deeper than " +
                   std::to_string(max_json_depth) + " or a number too large)");
  }
  return std::nullopt;
}

}  // namespace

void append_json_string(std::string& out, const std::string& value) {
  static constexpr char digits[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 0x0F]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

const char* to_string(store_errc code) noexcept {
  switch (code) {
    case store_errc::version_conflict:
      return "version_conflict";
    case store_errc::retryable:
      return "retryable";
    case store_errc::invalid_request:
      return "invalid_request";
    case store_errc::internal:
      return "internal";
  }
  return "unknown";
}

append_result event_store::append(const append_request& request) {
  auto results = append_batch(std::vector<append_request>{request});
  return std::move(results.front());
}

std::string new_uuid() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  // Version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then random bits. Ids made
  // close in time sort close together, so the journal's and the views' b-tree indexes take
  // new keys at their right edge instead of on random pages all over the index.
  const auto ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 6; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  const std::uint64_t r1 = rng();
  const std::uint64_t r2 = rng();
  for (int i = 0; i < 2; ++i)
    b[static_cast<std::size_t>(6 + i)] = static_cast<unsigned char>(r1 >> (8 * i));
  for (int i = 0; i < 8; ++i)
    b[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(r2 >> (8 * i));
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x70);  // version 7
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 9562 variant
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(digits[b[i] >> 4]);
    out.push_back(digits[b[i] & 0x0F]);
  }
  return out;
}

bool is_storable_json_object(const std::string& text) {
  return json_scanner(text).object_document();
}

namespace {

/// Checks one request's own fields; collects its event ids into `ids`.
std::optional<store_error> validate_one(const append_request& request,
                                        std::vector<std::array<unsigned char, 16>>& ids) {
  if (auto e = check_text(request.stream_id, "stream_id", max_stream_id_bytes, true)) return e;
  if (auto e = check_text(request.stream_type, "stream_type", max_type_bytes, true)) return e;
  if (request.expected_version < 0) return invalid("expected_version is negative");
  if (request.events.empty()) return invalid("no events to append");
  if (request.events.size() > max_events_per_request) {
    return invalid("more than " + std::to_string(max_events_per_request) + " events in a request");
  }
  std::array<unsigned char, 16> id{};
  if (!request.after_event_id.empty() && !parse_uuid(request.after_event_id, id))
    return invalid("after_event_id '" + request.after_event_id.substr(0, 64) + "' is not a UUID");
  for (const auto& ev : request.events) {
    if (!parse_uuid(ev.event_id, id)) {
      return invalid("event_id '" + ev.event_id.substr(0, 64) + "' is not a UUID");
    }
    ids.push_back(id);
    if (auto e = check_text(ev.event_type, "event_type", max_type_bytes, true)) return e;
    if (ev.schema_version < 1) return invalid("schema_version must be >= 1");
    if (auto e = check_json_object(ev.payload, "payload")) return e;
    const auto& m = ev.metadata;
    for (const auto* field :
         {&m.correlation_id, &m.causation_id, &m.command_id, &m.node_id, &m.user_id}) {
      if (auto e = check_text(*field, "metadata field", max_stream_id_bytes, false)) return e;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<store_error> validate_append(const append_request& request) {
  std::vector<std::array<unsigned char, 16>> ids;
  ids.reserve(request.events.size());
  if (auto e = validate_one(request, ids)) return e;
  if (request.riders.size() > max_riders_per_request) {
    return invalid("more than " + std::to_string(max_riders_per_request) + " riders in a request");
  }
  for (const auto& rider : request.riders) {
    if (!rider.riders.empty()) return invalid("a rider has riders of its own");
    if (rider.stream_id == request.stream_id)
      return invalid("a rider appends to its host's stream " + request.stream_id);
    if (auto e = validate_one(rider, ids)) return store_error{e->code, "rider: " + e->message, -1};
  }
  if (ids.size() > 1) {
    std::sort(ids.begin(), ids.end());
    if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
      return invalid("an event_id appears twice in one request");
    }
  }
  return std::nullopt;
}

bool normalize_event_ids(append_request& request) {
  bool changed = false;
  const auto lower = [&changed](std::string& id) {
    for (auto& c : id) {
      if (c >= 'A' && c <= 'F') {
        c = static_cast<char>(c - 'A' + 'a');
        changed = true;
      }
    }
  };
  for (auto& ev : request.events) lower(ev.event_id);
  lower(request.after_event_id);
  for (auto& rider : request.riders) changed = normalize_event_ids(rider) || changed;
  return changed;
}

std::optional<store_error> validate_and_normalize(append_request& request) {
  if (auto error = validate_append(request)) return error;
  normalize_event_ids(request);
  return std::nullopt;
}

std::optional<store_error> validate_snapshot(const snapshot& snap) {
  if (auto e = check_text(snap.stream_id, "stream_id", max_stream_id_bytes, true)) return e;
  if (auto e = check_text(snap.stream_type, "stream_type", max_type_bytes, true)) return e;
  if (snap.version < 1) return invalid("snapshot version must be >= 1");
  if (snap.schema_version < 1) return invalid("schema_version must be >= 1");
  return check_json_object(snap.payload, "snapshot payload");
}

std::string metadata_to_json(const event_metadata& metadata) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"correlation_id", &metadata.correlation_id},
      {"causation_id", &metadata.causation_id},
      {"command_id", &metadata.command_id},
      {"node_id", &metadata.node_id},
      {"user_id", &metadata.user_id}};
  std::string out = "{";
  for (const auto& [key, value] : fields) {
    if (value->empty()) continue;
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    out += key;
    out += "\":";
    append_json_string(out, *value);
  }
  out.push_back('}');
  return out;
}

event_metadata metadata_from_json(const std::string& json) {
  event_metadata m;
  const auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return m;
  const std::pair<const char*, std::string*> fields[] = {{"correlation_id", &m.correlation_id},
                                                         {"causation_id", &m.causation_id},
                                                         {"command_id", &m.command_id},
                                                         {"node_id", &m.node_id},
                                                         {"user_id", &m.user_id}};
  for (const auto& [key, target] : fields) {
    const auto it = j.find(key);
    if (it != j.end() && it->is_string()) *target = it->get<std::string>();
  }
  return m;
}

expected<std::vector<stream_head>, store_error> event_store::stream_heads(
    const std::string& stream_type, const std::vector<std::string>& last_event_types) {
  // Positions grow with versions inside a stream, so the last event seen per stream is its head.
  std::map<std::string, stream_head> heads;
  constexpr std::size_t page = 10'000;
  for (std::int64_t after = 0;;) {
    auto events = read_all(after, page);
    if (!events) return unexpected{std::move(events.error())};
    for (auto& e : *events) {
      if (e.stream_type != stream_type) continue;
      auto& head = heads[e.stream_id];
      head.stream_id = e.stream_id;
      head.version = e.version;
      head.event_type = std::move(e.event_type);
      head.payload = std::move(e.payload);
    }
    if (events->size() < page) break;
    after = events->back().position;
  }
  std::vector<stream_head> out;
  for (auto& [id, head] : heads) {
    if (!last_event_types.empty() && std::find(last_event_types.begin(), last_event_types.end(),
                                               head.event_type) == last_event_types.end()) {
      continue;
    }
    out.push_back(std::move(head));
  }
  return out;
}

}  // namespace saga::persistence

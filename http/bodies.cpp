#include "http/bodies.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

namespace saga::http {

namespace {

using json = nlohmann::json;

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
/// Deeper documents are refused before parsing, so neither parsing nor walking can exhaust
/// the stack; no valid body nests more than three levels.
constexpr int max_depth = 32;
/// A body with many bad fields reports this many; the rest is noise.
constexpr std::size_t max_reported_errors = 20;
constexpr std::string_view replacement_char = "\xEF\xBF\xBD";  // U+FFFD

// ---------------------------------------------------------------------------------------------
// Raw text checks: nesting depth and UTF-8, before nlohmann sees the text.

/// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

struct scan_result {
  bool too_deep = false;
  bool invalid_utf8 = false;
  std::string repaired;  ///< the text with each invalid byte replaced by U+FFFD (if invalid_utf8)
};

scan_result scan(std::string_view text) {
  scan_result r;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::size_t n = utf8_sequence_length(text, i);
      if (n == 0) {
        if (!r.invalid_utf8) {
          r.invalid_utf8 = true;
          r.repaired.assign(text.substr(0, i));
        }
        r.repaired.append(replacement_char);
        escaped = false;
        continue;
      }
      if (r.invalid_utf8) r.repaired.append(text.substr(i, n));
      i += n - 1;
      escaped = false;
      continue;
    }
    if (r.invalid_utf8) r.repaired.push_back(c);
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        r.too_deep = true;
        return r;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Field validation: collects every error (up to a bound) so that a client sees them at once.

std::string join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

std::string indexed(const std::string& prefix, std::size_t i) {
  return prefix + "[" + std::to_string(i) + "]";
}

class checker {
 public:
  void fail(std::string field, std::string message) {
    if (errors_.size() < max_reported_errors)
      errors_.emplace_back(std::move(field), std::move(message));
    ++count_;
  }
  [[nodiscard]] bool ok() const noexcept { return count_ == 0; }

  [[nodiscard]] problem to_problem() const {
    problem p = validation_problem(errors_.front().first, errors_.front().second);
    p.errors = errors_;
    if (count_ > 1) p.detail += " (and " + std::to_string(count_ - 1) + " more)";
    return p;
  }

  /// Rejects keys the server owns (clients must not try to set them).
  void server_owned(const json& obj, const std::string& prefix,
                    std::initializer_list<std::string_view> keys) {
    for (auto key : keys)
      if (obj.find(std::string(key)) != obj.end())
        fail(join(prefix, key), "is set by the server and must not be sent");
  }

  /// A required string member; nullopt (with an error) when missing or invalid.
  std::optional<std::string> string_field(const json& obj, std::string_view key,
                                          const std::string& prefix, bool allow_empty = false,
                                          std::size_t max_bytes = max_string_bytes) {
    const auto it = obj.find(std::string(key));
    const std::string field = join(prefix, key);
    if (it == obj.end()) {
      fail(field, "is required");
      return std::nullopt;
    }
    return string_value(*it, field, allow_empty, max_bytes);
  }

  std::optional<std::string> string_value(const json& v, const std::string& field, bool allow_empty,
                                          std::size_t max_bytes) {
    if (!v.is_string()) {
      fail(field, "must be a string");
      return std::nullopt;
    }
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max_bytes) {
      fail(field, "must be at most " + std::to_string(max_bytes) + " bytes");
      return std::nullopt;
    }
    if (!allow_empty && s.find_first_not_of(" \t\r\n") == std::string::npos) {
      fail(field, "must not be empty");
      return std::nullopt;
    }
    return s;
  }

  /// A required integer member within [min, max]; floats, strings and booleans are refused.
  std::optional<std::int64_t> int_field(const json& obj, std::string_view key,
                                        const std::string& prefix, std::int64_t min,
                                        std::int64_t max) {
    const auto it = obj.find(std::string(key));
    const std::string field = join(prefix, key);
    if (it == obj.end()) {
      fail(field, "is required");
      return std::nullopt;
    }
    const json& v = *it;
    const std::string range =
        max == int64_max ? "must be at least " + std::to_string(min)
                         : "must be between " + std::to_string(min) + " and " + std::to_string(max);
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(int64_max)) {
        fail(field, "must fit in a signed 64-bit integer; " + range);
        return std::nullopt;
      }
    } else if (v.is_number_float()) {
      // Integers beyond 64 bits arrive as floats: say that the value is out of range.
      const double d = v.get<double>();
      const bool huge = std::floor(d) == d && std::fabs(d) >= 9.2e18;
      fail(field, huge ? "must fit in a signed 64-bit integer; " + range
                       : std::string("must be an integer (no fraction or exponent)"));
      return std::nullopt;
    } else if (!v.is_number_integer()) {
      fail(field, "must be an integer");
      return std::nullopt;
    }
    const auto n = v.get<std::int64_t>();
    if (n < min || n > max) {
      fail(field, range);
      return std::nullopt;
    }
    return n;
  }

 private:
  std::vector<std::pair<std::string, std::string>> errors_;
  std::size_t count_ = 0;
};

/// Reports every string (member names included) that still holds a U+FFFD put there by scan().
void find_invalid_utf8(const json& v, const std::string& path, checker& c) {
  const auto bad = [](const std::string& s) {
    return s.find(replacement_char) != std::string::npos;
  };
  if (v.is_string()) {
    if (bad(v.get_ref<const std::string&>()))
      c.fail(path.empty() ? "(body)" : path, "must be valid UTF-8");
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (bad(it.key()))
        c.fail(path.empty() ? "(body)" : path, "member names must be valid UTF-8");
      else
        find_invalid_utf8(it.value(), join(path, it.key()), c);
    }
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) find_invalid_utf8(v[i], indexed(path, i), c);
  }
}

/// The 1 KiB limit holds for every string, ignored members included.
void find_long_strings(const json& v, const std::string& path, checker& c) {
  if (v.is_string()) {
    if (v.get_ref<const std::string&>().size() > max_string_bytes)
      c.fail(path, "must be at most " + std::to_string(max_string_bytes) + " bytes");
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key().size() > max_string_bytes)
        c.fail(path.empty() ? "(body)" : path,
               "member names must be at most " + std::to_string(max_string_bytes) + " bytes");
      else
        find_long_strings(it.value(), join(path, it.key()), c);
    }
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) find_long_strings(v[i], indexed(path, i), c);
  }
}

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

/// Parses the raw text into an object or the problem that refuses it (400 or 422).
parsed<json> parse_object(std::string_view text) {
  if (blank(text))
    return unexpected{make_problem(400, "request body is empty; expected a JSON object")};
  scan_result s = scan(text);
  if (s.too_deep)
    return unexpected{make_problem(
        400, "malformed JSON: nested deeper than " + std::to_string(max_depth) + " levels")};
  const std::string_view input = s.invalid_utf8 ? std::string_view(s.repaired) : text;
  json doc;
  try {
    doc = json::parse(input.begin(), input.end());
  } catch (const json::parse_error& e) {
    return unexpected{
        make_problem(400, "malformed JSON at byte " + std::to_string(e.byte) + " of the body")};
  } catch (const json::exception&) {
    return unexpected{make_problem(400, "malformed JSON")};
  }
  if (!doc.is_object()) return unexpected{make_problem(400, "request body must be a JSON object")};
  if (s.invalid_utf8) {
    checker c;
    find_invalid_utf8(doc, "", c);
    if (c.ok()) c.fail("(body)", "must be valid UTF-8");
    return unexpected{c.to_problem()};
  }
  return doc;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > max_id_bytes) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == ':';
  });
}

const std::string id_rule = "must be 1-" + std::to_string(max_id_bytes) +
                            " characters of letters, digits, '-', '_', '.' or ':'";

std::optional<std::string> id_field(checker& c, const json& obj, std::string_view key,
                                    const std::string& prefix) {
  auto s = c.string_field(obj, key, prefix, true);
  if (!s) return std::nullopt;
  if (!valid_id(*s)) {
    c.fail(join(prefix, key), id_rule);
    return std::nullopt;
  }
  return s;
}

bool email_shaped(std::string_view e) {
  if (e.size() > max_email_bytes) return false;
  const auto at = e.find('@');
  if (at == std::string_view::npos || at == 0 || e.find('@', at + 1) != std::string_view::npos)
    return false;
  for (char ch : e)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7F) return false;
  const auto domain = e.substr(at + 1);
  const auto dot = domain.find('.');
  return !domain.empty() && dot != std::string_view::npos && domain.front() != '.' &&
         domain.back() != '.' && domain.find("..") == std::string_view::npos;
}

template <class T>
parsed<T> finish(checker& c, const json& doc, T value) {
  find_long_strings(doc, "", c);  // ignored members too; known ones were checked already
  if (!c.ok()) return unexpected{c.to_problem()};
  return value;
}

void append_field(std::string& out, std::string_view value) {
  out.append(std::to_string(value.size())).push_back(':');
  out.append(value);
  out.push_back(';');
}

}  // namespace

// -----------------------------------------------------------------------------------------------

parsed<order_body> parse_order_body(std::string_view text) {
  auto doc = parse_object(text);
  if (!doc) return unexpected{std::move(doc.error())};
  const json& j = *doc;
  checker c;
  c.server_owned(
      j, "",
      {"status", "total", "customerId", "version", "orderId", "sagaId", "createdAt", "updatedAt"});
  order_body body;
  const auto items = j.find("items");
  if (items == j.end()) {
    c.fail("items", "is required");
  } else if (!items->is_array()) {
    c.fail("items", "must be an array");
  } else if (items->empty()) {
    c.fail("items", "must not be empty");
  } else if (items->size() > saga::domain::max_order_items) {
    c.fail("items", "must have at most " + std::to_string(saga::domain::max_order_items) +
                        " entries, got " + std::to_string(items->size()));
  } else {
    std::set<std::string, std::less<>> seen;
    for (std::size_t i = 0; i < items->size(); ++i) {
      const json& item = (*items)[i];
      const std::string path = indexed("items", i);
      if (!item.is_object()) {
        c.fail(path, "must be an object");
        continue;
      }
      saga::domain::order::line_item line;
      auto product_id = id_field(c, item, "productId", path);
      auto product_name = c.string_field(item, "productName", path);
      auto quantity = c.int_field(item, "quantity", path, 1, saga::domain::max_item_quantity);
      auto price = c.int_field(item, "price", path, 1, int64_max);
      if (product_id && !seen.insert(*product_id).second)
        c.fail(join(path, "productId"),
               "duplicate product '" + *product_id + "'; put its whole quantity in one item");
      if (product_id && product_name && quantity && price)
        body.items.push_back({std::move(*product_id), std::move(*product_name), *quantity, *price});
    }
  }
  if (auto address = c.string_field(j, "shippingAddress", "")) body.shipping_address = *address;
  return finish(c, j, std::move(body));
}

parsed<product_body> parse_product_body(std::string_view text) {
  auto doc = parse_object(text);
  if (!doc) return unexpected{std::move(doc.error())};
  const json& j = *doc;
  checker c;
  c.server_owned(j, "", {"reserved", "version", "createdAt", "updatedAt"});
  product_body body;
  if (auto id = id_field(c, j, "productId", "")) body.product_id = *id;
  if (auto name = c.string_field(j, "name", "")) body.name = *name;
  if (auto price = c.int_field(j, "price", "", 1, int64_max)) body.price = *price;
  if (auto stock = c.int_field(j, "stock", "", 0, max_stock_quantity)) body.stock = *stock;
  return finish(c, j, std::move(body));
}

parsed<restock_body> parse_restock_body(std::string_view text) {
  auto doc = parse_object(text);
  if (!doc) return unexpected{std::move(doc.error())};
  const json& j = *doc;
  checker c;
  restock_body body;
  if (auto q = c.int_field(j, "quantity", "", 1, max_stock_quantity)) body.quantity = *q;
  return finish(c, j, body);
}

parsed<register_body> parse_register_body(std::string_view text) {
  auto doc = parse_object(text);
  if (!doc) return unexpected{std::move(doc.error())};
  const json& j = *doc;
  checker c;
  c.server_owned(j, "", {"role", "userId", "createdAt"});
  register_body body;
  if (auto email = c.string_field(j, "email", "")) {
    if (email_shaped(*email))
      body.email = *email;
    else
      c.fail("email", "must be an email address like name@example.com (at most " +
                          std::to_string(max_email_bytes) + " bytes)");
  }
  if (auto password = c.string_field(j, "password", "", true, max_password_bytes)) {
    if (password->size() < min_password_bytes)
      c.fail("password", "must be at least " + std::to_string(min_password_bytes) + " bytes");
    else
      body.password = *password;
  }
  if (auto name = c.string_field(j, "name", "")) body.name = *name;
  return finish(c, j, std::move(body));
}

parsed<login_body> parse_login_body(std::string_view text) {
  auto doc = parse_object(text);
  if (!doc) return unexpected{std::move(doc.error())};
  const json& j = *doc;
  checker c;
  login_body body;
  if (auto email = c.string_field(j, "email", "")) body.email = *email;
  if (auto password = c.string_field(j, "password", "", false, max_password_bytes))
    body.password = *password;
  return finish(c, j, std::move(body));
}

parsed<reason_body> parse_reason_body(std::string_view text) {
  if (blank(text)) return reason_body{};
  auto doc = parse_object(text);
  if (!doc) return unexpected{std::move(doc.error())};
  const json& j = *doc;
  checker c;
  reason_body body;
  const auto it = j.find("reason");
  if (it != j.end() && !it->is_null()) {
    if (auto reason = c.string_value(*it, "reason", true, max_string_bytes)) body.reason = *reason;
  }
  return finish(c, j, std::move(body));
}

std::string order_fingerprint(const order_body& b) {
  // Items are sorted by product id (unique per body), so their order in the JSON does not matter;
  // every field is length-prefixed, so no two different bodies serialize alike.
  std::vector<const saga::domain::order::line_item*> items;
  items.reserve(b.items.size());
  for (const auto& item : b.items) items.push_back(&item);
  std::sort(items.begin(), items.end(),
            [](const auto* x, const auto* y) { return x->product_id < y->product_id; });
  std::string canonical = "order-body-v1;";
  append_field(canonical, std::to_string(items.size()));
  for (const auto* item : items) {
    append_field(canonical, item->product_id);
    append_field(canonical, item->product_name);
    append_field(canonical, std::to_string(item->quantity));
    append_field(canonical, std::to_string(item->unit_price));
  }
  append_field(canonical, b.shipping_address);

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("order_fingerprint: SHA-256 digest failed in OpenSSL");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0x0F]);
  }
  return out;
}

}  // namespace saga::http

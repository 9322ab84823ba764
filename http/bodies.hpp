// Request bodies of the HTTP front: strict parsing and validation into plain structs, with
// messages naming the offending field ("items[2].quantity: must be between 1 and 1000").
// Pure functions; any thread. Malformed JSON or a non-object → 400; every other rule → 422.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/expected.hpp"
#include "domain/order.hpp"
#include "http/problem.hpp"

namespace saga::http {

template <class T>
using parsed = saga::expected<T, problem>;

/// Longest accepted string value, in bytes.
inline constexpr std::size_t max_string_bytes = 1024;
/// Password length bounds, in bytes.
inline constexpr std::size_t min_password_bytes = 8;
inline constexpr std::size_t max_password_bytes = 1024;
/// Longest accepted email address (RFC 5321 path limit), in bytes.
inline constexpr std::size_t max_email_bytes = 254;
/// Product ids appear in paths (/products/{id}): 1..128 of [A-Za-z0-9._:-].
inline constexpr std::size_t max_id_bytes = 128;
/// Largest initial stock or restock, the same bound the inventory aggregate enforces.
inline constexpr std::int64_t max_stock_quantity = 1'000'000'000;

/// POST /orders: {items: [{productId, productName, quantity, price}], shippingAddress}.
/// items: 1..100 objects, productId unique in the body (duplicates → 422, not merged) and
/// 1..128 of [A-Za-z0-9._:-]; productName non-empty; quantity an integer 1..1000; price an
/// integer >= 1 within int64 (floats, strings, booleans refused). shippingAddress non-empty.
/// status, total, customerId, version, orderId, sagaId, createdAt, updatedAt → 422.
struct order_body {
  std::vector<saga::domain::order::line_item> items;
  std::string shipping_address;
};
[[nodiscard]] parsed<order_body> parse_order_body(std::string_view json);

/// POST /products: {productId, name, price, stock}: id as for order items, name non-empty,
/// price >= 1, stock 0..max_stock_quantity; reserved, version, createdAt, updatedAt → 422.
struct product_body {
  std::string product_id, name;
  std::int64_t price = 0, stock = 0;
};
[[nodiscard]] parsed<product_body> parse_product_body(std::string_view json);

/// POST /products/{id}/restock: {quantity}: an integer 1..max_stock_quantity.
struct restock_body {
  std::int64_t quantity = 0;
};
[[nodiscard]] parsed<restock_body> parse_restock_body(std::string_view json);

/// POST /auth/register: {email, password, name}; email shape checked (one '@', a dotted domain,
/// no spaces, <= 254 bytes), password 8..1024 bytes, name non-empty; role, userId, createdAt →
/// 422 (nobody registers themselves as admin).
struct register_body {
  std::string email, password, name;
};
[[nodiscard]] parsed<register_body> parse_register_body(std::string_view json);

/// POST /auth/login: {email, password}: both non-empty strings (the shape is not checked, a
/// wrong address is just bad credentials).
struct login_body {
  std::string email, password;
};
[[nodiscard]] parsed<login_body> parse_login_body(std::string_view json);

/// Optional body of DELETE /orders/{id} and POST /saga/compensate/{sagaId}: {reason}.
struct reason_body {
  std::string reason;
};
/// Empty (or whitespace-only) input → reason "".
[[nodiscard]] parsed<reason_body> parse_reason_body(std::string_view json);

/// Canonical fingerprint of an order body (for Idempotency-Key: same key + different body →
/// 422): 64 lower-case hex digits of SHA-256 over a canonical serialization; equal bodies,
/// however the JSON was spelled (member order, whitespace, escapes, item order), give the same
/// fingerprint. Throws std::runtime_error only if OpenSSL cannot compute SHA-256.
[[nodiscard]] std::string order_fingerprint(const order_body& b);

}  // namespace saga::http

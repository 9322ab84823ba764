// Small value types shared by all aggregates. Pure; no clock: time arrives in commands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace saga::domain {

/// Milliseconds since the Unix epoch (UTC). Supplied by the caller, never read here.
using timestamp = std::int64_t;

/// Limits every aggregate enforces (the HTTP layer mirrors them for early 4xx).
inline constexpr std::int64_t max_item_quantity = 1000;
inline constexpr std::size_t max_order_items = 100;
inline constexpr std::size_t max_text_bytes = 1024;

/// How many idempotency keys an order, payment or inventory aggregate remembers (newest win).
///
/// Window: a saga re-sends a step for at most ~27 s (compensation: 5 attempts x 5 s timeout +
/// ~1.8 s backoff; forward: 3 x 5 s + ~0.4 s), and a product spends one key per order (two
/// when it is compensated). 1024 keys cover that horizon for a product seeing up to ~38
/// keys/s, i.e. 19-38 orders/s, 1-2% of the 2,000 sagas/s a node is built for. A product in
/// every order at full rate gets a window of only ~0.25-0.5 s: no affordable memory covers
/// minutes there (2,000 orders/s x 60 s = 120k keys, ~40 MB of snapshot), so the aggregates'
/// business state is what keeps a late retry harmless (see inventory::reserve / release,
/// payment and order status) and the window only makes recent retries answer exactly. Only
/// a restock relies on the window alone: nothing in the state tells two deliveries apart.
///
/// Size: measured 328 bytes per key in a snapshot with UUID ids, product-qualified saga keys
/// and saga-style reasons (tests/domain/idempotency_test.cpp), so a full memory is ~330 KB:
/// a third of the 1 MiB snapshot limit, leaving the rest to business state. (Each text field
/// may hold max_text_bytes, so hostile lengths could reach ~4 KiB per key; ids are generated
/// by the server.) Payments and orders record at most a handful of keys and never fill it.
inline constexpr std::size_t max_remembered_keys = 1024;

}  // namespace saga::domain

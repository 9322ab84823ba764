// Orders: placement (rate limits, catalog price check, Idempotency-Key → deterministic order id),
// the order aggregate's state, the caller's orders from the read model, cancel and confirm.
#include <cstdio>
#include <mutex>
#include <optional>
#include <vector>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "http/bodies.hpp"
#include "http/server_internal.hpp"

namespace saga::http::detail {

namespace ord = domain::order;
namespace inv = domain::inventory;

namespace {

/// A UUID-shaped id derived from (user, Idempotency-Key): SHA-256, name-based layout (v5 bits).
std::string order_id_for(const std::string& user_id, const std::string& key) {
  const std::string input = "saga-order\n" + user_id + "\n" + key;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha256(), nullptr) != 1 ||
      size < 16)
    throw std::runtime_error("SHA-256 failed");
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(
      out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
      digest[8], digest[9], digest[10], digest[11], digest[12], digest[13], digest[14], digest[15]);
  return out;
}

/// Why an Idempotency-Key is refused (1-255 visible ASCII characters), or "".
std::string key_problem(const std::string& key) {
  if (key.empty() || key.size() > 255) return "Idempotency-Key must have 1 to 255 characters";
  for (const char c : key)
    if (c < 0x21 || c > 0x7e) return "Idempotency-Key must be visible ASCII characters";
  return {};
}

/// Reads the order aggregate and calls `next` with its state when the caller may see it; answers
/// 404 for a missing order or one of another customer.
void with_own_order(const exchange_ptr& ex, const std::string& id,
                    std::function<void(const ord::state&)> next) {
  ex->core->runtime.order_state(
      id, [ex, id, next = std::move(next)](actors::state_reply<ord::state> r) {
        if (!r.ok) {
          ex->reply_problem(state_problem(r));
          return;
        }
        if (r.state.status_ == ord::status::none ||
            (!ex->is_admin() && r.state.customer_id != ex->user_id())) {
          ex->reply_problem(404, "no order " + id);
          return;
        }
        if (ex->live()) next(r.state);
      });
}

/// The catalog entries of an order's products (nullopt: not registered), from the cache or
/// from the products' actors, then the check of every item against them (registered, same
/// unit price).
struct catalog_check {
  std::mutex mutex;
  std::size_t remaining = 0;
  std::map<std::string, std::optional<catalog_cache::product>> products;
  std::optional<actors::state_reply<inv::state>> failure;  // a lookup that failed
};

void place(const exchange_ptr& ex, order_body body, std::string key);

void check_items_then_place(const exchange_ptr& ex, const std::shared_ptr<order_body>& body,
                            const std::shared_ptr<catalog_check>& check, std::string key) {
  if (check->failure) {
    ex->reply_problem(state_problem(*check->failure));
    return;
  }
  problem bad = make_problem(422, "");
  for (std::size_t i = 0; i < body->items.size(); ++i) {
    const auto& item = body->items[i];
    const auto& product = check->products.at(item.product_id);
    const std::string at = "items[" + std::to_string(i) + "]";
    if (!product)
      bad.errors.emplace_back(at + ".productId", "unknown product '" + item.product_id + "'");
    else if (product->price != item.unit_price)
      bad.errors.emplace_back(at + ".price",
                              "must equal the catalog price " + std::to_string(product->price));
  }
  if (!bad.errors.empty()) {
    bad.detail = bad.errors.front().first + ": " + bad.errors.front().second;
    ex->reply_problem(bad);
    return;
  }
  place(ex, std::move(*body), std::move(key));
}

void place_order(const exchange_ptr& ex) {
  auto& core = *ex->core;
  if (auto wait = core.orders_by_user.acquire(ex->user_id())) {
    ex->reply_problem(429, "too many orders from this user",
                      {{"Retry-After", std::to_string(std::max<std::int64_t>(1, wait->count()))}});
    return;
  }
  if (auto wait = core.orders_by_address.acquire(ex->client_address())) {
    ex->reply_problem(429, "too many orders from this address",
                      {{"Retry-After", std::to_string(std::max<std::int64_t>(1, wait->count()))}});
    return;
  }
  std::string key;
  if (auto given = ex->header("Idempotency-Key")) {
    if (auto bad = key_problem(*given); !bad.empty()) {
      ex->reply_problem(400, bad);
      return;
    }
    key = std::move(*given);
  }
  auto parsed_body = parse_order_body(ex->body());
  if (!parsed_body) {
    ex->reply_problem(parsed_body.error());
    return;
  }
  auto body = std::make_shared<order_body>(std::move(parsed_body.value()));
  auto check = std::make_shared<catalog_check>();
  std::vector<std::string> to_ask;
  for (const auto& item : body->items) {
    if (check->products.count(item.product_id) != 0) continue;
    auto cached = core.catalog.find(item.product_id);
    if (!cached) to_ask.push_back(item.product_id);
    check->products.emplace(item.product_id, std::move(cached));
  }
  if (check->products.empty()) {
    ex->reply_problem(validation_problem("items", "must not be empty"));
    return;
  }
  if (to_ask.empty()) {
    check_items_then_place(ex, body, check, std::move(key));
    return;
  }
  check->remaining = to_ask.size();
  for (const auto& id : to_ask) {
    core.runtime.inventory_state(id, [ex, body, check, key, id](actors::state_reply<inv::state> r) {
      {
        std::lock_guard<std::mutex> lock(check->mutex);
        if (!r.ok) {
          if (!check->failure) check->failure = std::move(r);
        } else if (r.state.registered) {
          catalog_cache::product p{r.state.name, r.state.price};
          ex->core->catalog.remember(id, p);
          check->products[id] = std::move(p);
        }
        if (--check->remaining != 0) return;
      }
      if (!ex->live()) return;
      check_items_then_place(ex, body, check, key);
    });
  }
}

void place(const exchange_ptr& ex, order_body body, std::string key) {
  actors::order_request request;
  request.customer_id = ex->user_id();
  request.correlation_id = ex->correlation_id;
  if (!key.empty()) {
    request.order_id = order_id_for(ex->user_id(), key);
    request.idempotency_key = "http/" + ex->user_id() + "/" + key + "/" + order_fingerprint(body);
  }
  request.items = std::move(body.items);
  request.shipping_address = std::move(body.shipping_address);
  const bool keyed = !key.empty();
  ex->core->runtime.place_order(std::move(request), [ex, keyed](actors::placed_order placed) {
    if (!placed.ok()) {
      if (placed.kind == actors::reply_kind::rejected &&
          ((keyed && placed.rejection == domain::rejection_code::already_exists) ||
           placed.rejection == domain::rejection_code::idempotency_mismatch)) {
        ex->reply_problem(422,
                          "this Idempotency-Key was already used with a different request body");
        return;
      }
      if (placed.kind == actors::reply_kind::rejected)
        ex->reply_problem(problem_for(placed.rejection, placed.message));
      else
        ex->reply_problem(failure_problem(placed.failure, placed.message));
      return;
    }
    if (!placed.saga_started)
      spdlog::warn("http: order {} placed without its saga (correlation_id={}): {}",
                   placed.order_id, ex->correlation_id, placed.message);
    ex->reply_json(202,
                   {{"orderId", placed.order_id},
                    {"correlationId", placed.correlation_id},
                    {"sagaId", placed.saga_id},
                    {"status", "PENDING"}},
                   {{"Location", "/orders/" + placed.order_id}});
  });
}

void get_order(const exchange_ptr& ex) {
  with_own_order(ex, ex->params.at(0),
                 [ex](const ord::state& s) { ex->reply_json(200, order_json(s)); });
}

void list_orders(const exchange_ptr& ex) {
  auto p = page_of(*ex, 50);
  if (!p) {
    ex->reply_problem(p.error());
    return;
  }
  std::string customer = ex->user_id();
  if (auto other = ex->query_param("customerId"); other && ex->is_admin()) customer = *other;
  ex->core->reads.orders_by_customer(
      customer, p->limit, p->offset,
      [ex](actors::query_result<std::vector<persistence::order_view>> r) {
        if (!r) {
          ex->reply_problem(problem_of(r.error()));
          return;
        }
        json out = json::array();
        for (const auto& v : r.value()) out.push_back(order_json(v));
        ex->reply_json(200, out);
      });
}

void cancel_order(const exchange_ptr& ex) {
  auto reason = parse_reason_body(ex->body());
  if (!reason) {
    ex->reply_problem(reason.error());
    return;
  }
  const std::string id = ex->params.at(0);
  std::string why = reason->reason.empty() ? "cancelled by the customer" : reason->reason;
  with_own_order(ex, id, [ex, id, why](const ord::state&) {
    ex->core->runtime.cancel_order(id, why, [ex](actors::order_saga_outcome r) {
      if (!r.ok()) {
        ex->reply_problem(problem_of(r));
        return;
      }
      // With a saga the cancellation completes when its compensation has run.
      ex->reply_json(202, {{"orderId", r.order_id},
                           {"sagaId", r.saga_id},
                           {"status", r.saga_id.empty() ? "CANCELLED" : "CANCELLING"},
                           {"message", r.kind == actors::reply_kind::replayed
                                           ? "the cancellation was already requested"
                                           : "cancellation accepted"}});
    });
  });
}

void confirm_order(const exchange_ptr& ex) {
  const std::string id = ex->params.at(0);
  ex->core->runtime.confirm_order(id, [ex, id](actors::command_reply<ord::event> r) {
    if (!r.ok()) {
      ex->reply_problem(problem_of(r));
      return;
    }
    ex->reply_json(
        200, {{"orderId", id},
              {"status", "CONFIRMED"},
              {"message", r.kind == actors::reply_kind::replayed ? "the order was already confirmed"
                                                                 : "the order was confirmed"}});
  });
}

}  // namespace

void add_order_handlers(handler_table& table) {
  table[{"POST", "/orders"}] = place_order;
  table[{"GET", "/orders"}] = list_orders;
  table[{"GET", "/orders/{id}"}] = get_order;
  table[{"DELETE", "/orders/{id}"}] = cancel_order;
  table[{"PUT", "/orders/{id}/confirm"}] = confirm_order;
}

}  // namespace saga::http::detail

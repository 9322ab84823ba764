// Products: the catalog list from the read model, one product from its inventory aggregate
// (strongly consistent), registration and restock as inventory commands (admin).
#include "http/bodies.hpp"
#include "http/server_internal.hpp"
#include "persistence/event_store.hpp"

namespace saga::http::detail {

namespace inv = domain::inventory;

namespace {

/// The aggregate's state as the answer, or 404 when the product was never registered.
void reply_product(const exchange_ptr& ex, const std::string& id, int status) {
  ex->core->runtime.inventory_state(id, [ex, id, status](actors::state_reply<inv::state> r) {
    if (!r.ok) {
      ex->reply_problem(state_problem(r));
      return;
    }
    if (!r.state.registered) {
      ex->reply_problem(404, "no product " + id);
      return;
    }
    ex->reply_json(status, product_json(r.state));
  });
}

/// The Idempotency-Key header scoped to the caller, or `fallback`.
std::string command_key(const exchange& ex, const std::string& fallback) {
  if (auto key = ex.header("Idempotency-Key"); key && !key->empty() && key->size() <= 255)
    return "http/" + ex.user_id() + "/" + *key;
  return fallback;
}

void list_products(const exchange_ptr& ex) {
  auto p = page_of(*ex, 100);
  if (!p) {
    ex->reply_problem(p.error());
    return;
  }
  ex->core->reads.products(p->limit, p->offset,
                           [ex](actors::query_result<std::vector<persistence::inventory_view>> r) {
                             if (!r) {
                               ex->reply_problem(problem_of(r.error()));
                               return;
                             }
                             json out = json::array();
                             for (const auto& v : r.value()) out.push_back(product_json(v));
                             ex->reply_json(200, out);
                           });
}

void get_product(const exchange_ptr& ex) { reply_product(ex, ex->params.at(0), 200); }

void register_product(const exchange_ptr& ex) {
  auto body = parse_product_body(ex->body());
  if (!body) {
    ex->reply_problem(body.error());
    return;
  }
  auto b = std::move(body.value());
  const std::string id = b.product_id;
  inv::register_product cmd{b.product_id,        b.name, b.price, b.stock, ex->core->runtime.now(),
                            command_key(*ex, "")};
  auto meta = ex->meta(cmd.idempotency_key);
  ex->core->runtime.send(id, inv::command{std::move(cmd)}, std::move(meta),
                         [ex, id](actors::command_reply<inv::event> r) {
                           if (!r.ok()) {
                             ex->reply_problem(problem_of(r));
                             return;
                           }
                           if (!ex->live()) return;
                           reply_product(ex, id, 201);
                         });
}

void restock(const exchange_ptr& ex) {
  auto body = parse_restock_body(ex->body());
  if (!body) {
    ex->reply_problem(body.error());
    return;
  }
  const std::string id = ex->params.at(0);
  // A restock is only idempotent by its key: a fresh one per request unless the client gave one.
  inv::restock cmd{body->quantity, ex->core->runtime.now(),
                   command_key(*ex, "http/restock/" + persistence::new_uuid())};
  auto meta = ex->meta(cmd.idempotency_key);
  ex->core->runtime.send(id, inv::command{std::move(cmd)}, std::move(meta),
                         [ex, id](actors::command_reply<inv::event> r) {
                           if (r.kind == actors::reply_kind::rejected &&
                               r.rejection == domain::rejection_code::unknown_product) {
                             ex->reply_problem(404, "no product " + id);
                             return;
                           }
                           if (!r.ok()) {
                             ex->reply_problem(problem_of(r));
                             return;
                           }
                           if (!ex->live()) return;
                           reply_product(ex, id, 200);
                         });
}

}  // namespace

void add_product_handlers(handler_table& table) {
  table[{"GET", "/products"}] = list_products;
  table[{"GET", "/products/{id}"}] = get_product;
  table[{"POST", "/products"}] = register_product;
  table[{"POST", "/products/{id}/restock"}] = restock;
}

}  // namespace saga::http::detail

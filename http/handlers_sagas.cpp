// Sagas: status by correlation id (read model; customers see only their own), the active list,
// and the operator's retry and compensate (runtime commands to the saga actor).
#include <algorithm>

#include "actors/aggregate_traits.hpp"
#include "actors/saga_traits.hpp"
#include "http/bodies.hpp"
#include "http/server_internal.hpp"

namespace saga::http::detail {

namespace sg = domain::sagas;

namespace {

/// Answers with `view`: admins always, customers only for their own order (ownership lives on
/// the order: its aggregate knows the customer).
void reply_saga_view(const exchange_ptr& ex, const std::string& cid, persistence::saga_view view) {
  if (ex->is_admin()) {
    ex->reply_json(200, saga_json(view));
    return;
  }
  const std::string order_id = view.order_id;
  ex->core->runtime.order_state(
      order_id, [ex, cid, view = std::move(view)](actors::state_reply<domain::order::state> o) {
        if (!o.ok) {
          ex->reply_problem(state_problem(o));
          return;
        }
        if (o.state.customer_id != ex->user_id()) {
          ex->reply_problem(404, "no saga with correlation id " + cid);
          return;
        }
        ex->reply_json(200, saga_json(view));
      });
}

/// The view lags the journal (projection_batch_interval_ms and the batch itself): a saga that
/// started just now, e.g. by the POST /orders that returned this correlation id, may not be in
/// it yet. Its SagaStarted is in the journal, though; the saga's actor has the live state.
void saga_status_from_journal(const exchange_ptr& ex, const std::string& cid) {
  ex->core->reads.events_by_correlation(
      cid, 20, [ex, cid](actors::query_result<std::vector<persistence::recorded_event>> r) {
        if (!r) {
          ex->reply_problem(problem_of(r.error()));
          return;
        }
        // Saga streams are "saga-<saga id>" (stream_id_of).
        const auto prefix = actors::stream_id_of(actors::saga_traits::stream_type, "");
        const auto started =
            std::find_if(r->begin(), r->end(), [&prefix](const persistence::recorded_event& e) {
              return e.stream_type == actors::saga_traits::stream_type &&
                     e.stream_id.size() > prefix.size() && e.stream_id.rfind(prefix, 0) == 0;
            });
        if (started == r->end()) {
          ex->reply_problem(404, "no saga with correlation id " + cid);
          return;
        }
        ex->core->runtime.saga_state(
            started->stream_id.substr(prefix.size()),
            [ex, cid](actors::state_reply<domain::sagas::state> s) {
              if (!s.ok) {
                ex->reply_problem(state_problem(s));
                return;
              }
              if (s.state.status_ == sg::status::none || s.state.correlation_id != cid) {
                ex->reply_problem(404, "no saga with correlation id " + cid);
                return;
              }
              reply_saga_view(ex, cid, persistence::saga_view_of(s.state));
            });
      });
}

void saga_status(const exchange_ptr& ex) {
  const std::string cid = ex->params.at(0);
  ex->core->reads.saga_by_correlation(
      cid, [ex, cid](actors::query_result<std::optional<persistence::saga_view>> r) {
        if (!r) {
          ex->reply_problem(problem_of(r.error()));
          return;
        }
        if (!r.value()) {
          saga_status_from_journal(ex, cid);
          return;
        }
        reply_saga_view(ex, cid, std::move(*r.value()));
      });
}

/// GET /saga/active and GET /trace/active-flows (the seed's name for the same list).
void active_sagas(const exchange_ptr& ex) {
  auto p = page_of(*ex, 100);
  if (!p) {
    ex->reply_problem(p.error());
    return;
  }
  ex->core->reads.active_sagas(p->limit, p->offset,
                               [ex](actors::query_result<std::vector<persistence::saga_view>> r) {
                                 if (!r) {
                                   ex->reply_problem(problem_of(r.error()));
                                   return;
                                 }
                                 json out = json::array();
                                 for (const auto& v : r.value()) out.push_back(saga_json(v));
                                 ex->reply_json(200, out);
                               });
}

/// The outcome of an operator command: the saga's state afterwards.
void reply_saga_operation(const exchange_ptr& ex, const std::string& saga_id,
                          const actors::command_reply<sg::event>& r, const char* done_text) {
  if (!r.ok()) {
    ex->reply_problem(problem_of(r));
    return;
  }
  const std::string message =
      r.kind == actors::reply_kind::replayed ? "nothing to do: already requested" : done_text;
  ex->core->runtime.saga_state(saga_id, [ex, saga_id, message](actors::state_reply<sg::state> s) {
    json out = {{"sagaId", saga_id}, {"message", message}};
    if (s.ok) {
      out["orderId"] = s.state.input.order_id;
      out["status"] = std::string(sg::to_string(s.state.status_));
    }
    ex->reply_json(200, out);
  });
}

/// 404 for a saga that does not exist (the saga actor would treat the id as a fresh stream).
void with_saga(const exchange_ptr& ex, const std::string& saga_id, std::function<void()> next) {
  ex->core->runtime.saga_state(
      saga_id, [ex, saga_id, next = std::move(next)](actors::state_reply<sg::state> s) {
        if (!s.ok) {
          ex->reply_problem(state_problem(s));
          return;
        }
        if (s.state.status_ == sg::status::none) {
          ex->reply_problem(404, "no saga " + saga_id);
          return;
        }
        if (ex->live()) next();
      });
}

void retry_saga(const exchange_ptr& ex) {
  const std::string id = ex->params.at(0);
  with_saga(ex, id, [ex, id] {
    ex->core->runtime.retry_saga(id, [ex, id](actors::command_reply<sg::event> r) {
      reply_saga_operation(ex, id, r, "the saga's compensation was resumed");
    });
  });
}

void compensate_saga(const exchange_ptr& ex) {
  auto reason = parse_reason_body(ex->body());
  if (!reason) {
    ex->reply_problem(reason.error());
    return;
  }
  const std::string id = ex->params.at(0);
  std::string why = reason->reason.empty() ? "compensated by an operator" : reason->reason;
  with_saga(ex, id, [ex, id, why] {
    ex->core->runtime.compensate_saga(id, why, [ex, id](actors::command_reply<sg::event> r) {
      reply_saga_operation(ex, id, r, "compensation started");
    });
  });
}

}  // namespace

void add_saga_handlers(handler_table& table) {
  table[{"GET", "/saga/status/{correlationId}"}] = saga_status;
  table[{"GET", "/saga/active"}] = active_sagas;
  table[{"GET", "/trace/active-flows"}] = active_sagas;
  table[{"POST", "/saga/retry/{sagaId}"}] = retry_saga;
  table[{"POST", "/saga/compensate/{sagaId}"}] = compensate_saga;
}

}  // namespace saga::http::detail

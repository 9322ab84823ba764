// The payment gateway actor. Detached, so the gateway's blocking calls (latency, ledger I/O) run
// on its own thread. Requests are parked with a response promise; a flush message sent to itself
// behind them (or a full batch) hands everything parked so far to the gateway in one call, so
// requests that queue up while a batch runs share the next one.
#include "actors/gateway_actor.hpp"

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/gateway_inspect.hpp"
#include "actors/log.hpp"

namespace saga::actors {
namespace {

using flush_atom = caf::atom_constant<caf::atom("gw_flush")>;

using result_promise = caf::typed_response_promise<persistence::gateway_result>;

struct parked_call {
  persistence::gateway_request request;
  result_promise promise;
};

struct gateway_state {
  gateway_factory make_gateway;
  std::size_t max_batch = 1;
  std::unique_ptr<persistence::payment_gateway> gateway;  // made on first use, on this thread
  std::vector<parked_call> parked;
  bool flush_queued = false;
  bool factory_failing = false;  // logged once per outage, not per batch
  static inline const char* name = "payment_gateway";
};

using gateway_self = caf::stateful_actor<gateway_state>;

persistence::gateway_result failure(std::string error) {
  persistence::gateway_result r;
  r.ok = false;
  r.error = std::move(error);
  return r;
}

/// What the exception being handled says.
std::string current_exception_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

void fail_all(std::vector<parked_call>& calls, const std::string& error) {
  for (auto& c : calls) c.promise.deliver(failure(error));
  calls.clear();
}

void flush(gateway_self* self) {
  auto& st = self->state;
  if (st.parked.empty()) return;
  std::vector<parked_call> batch;
  batch.swap(st.parked);
  if (!st.gateway) {
    try {
      st.gateway = st.make_gateway();
      if (!st.gateway) throw std::runtime_error("the gateway factory returned no gateway");
    } catch (...) {
      const auto why = current_exception_text();
      if (!st.factory_failing) detail::log().warn("payment gateway unavailable: {}", why);
      st.factory_failing = true;
      fail_all(batch, "payment gateway unavailable: " + why);  // tried again next batch
      return;
    }
    if (st.factory_failing) detail::log().info("payment gateway available again");
    st.factory_failing = false;
  }
  std::vector<persistence::gateway_request> requests;
  requests.reserve(batch.size());
  for (auto& c : batch) requests.push_back(std::move(c.request));
  std::vector<persistence::gateway_result> results;
  try {
    results = st.gateway->execute(requests);
  } catch (...) {
    // Adapters answer failures as values; an exception is a bug. The gateway may be broken: the
    // factory makes a fresh one next time.
    const auto why = current_exception_text();
    detail::log().error("payment gateway threw on a batch of {}: {}", batch.size(), why);
    st.gateway.reset();
    fail_all(batch, "payment gateway failed: " + why);
    return;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].promise.deliver(i < results.size() ? std::move(results[i])
                                                : failure("payment gateway gave no answer"));
  }
}

caf::behavior gateway_behavior(gateway_self* self, gateway_factory make_gateway,
                               gateway_actor_options options) {
  self->state.make_gateway = std::move(make_gateway);
  self->state.max_batch = options.max_batch == 0 ? 1 : options.max_batch;
  // Parked requests would otherwise die unanswered with the actor.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (!msg.reason) return;  // like CAF's default handler: a normal exit of a link is ignored
    fail_all(self->state.parked, "payment gateway stopped");
    self->quit(msg.reason);
  });
  return {
      [self](persistence::gateway_request& request) -> caf::result<persistence::gateway_result> {
        auto& st = self->state;
        auto promise = self->make_response_promise<persistence::gateway_result>();
        st.parked.push_back(parked_call{std::move(request), promise});
        if (st.parked.size() >= st.max_batch) {
          flush(self);
        } else if (!st.flush_queued) {
          st.flush_queued = true;
          self->send(self, flush_atom::value);
        }
        return promise;
      },
      [self](flush_atom) {
        self->state.flush_queued = false;
        flush(self);
      },
  };
}

}  // namespace

gateway_actor spawn_gateway(caf::actor_system& system, gateway_factory make_gateway,
                            gateway_actor_options options) {
  auto handle = system.spawn<caf::detached>(gateway_behavior, std::move(make_gateway), options);
  return caf::actor_cast<gateway_actor>(handle);
}

void add_gateway_message_types(caf::actor_system_config& config) {
  config.add_message_type<persistence::gateway_request>("saga_gateway_request");
  config.add_message_type<persistence::gateway_result>("saga_gateway_result");
}

}  // namespace saga::actors

// "Charged but never told": the gateway records a charge whose answer never reaches the payment
// actor (lost, too late, or still in flight when the saga compensates). The compensating refund
// voids the charge by its key, so the ledger nets to zero for the order and the journal matches
// the ledger. Runs on the in-memory journal and ledger; test threads only.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/actors/support.hpp"

using namespace saga::actors;
using namespace saga::actors::test;
namespace ord = saga::domain::order;
namespace pay = saga::domain::payment;

namespace {

/// Fault switches of a lossy_gateway.
struct loss_control {
  /// Charges reach the ledger, but their answers are replaced by a transient failure.
  std::atomic<bool> lose_charge_answers{false};
  /// Charges are held back (answered as a transient failure, not executed) until the test
  /// delivers them with deliver_parked(): a charge still travelling to the gateway.
  std::atomic<bool> park_charges{false};
  std::atomic<int> lost{0};
  std::atomic<int> voids{0};
  std::mutex mutex;
  std::vector<sp::gateway_request> parked;
};

/// The simulated gateway behind answer-losing switches (runs on the gateway actor's thread).
class lossy_gateway final : public sp::payment_gateway {
 public:
  lossy_gateway(std::unique_ptr<sp::payment_gateway> inner, std::shared_ptr<loss_control> control)
      : inner_(std::move(inner)), control_(std::move(control)) {}

  std::vector<sp::gateway_result> execute(const std::vector<sp::gateway_request>& r) override {
    std::vector<sp::gateway_result> out(r.size());
    std::vector<sp::gateway_request> passed;
    std::vector<std::size_t> owners;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const bool charge = r[i].operation == sp::gateway_operation::charge;
      if (r[i].operation == sp::gateway_operation::void_charge) ++control_->voids;
      if (charge && control_->park_charges.load()) {
        std::lock_guard<std::mutex> lock(control_->mutex);
        control_->parked.push_back(r[i]);
        out[i].error = "charge still in flight (injected)";
        continue;
      }
      passed.push_back(r[i]);
      owners.push_back(i);
    }
    auto results = inner_->execute(passed);
    for (std::size_t k = 0; k < owners.size() && k < results.size(); ++k) {
      auto& result = out[owners[k]];
      result = std::move(results[k]);
      const bool charge = passed[k].operation == sp::gateway_operation::charge;
      if (charge && result.ok && control_->lose_charge_answers.load()) {
        ++control_->lost;
        result = sp::gateway_result{};
        result.error = "answer lost after the ledger recorded it (injected)";
      }
    }
    return out;
  }

 private:
  std::unique_ptr<sp::payment_gateway> inner_;
  std::shared_ptr<loss_control> control_;
};

/// A saga_setup whose runtimes use a lossy_gateway over the shared ledger.
struct lossy_setup {
  saga_setup base;
  std::shared_ptr<loss_control> control = std::make_shared<loss_control>();

  lossy_setup() {
    base.options.saga_steps.retry = sg::retry_policy{3, 10, 2.0, 50, 0.0};
    base.options.saga_steps.compensation_retry = sg::retry_policy{5, 10, 2.0, 50, 0.0};
  }
  std::unique_ptr<runtime> start() const {
    auto o = base.runtime_settings();
    o.gateway = [ledger = base.ledger, control = control, settings = base.gateway]() {
      return std::unique_ptr<sp::payment_gateway>(
          std::make_unique<lossy_gateway>(sp::make_simulated_gateway(ledger, settings), control));
    };
    return std::make_unique<runtime>(o, base.journal.factory());
  }
  /// Lets the parked charges land now, on a gateway of their own over the same ledger.
  std::vector<sp::gateway_result> deliver_parked() const {
    std::vector<sp::gateway_request> parked;
    {
      std::lock_guard<std::mutex> lock(control->mutex);
      parked.swap(control->parked);
    }
    return sp::make_simulated_gateway(base.ledger, base.gateway)->execute(parked);
  }
};

void register_stock(runtime& rt, const std::string& product, std::int64_t stock) {
  auto r = rt.send(product, register_product(product, stock, "register-" + product));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
}

placed_order place(runtime& rt, order_request request) {
  auto placed = rt.place_order(std::move(request));
  BOOST_REQUIRE_MESSAGE(placed.ok(), placed.message);
  BOOST_REQUIRE_MESSAGE(placed.saga_started, placed.message);
  return placed;
}

std::vector<std::string> payment_event_types(const saga_setup& setup, const std::string& order) {
  std::vector<std::string> out;
  for (const auto& rec : setup.journal.events("payment-" + sg::payment_id_for(order))) {
    out.push_back(rec.event_type);
  }
  return out;
}

/// Approved charges minus approved refunds the ledger holds for the order.
int net_charge(sp::payment_ledger& ledger, const std::string& order) {
  const auto c = count_ledger(ledger, order);
  return c.approved_charges - c.refunds;
}

void require_nobody_charged_twice(sp::payment_ledger& ledger) {
  auto twice = ledger.orders_charged_twice();
  BOOST_REQUIRE(twice.has_value());
  BOOST_TEST(twice->empty());
}

/// The saga compensated, the order is cancelled and its stock is back.
void require_cancelled(runtime& rt, saga_waiter& waiter, const placed_order& placed) {
  auto done = waiter.wait(placed.saga_id, sg::status::compensated);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(done->steps[1].status_ == sg::step_status::compensated);
  BOOST_TEST(rt.order_state(placed.order_id).state.status_ == ord::status::cancelled);
  BOOST_TEST(rt.inventory_state("p1").state.available == 10);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(payment_safety)

BOOST_AUTO_TEST_CASE(a_charge_whose_answer_is_lost_is_refunded_by_the_compensation) {
  lossy_setup setup;
  setup.control->lose_charge_answers = true;
  placed_order placed;
  std::string charge_tx;
  {
    auto rt = setup.start();
    saga_waiter waiter(*rt);
    register_stock(*rt, "p1", 10);
    placed = place(*rt, order_of("p1", 2));
    require_cancelled(*rt, waiter, placed);
    BOOST_TEST(setup.control->lost.load() == 3);  // every attempt charged (once), never told
    BOOST_TEST(setup.control->voids.load() == 1);

    const auto entries = setup.base.ledger->entries_of_order(placed.order_id);
    BOOST_REQUIRE(entries.has_value());
    BOOST_REQUIRE_EQUAL(entries->size(), 2u);
    const auto& charge = (*entries)[0];
    const auto& refund = (*entries)[1];
    BOOST_TEST((charge.operation == sp::gateway_operation::charge));
    BOOST_TEST(charge.approved);
    BOOST_TEST(charge.idempotency_key == sg::charge_key_for(placed.saga_id));
    BOOST_TEST((refund.operation == sp::gateway_operation::refund));
    BOOST_TEST(refund.approved);
    BOOST_TEST(refund.amount == charge.amount);
    BOOST_TEST(net_charge(*setup.base.ledger, placed.order_id) == 0);
    require_nobody_charged_twice(*setup.base.ledger);

    // The journal tells what the ledger did: charged (the ledger's transaction), then refunded.
    BOOST_TEST(payment_event_types(setup.base, placed.order_id) ==
               (std::vector<std::string>{"PaymentProcessed", "PaymentRefunded"}));
    const auto payment = rt->payment_state(sg::payment_id_for(placed.order_id));
    BOOST_REQUIRE(payment.ok);
    BOOST_TEST(payment.state.status_ == pay::status::refunded);
    BOOST_TEST(payment.state.transaction_id == charge.transaction_id);
    BOOST_TEST(payment.state.amount == charge.amount);
    charge_tx = charge.transaction_id;
  }
  // Stop and recover: the payment comes back refunded from its journal.
  setup.control->lose_charge_answers = false;
  auto rt = setup.start();
  const auto payment = rt->payment_state(sg::payment_id_for(placed.order_id));
  BOOST_REQUIRE(payment.ok);
  BOOST_TEST(payment.state.status_ == pay::status::refunded);
  BOOST_TEST(payment.state.transaction_id == charge_tx);
  BOOST_TEST(rt->order_state(placed.order_id).state.status_ == ord::status::cancelled);
}

BOOST_AUTO_TEST_CASE(a_charge_answered_too_late_is_refunded_by_the_compensation) {
  saga_setup setup;
  // The gateway records each charge after 300 ms; the payment actor gives up after 100 ms.
  setup.options.regions.gateway_timeout = std::chrono::milliseconds(100);
  setup.options.saga_steps.retry = sg::retry_policy{2, 10, 2.0, 50, 0.0};
  setup.options.saga_steps.compensation_retry = sg::retry_policy{10, 50, 2.0, 200, 0.0};
  setup.control->charges = gateway_control::slow;
  setup.control->hang_ms = 300;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 2));
  require_cancelled(*rt, waiter, placed);
  const auto counts = count_ledger(*setup.ledger, placed.order_id);
  BOOST_TEST(counts.approved_charges == 1);
  BOOST_TEST(counts.refunds == 1);
  BOOST_TEST(net_charge(*setup.ledger, placed.order_id) == 0);
  require_nobody_charged_twice(*setup.ledger);
  BOOST_TEST(payment_event_types(setup, placed.order_id) ==
             (std::vector<std::string>{"PaymentProcessed", "PaymentRefunded"}));
  BOOST_TEST(rt->payment_state(sg::payment_id_for(placed.order_id)).state.status_ ==
             pay::status::refunded);
}

BOOST_AUTO_TEST_CASE(a_charge_landing_after_the_compensation_is_declined) {
  lossy_setup setup;
  setup.control->park_charges = true;
  auto rt = setup.start();
  saga_waiter waiter(*rt);
  register_stock(*rt, "p1", 10);
  auto placed = place(*rt, order_of("p1", 2));
  require_cancelled(*rt, waiter, placed);
  // The void found nothing and barred the key: a tombstone, nothing charged, nothing journaled.
  auto counts = count_ledger(*setup.base.ledger, placed.order_id);
  BOOST_TEST(counts.approved_charges == 0);
  BOOST_TEST(counts.declined_charges == 1);
  BOOST_TEST(payment_event_types(setup.base, placed.order_id).empty());

  // The charges that were still travelling land now: each is declined, none charges.
  const auto late = setup.deliver_parked();
  BOOST_REQUIRE(!late.empty());
  for (const auto& r : late) {
    BOOST_REQUIRE_MESSAGE(r.ok, r.error);
    BOOST_TEST(!r.answer.approved);
    BOOST_TEST(r.answer.reason == sp::voided_before_charge);
  }
  // Even the charge command itself, re-sent to the payment, ends as a failure at most.
  setup.control->park_charges = false;
  const auto payment_id = sg::payment_id_for(placed.order_id);
  const auto again = rt->send(
      payment_id,
      pay::command{pay::process{payment_id, placed.order_id, "customer-1", placed.total, rt->now(),
                                sg::charge_key_for(placed.saga_id), std::nullopt}});
  BOOST_REQUIRE_MESSAGE(again.ok(), again.message);
  BOOST_REQUIRE_EQUAL(again.events.size(), 1u);
  const auto* failed = std::get_if<pay::payment_failed>(&again.events.front());
  BOOST_REQUIRE(failed != nullptr);
  BOOST_TEST(failed->reason == sp::voided_before_charge);
  BOOST_TEST(rt->payment_state(payment_id).state.status_ == pay::status::failed);
  counts = count_ledger(*setup.base.ledger, placed.order_id);
  BOOST_TEST(counts.approved_charges == 0);
  BOOST_TEST(net_charge(*setup.base.ledger, placed.order_id) == 0);
  require_nobody_charged_twice(*setup.base.ledger);
}

BOOST_AUTO_TEST_SUITE_END()

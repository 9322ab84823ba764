// The payment gateway port and its shipped adapter, a simulator that records every charge and
// refund with its idempotency key in a ledger (PostgreSQL table `payment_ledger`, or memory for
// tests). Calls block (latency, I/O): run them on a detached actor, never on a CAF scheduler
// thread. One gateway object is used by one thread at a time; ledgers are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/expected.hpp"
#include "domain/money.hpp"
#include "domain/payment.hpp"

namespace saga::persistence {

/// A void_charge undoes a charge named by its key whatever became of it: refunds it if it was
/// approved, or bars it (a declined tombstone under its key) if it has not arrived yet.
enum class gateway_operation { charge, refund, void_charge };
/// "charge" / "refund" / "void_charge".
[[nodiscard]] const char* to_string(gateway_operation op) noexcept;

/// Longest idempotency key accepted, in bytes.
inline constexpr std::size_t max_idempotency_key_bytes = 1024;

/// One call to the gateway. The idempotency key identifies the call: the same key always gets
/// the first answer again and is never charged (or refunded) twice.
struct gateway_request {
  gateway_operation operation = gateway_operation::charge;
  std::string idempotency_key;
  std::string payment_id;
  std::string order_id;
  std::string customer_id;
  domain::money amount = 0;
  std::string reason;  ///< refunds and voids: why
  /// void_charge only: the key of the charge to undo (idempotency_key is the void's own key,
  /// under which a refund is recorded). Empty for the other operations.
  std::string charge_key;
};

/// The gateway's answer. `ok == false` is a transient failure (gateway unreachable, random
/// failure, ledger unavailable): nothing was recorded under the key and the call may be
/// repeated. `ok == true` carries the definitive answer (approved or declined), recorded.
struct gateway_result {
  bool ok = false;
  domain::payment::gateway_answer answer;
  std::string error;      ///< when !ok
  bool replayed = false;  ///< the key was answered before; `answer` is that earlier answer
  /// void_charge: the outcome (also summarised in `answer`: approved = refunded, with the
  /// refund's transaction id, or declined with why nothing was charged).
  domain::payment::void_answer voided;
};

/// One ledger row.
struct ledger_entry {
  gateway_operation operation = gateway_operation::charge;
  std::string idempotency_key;
  std::string payment_id;
  std::string order_id;
  domain::money amount = 0;
  bool approved = false;
  std::string transaction_id;
  std::string reason;
  std::int64_t recorded_at_ms = 0;  ///< set by the ledger; ignored on record()
  /// Set by record(): the key was recorded before (by an earlier call, or earlier in the same
  /// batch), so this is the earlier entry and nothing was written for this input.
  bool replayed = false;
};

/// Why a request cannot be sent to the gateway (empty or over-long key, negative amount, text
/// that is not UTF-8 or holds NUL, unknown operation); nullopt when it is fine.
[[nodiscard]] std::optional<std::string> validate_request(const gateway_request& request);
/// Why an entry cannot be recorded (same rules as validate_request; only charge and refund
/// entries exist); nullopt when it is fine.
[[nodiscard]] std::optional<std::string> validate_entry(const ledger_entry& entry);

/// The reason of the declined tombstone a void leaves under the key of a charge that had not
/// arrived; that charge, arriving later, gets this answer instead of being charged.
inline constexpr const char* voided_before_charge = "voided before charge";

/// One void for payment_ledger::void_charges.
struct void_request {
  std::string charge_key;             ///< the charge to undo
  std::string refund_key;             ///< the refund's own key (a repeated void replays it)
  std::string payment_id;             ///< for the tombstone (a recorded charge keeps its own)
  std::string order_id;               ///< for the tombstone
  domain::money amount = 0;           ///< for the tombstone: the amount the charge asked for
  std::string reason;                 ///< the refund's reason
  std::string refund_transaction_id;  ///< the refund's id if one is recorded now
};

/// What a void found and did.
struct void_outcome {
  /// An approved charge is (now, or already was) refunded; otherwise nothing was charged.
  bool refunded = false;
  ledger_entry charge;  ///< the entry under the charge key (the tombstone when just written)
  ledger_entry refund;  ///< when refunded: the refund entry (new, or the earlier one)
  /// Nothing was written by this call: the outcome was settled before.
  bool replayed = false;
  /// Set when the keys cannot be voided (the charge key holds a refund, the refund key holds
  /// something else than a refund of this payment); nothing was written for this request.
  std::string error;
};

/// Why a void cannot be executed (keys empty, over-long or equal, bad text); nullopt when fine.
[[nodiscard]] std::optional<std::string> validate_void(const void_request& request);

/// The ledger: at most one entry per idempotency key, first writer wins.
class payment_ledger {
 public:
  virtual ~payment_ledger() = default;
  /// Records each entry whose key is new; returns, per input entry in order, the stored entry
  /// for its key (the input itself when new, the earlier one when the key was known; within one
  /// call the first of two inputs with the same key wins). All or nothing: an error (an invalid
  /// entry, checked before any I/O, or a lost connection) means none of them was recorded by
  /// this call.
  virtual expected<std::vector<ledger_entry>, std::string> record(
      const std::vector<ledger_entry>& entries) = 0;
  /// Voids charges by key, in order, in one transaction: the entry under the charge key decides.
  /// An approved charge not yet refunded (net, per payment) gets a refund recorded under the
  /// refund key; an approved charge already refunded answers that refund; a declined charge
  /// (or tombstone) answers nothing charged; no entry at all → a declined tombstone (reason
  /// voided_before_charge) is recorded under the charge key, so a charge arriving later is
  /// declined. Race-free against a concurrent charge or void of the same key. All or nothing
  /// like record(); per-request key misuse is reported in void_outcome::error. The default
  /// answers an error (for ledgers that only record, e.g. test doubles): nothing is written.
  virtual expected<std::vector<void_outcome>, std::string> void_charges(
      const std::vector<void_request>& requests);
  /// Every entry of an order, oldest first; entries of one record() call in key order (byte
  /// order). For tests and audits.
  virtual expected<std::vector<ledger_entry>, std::string> entries_of_order(
      const std::string& order_id) = 0;
  /// Approved charges minus approved refunds, counted per order: orders charged more than once
  /// net (must always be empty).
  virtual expected<std::vector<std::string>, std::string> orders_charged_twice() = 0;
};

namespace detail {
// The void rules both ledgers share.
/// The declined entry a void leaves under a charge key nothing was recorded under.
[[nodiscard]] ledger_entry tombstone_for(const void_request& r);
/// The refund a void records for an approved `charge`.
[[nodiscard]] ledger_entry refund_for(const void_request& r, const ledger_entry& charge);
/// Why `stored` (under the charge key) cannot be voided: it is not a charge.
[[nodiscard]] std::optional<std::string> charge_misuse(const void_request& r,
                                                       const ledger_entry& stored);
/// Why `stored` (under the refund key) is not this void's refund of `charge`.
[[nodiscard]] std::optional<std::string> refund_misuse(const void_request& r,
                                                       const ledger_entry& charge,
                                                       const ledger_entry& stored);
}  // namespace detail

/// In-process ledger for tests; thread-safe.
[[nodiscard]] std::shared_ptr<payment_ledger> make_memory_ledger();
/// Ledger on PostgreSQL (table payment_ledger, migration 0003); one connection, opened here.
/// Throws std::runtime_error when the database cannot be reached.
[[nodiscard]] std::unique_ptr<payment_ledger> make_pg_ledger(const std::string& database_url,
                                                             const std::string& schema = {});

struct gateway_options {
  /// Charges above this amount (minor units) are declined.
  domain::money decline_above = 10'000'000;
  /// Probability in [0,1] that a call fails transiently (nothing recorded).
  double failure_rate = 0.0;
  /// Added latency per batch of calls (calls of one batch run "in parallel").
  std::int64_t latency_ms = 0;
  /// Seed of the failure dice (0 = random).
  std::uint64_t seed = 0;
};

/// The port.
class payment_gateway {
 public:
  virtual ~payment_gateway() = default;
  /// Executes calls, answering each in order. Batched so an adapter can pay one round trip for
  /// many calls; a request never depends on another one of the same batch, except that two
  /// requests with the same key get the same answer.
  virtual std::vector<gateway_result> execute(const std::vector<gateway_request>& requests) = 0;
};

/// The simulator: declines charges above `decline_above` (reason "amount exceeds limit"),
/// fails transiently at `failure_rate`, approves the rest with a fresh transaction id; refunds
/// are approved; voids go to payment_ledger::void_charges (after the batch's charges and
/// refunds, as if those had arrived first). Known keys are answered from the ledger without
/// acting again. Throws
/// std::invalid_argument for a null ledger or options out of range (failure_rate outside [0,1],
/// negative decline_above or latency_ms).
[[nodiscard]] std::unique_ptr<payment_gateway> make_simulated_gateway(
    std::shared_ptr<payment_ledger> ledger, gateway_options options);

}  // namespace saga::persistence

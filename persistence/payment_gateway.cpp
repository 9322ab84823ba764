// The gateway port's shared rules (validation), the in-memory ledger and the simulated gateway.
// The PostgreSQL ledger lives in payment_ledger_pg.cpp.
#include "persistence/payment_gateway.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "domain/types.hpp"
#include "domain/validation.hpp"
#include "persistence/event_store.hpp"

namespace saga::persistence {

namespace {

std::optional<std::string> text_error(const char* field, const std::string& value, bool required,
                                      std::size_t limit) {
  if (required && value.empty()) return std::string(field) + " must not be empty";
  if (value.size() > limit) {
    return std::string(field) + " is " + std::to_string(value.size()) + " bytes; the limit is " +
           std::to_string(limit);
  }
  if (!domain::is_valid_text(value)) {
    return std::string(field) + " must be UTF-8 text without NUL characters";
  }
  return std::nullopt;
}

std::optional<std::string> key_error(const std::string& key, const std::string& payment_id,
                                     const std::string& order_id, domain::money amount,
                                     const std::string& reason);

std::optional<std::string> common_error(gateway_operation op, const std::string& key,
                                        const std::string& payment_id, const std::string& order_id,
                                        domain::money amount, const std::string& reason) {
  if (op != gateway_operation::charge && op != gateway_operation::refund) {
    return "operation must be charge or refund (got " + std::to_string(static_cast<int>(op)) + ")";
  }
  return key_error(key, payment_id, order_id, amount, reason);
}

std::optional<std::string> key_error(const std::string& key, const std::string& payment_id,
                                     const std::string& order_id, domain::money amount,
                                     const std::string& reason) {
  if (auto e = text_error("idempotency_key", key, true, max_idempotency_key_bytes)) return e;
  if (auto e = text_error("payment_id", payment_id, true, domain::max_text_bytes)) return e;
  if (auto e = text_error("order_id", order_id, true, domain::max_text_bytes)) return e;
  if (amount < 0) return "amount must not be negative (got " + std::to_string(amount) + ")";
  if (auto e = text_error("reason", reason, false, domain::max_text_bytes)) return e;
  return std::nullopt;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The first invalid entry of a batch as an error for the whole call.
std::optional<std::string> batch_error(const std::vector<ledger_entry>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (auto e = validate_entry(entries[i])) {
      return "payment ledger: entry " + std::to_string(i) + " is invalid: " + *e;
    }
  }
  return std::nullopt;
}

/// The first invalid void of a batch as an error for the whole call.
std::optional<std::string> void_batch_error(const std::vector<void_request>& requests) {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (auto e = validate_void(requests[i])) {
      return "payment ledger: void " + std::to_string(i) + " is invalid: " + *e;
    }
  }
  return std::nullopt;
}

using detail::charge_misuse;
using detail::refund_for;
using detail::refund_misuse;
using detail::tombstone_for;

class memory_ledger final : public payment_ledger {
 public:
  expected<std::vector<ledger_entry>, std::string> record(
      const std::vector<ledger_entry>& entries) override {
    if (auto e = batch_error(entries)) return unexpected{std::move(*e)};
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = now_ms();
    // The first input of each new key, stored in key order like the PostgreSQL ledger does.
    std::map<std::string, const ledger_entry*> fresh;
    for (const auto& in : entries) {
      if (by_key_.count(in.idempotency_key) == 0) fresh.emplace(in.idempotency_key, &in);
    }
    for (const auto& [key, in] : fresh) {
      ledger_entry stored = *in;
      stored.recorded_at_ms = at;
      stored.replayed = false;
      by_key_.emplace(key, entries_.size());
      by_order_[stored.order_id].push_back(entries_.size());
      entries_.push_back(std::move(stored));
    }
    std::vector<ledger_entry> out;
    out.reserve(entries.size());
    for (const auto& in : entries) {
      ledger_entry stored = entries_[by_key_.at(in.idempotency_key)];
      const auto first = fresh.find(in.idempotency_key);
      stored.replayed = first == fresh.end() || first->second != &in;
      out.push_back(std::move(stored));
    }
    return out;
  }

  expected<std::vector<void_outcome>, std::string> void_charges(
      const std::vector<void_request>& requests) override {
    if (auto e = void_batch_error(requests)) return unexpected{std::move(*e)};
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = now_ms();
    std::vector<void_outcome> out;
    out.reserve(requests.size());
    for (const auto& r : requests) {
      void_outcome o;
      const auto charge = by_key_.find(r.charge_key);
      if (charge == by_key_.end()) {
        o.charge = tombstone_for(r);
        o.charge.recorded_at_ms = at;
        add(o.charge);
        out.push_back(std::move(o));
        continue;
      }
      o.charge = entries_[charge->second];
      o.replayed = true;
      if (auto e = charge_misuse(r, o.charge)) {
        o.error = std::move(*e);
      } else if (o.charge.approved) {
        settle_approved(r, o, at);
      }
      out.push_back(std::move(o));
    }
    return out;
  }

  expected<std::vector<ledger_entry>, std::string> entries_of_order(
      const std::string& order_id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<ledger_entry> out;
    const auto it = by_order_.find(order_id);
    if (it == by_order_.end()) return out;
    for (const auto i : it->second) out.push_back(entries_[i]);
    return out;
  }

  expected<std::vector<std::string>, std::string> orders_charged_twice() override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [order_id, indexes] : by_order_) {
      std::int64_t net = 0;
      for (const auto i : indexes) {
        const auto& e = entries_[i];
        if (!e.approved) continue;
        net += e.operation == gateway_operation::charge ? 1 : -1;
      }
      if (net > 1) out.push_back(order_id);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  void add(const ledger_entry& e) {
    by_key_.emplace(e.idempotency_key, entries_.size());
    by_order_[e.order_id].push_back(entries_.size());
    entries_.push_back(e);
  }

  // An approved charge: its refund under the refund key, an earlier refund of the payment, or
  // a new refund. Called with the mutex held.
  void settle_approved(const void_request& r, void_outcome& o, std::int64_t at) {
    if (const auto known = by_key_.find(r.refund_key); known != by_key_.end()) {
      const auto& refund = entries_[known->second];
      if (auto e = refund_misuse(r, o.charge, refund)) {
        o.error = std::move(*e);
        return;
      }
      o.refunded = true;
      o.refund = refund;
      return;
    }
    // Net per payment: a refund under another key may already have undone this charge.
    std::int64_t net = 0;
    const ledger_entry* newest_refund = nullptr;
    for (const auto i : by_order_[o.charge.order_id]) {
      const auto& e = entries_[i];
      if (!e.approved || e.payment_id != o.charge.payment_id) continue;
      if (e.operation == gateway_operation::charge) {
        ++net;
      } else {
        --net;
        newest_refund = &e;
      }
    }
    o.refunded = true;
    if (net <= 0 && newest_refund != nullptr) {
      o.refund = *newest_refund;
      return;
    }
    o.refund = refund_for(r, o.charge);
    o.refund.recorded_at_ms = at;
    o.replayed = false;
    add(o.refund);
  }

  std::mutex mutex_;
  std::vector<ledger_entry> entries_;  // in recording order
  std::unordered_map<std::string, std::size_t> by_key_;
  std::unordered_map<std::string, std::vector<std::size_t>> by_order_;
};

class simulated_gateway final : public payment_gateway {
 public:
  simulated_gateway(std::shared_ptr<payment_ledger> ledger, gateway_options options)
      : ledger_(std::move(ledger)), options_(options), dice_(seed(options.seed)) {}

  std::vector<gateway_result> execute(const std::vector<gateway_request>& requests) override {
    std::vector<gateway_result> out(requests.size());
    std::vector<ledger_entry> decided;
    std::vector<std::size_t> owners;  // decided[k] answers requests[owners[k]]
    std::vector<void_request> voids;
    std::vector<std::size_t> void_owners;  // voids[k] answers requests[void_owners[k]]
    bool reached_gateway = false;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const auto& r = requests[i];
      if (auto e = validate_request(r)) {
        out[i].error = "invalid gateway request: " + *e;
        continue;
      }
      reached_gateway = true;
      if (roll_(dice_) < options_.failure_rate) {
        out[i].error = "gateway unavailable (simulated)";
        continue;
      }
      if (r.operation == gateway_operation::void_charge) {
        voids.push_back(void_for(r));
        void_owners.push_back(i);
        continue;
      }
      decided.push_back(decide(r));
      owners.push_back(i);
    }
    // One simulated round trip per batch: the calls of a batch are in flight together.
    if (reached_gateway && options_.latency_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.latency_ms));
    }
    // Charges and refunds first: the calls of a batch are concurrent, so this order is as
    // valid as any, and a void then finds a charge of the same batch instead of barring it.
    if (!decided.empty()) record(decided, owners, out);
    if (!voids.empty()) settle(voids, void_owners, out);
    return out;
  }

 private:
  void record(const std::vector<ledger_entry>& decided, const std::vector<std::size_t>& owners,
              std::vector<gateway_result>& out) {
    auto stored = ledger_->record(decided);
    if (stored && stored->size() != decided.size()) {
      stored = unexpected{"payment ledger answered " + std::to_string(stored->size()) +
                          " entries for " + std::to_string(decided.size())};
    }
    for (std::size_t k = 0; k < owners.size(); ++k) {
      auto& result = out[owners[k]];
      if (!stored) {
        result.error = "payment ledger unavailable: " + stored.error();
        continue;
      }
      const auto& entry = (*stored)[k];
      result.ok = true;
      result.answer.approved = entry.approved;
      result.answer.transaction_id = entry.transaction_id;
      // The ledger keeps a refund's reason too; the answer carries one only for a decline.
      if (!entry.approved) result.answer.reason = entry.reason;
      result.replayed = entry.replayed;
    }
  }

  void settle(const std::vector<void_request>& voids, const std::vector<std::size_t>& owners,
              std::vector<gateway_result>& out) {
    auto settled = ledger_->void_charges(voids);
    if (settled && settled->size() != voids.size()) {
      settled = unexpected{"payment ledger answered " + std::to_string(settled->size()) +
                           " voids for " + std::to_string(voids.size())};
    }
    for (std::size_t k = 0; k < owners.size(); ++k) {
      auto& result = out[owners[k]];
      if (!settled) {
        result.error = "payment ledger unavailable: " + settled.error();
        continue;
      }
      const auto& o = (*settled)[k];
      if (!o.error.empty()) {
        result.error = "cannot void: " + o.error;
        continue;
      }
      result.ok = true;
      result.replayed = o.replayed;
      auto& v = result.voided;
      v.refunded = o.refunded;
      if (o.refunded) {
        v.charge_transaction_id = o.charge.transaction_id;
        v.amount = o.charge.amount;
        v.refund_transaction_id = o.refund.transaction_id;
        result.answer.approved = true;
        result.answer.transaction_id = o.refund.transaction_id;
      } else {
        v.reason = o.charge.reason;
        result.answer.reason = o.charge.reason;
      }
    }
  }

  static void_request void_for(const gateway_request& r) {
    void_request v;
    v.charge_key = r.charge_key;
    v.refund_key = r.idempotency_key;
    v.payment_id = r.payment_id;
    v.order_id = r.order_id;
    v.amount = r.amount;
    v.reason = r.reason;
    v.refund_transaction_id = "rf-" + new_uuid();
    return v;
  }

  static std::uint64_t seed(std::uint64_t given) {
    if (given != 0) return given;
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }

  ledger_entry decide(const gateway_request& r) const {
    ledger_entry e;
    e.operation = r.operation;
    e.idempotency_key = r.idempotency_key;
    e.payment_id = r.payment_id;
    e.order_id = r.order_id;
    e.amount = r.amount;
    if (r.operation == gateway_operation::charge && r.amount > options_.decline_above) {
      e.approved = false;
      e.reason = "amount exceeds limit";
      return e;
    }
    e.approved = true;
    e.transaction_id = (r.operation == gateway_operation::charge ? "tx-" : "rf-") + new_uuid();
    e.reason = r.operation == gateway_operation::refund ? r.reason : std::string();
    return e;
  }

  std::shared_ptr<payment_ledger> ledger_;
  gateway_options options_;
  std::mt19937_64 dice_;
  std::uniform_real_distribution<double> roll_{0.0, 1.0};
};

}  // namespace

const char* to_string(gateway_operation op) noexcept {
  switch (op) {
    case gateway_operation::charge:
      return "charge";
    case gateway_operation::refund:
      return "refund";
    case gateway_operation::void_charge:
      return "void_charge";
  }
  return "unknown";
}

std::optional<std::string> validate_request(const gateway_request& request) {
  if (request.operation == gateway_operation::void_charge) {
    if (auto e = key_error(request.idempotency_key, request.payment_id, request.order_id,
                           request.amount, request.reason)) {
      return e;
    }
    if (auto e = text_error("charge_key", request.charge_key, true, max_idempotency_key_bytes)) {
      return e;
    }
    if (request.charge_key == request.idempotency_key) {
      return std::string("charge_key must differ from the void's own idempotency_key");
    }
  } else {
    if (auto e = common_error(request.operation, request.idempotency_key, request.payment_id,
                              request.order_id, request.amount, request.reason)) {
      return e;
    }
    if (!request.charge_key.empty()) {
      return std::string("charge_key is only for void_charge, not for ") +
             to_string(request.operation);
    }
  }
  return text_error("customer_id", request.customer_id, false, domain::max_text_bytes);
}

std::optional<std::string> validate_void(const void_request& request) {
  if (auto e = key_error(request.refund_key, request.payment_id, request.order_id, request.amount,
                         request.reason)) {
    return "refund_key/" + *e;
  }
  if (auto e = text_error("charge_key", request.charge_key, true, max_idempotency_key_bytes)) {
    return e;
  }
  if (request.charge_key == request.refund_key) {
    return std::string("charge_key and refund_key must differ");
  }
  return text_error("refund_transaction_id", request.refund_transaction_id, true,
                    domain::max_text_bytes);
}

std::optional<std::string> validate_entry(const ledger_entry& entry) {
  if (auto e = common_error(entry.operation, entry.idempotency_key, entry.payment_id,
                            entry.order_id, entry.amount, entry.reason)) {
    return e;
  }
  return text_error("transaction_id", entry.transaction_id, false, domain::max_text_bytes);
}

namespace detail {

ledger_entry tombstone_for(const void_request& r) {
  ledger_entry e;
  e.operation = gateway_operation::charge;
  e.idempotency_key = r.charge_key;
  e.payment_id = r.payment_id;
  e.order_id = r.order_id;
  e.amount = r.amount;
  e.approved = false;
  e.reason = voided_before_charge;
  return e;
}

ledger_entry refund_for(const void_request& r, const ledger_entry& charge) {
  ledger_entry e;
  e.operation = gateway_operation::refund;
  e.idempotency_key = r.refund_key;
  e.payment_id = charge.payment_id;
  e.order_id = charge.order_id;
  e.amount = charge.amount;
  e.approved = true;
  e.transaction_id = r.refund_transaction_id;
  e.reason = r.reason;
  return e;
}

std::optional<std::string> charge_misuse(const void_request& r, const ledger_entry& stored) {
  if (stored.operation != gateway_operation::charge) {
    return "key " + r.charge_key + " holds a " + to_string(stored.operation) + ", not a charge";
  }
  return std::nullopt;
}

std::optional<std::string> refund_misuse(const void_request& r, const ledger_entry& charge,
                                         const ledger_entry& stored) {
  if (stored.operation != gateway_operation::refund || !stored.approved ||
      stored.payment_id != charge.payment_id || stored.order_id != charge.order_id) {
    return "refund key " + r.refund_key + " already holds a " + to_string(stored.operation) +
           " that is not an approved refund of payment " + charge.payment_id;
  }
  return std::nullopt;
}

}  // namespace detail

expected<std::vector<void_outcome>, std::string> payment_ledger::void_charges(
    const std::vector<void_request>& requests) {
  return unexpected{"payment ledger: this ledger cannot void charges (" +
                    std::to_string(requests.size()) + " requested)"};
}

std::shared_ptr<payment_ledger> make_memory_ledger() { return std::make_shared<memory_ledger>(); }

std::unique_ptr<payment_gateway> make_simulated_gateway(std::shared_ptr<payment_ledger> ledger,
                                                        gateway_options options) {
  if (!ledger) throw std::invalid_argument("payment gateway: the ledger must not be null");
  if (!(options.failure_rate >= 0.0 && options.failure_rate <= 1.0)) {
    throw std::invalid_argument("payment gateway: failure_rate must be within [0, 1] (got " +
                                std::to_string(options.failure_rate) + ")");
  }
  if (options.decline_above < 0) {
    throw std::invalid_argument("payment gateway: decline_above must not be negative (got " +
                                std::to_string(options.decline_above) + ")");
  }
  if (options.latency_ms < 0) {
    throw std::invalid_argument("payment gateway: latency_ms must not be negative (got " +
                                std::to_string(options.latency_ms) + ")");
  }
  return std::make_unique<simulated_gateway>(std::move(ledger), options);
}

}  // namespace saga::persistence

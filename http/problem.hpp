// RFC 7807 problem details: the body of every error response of the HTTP front, and the mapping
// of domain rejections and actor failures to HTTP statuses. Pure values and functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/outcome.hpp"
#include "domain/rejection.hpp"

namespace saga::http {

/// One problem+json body before the correlation id is attached.
struct problem {
  int status = 500;
  std::string title;
  std::string detail;
  std::string type = "about:blank";
  std::vector<std::pair<std::string, std::string>> errors;  ///< field → message (validation)
};

/// The application/problem+json body: type, title, status, detail, correlationId and, when
/// present, `errors: [{field, message}]`.
[[nodiscard]] std::string problem_json(const problem& p, const std::string& correlation_id);

/// A problem with the standard reason phrase of `status` as its title.
[[nodiscard]] problem make_problem(int status, std::string detail);

/// A 422 validation problem naming one field; detail is "<field>: <message>".
[[nodiscard]] problem validation_problem(std::string field, std::string message);

/// Standard reason phrase of an HTTP status ("Not Found"); "Error" for an unknown status.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

/// Status for a business rejection: not_found → 404; already_exists, already_cancelled,
/// already_confirmed, already_processed, already_refunded, invalid_state, insufficient_stock → 409
/// (the request is fine, the resource's state refuses it); invalid_argument, invalid_quantity,
/// invalid_price, too_many_items, money_overflow, unknown_product, not_paid,
/// idempotency_mismatch → 422.
[[nodiscard]] int status_for(saga::domain::rejection_code code) noexcept;

/// Status for an infrastructure failure: timeout, overloaded, journal_unavailable,
/// actor_unavailable, gateway_unavailable, version_conflict → 503 (retry later); journal_error,
/// poison_command, none → 500.
[[nodiscard]] int status_for(saga::actors::failure_code code) noexcept;

/// The problem for a business rejection; `detail` is the rejection's message (safe to show).
[[nodiscard]] problem problem_for(saga::domain::rejection_code code, std::string detail);

/// The problem for an infrastructure failure. For 500s the detail is replaced by a generic text
/// (the internal message may hold SQL or stack details; log it instead); 503s keep a short
/// generic detail naming the failure kind.
[[nodiscard]] problem problem_for(saga::actors::failure_code code, std::string detail);

}  // namespace saga::http

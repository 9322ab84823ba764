#include "http/problem.hpp"

#include <nlohmann/json.hpp>

namespace saga::http {

namespace {

using saga::actors::failure_code;
using saga::domain::rejection_code;

// Rejections share one type URI namespace so that programs can tell insufficient_stock from
// invalid_state without parsing the detail.
std::string rejection_type(rejection_code code) {
  return "urn:saga:rejection:" + std::string(saga::domain::to_string(code));
}

std::string failure_type(failure_code code) {
  return "urn:saga:failure:" + std::string(saga::actors::to_string(code));
}

}  // namespace

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

std::string problem_json(const problem& p, const std::string& correlation_id) {
  nlohmann::ordered_json j;
  j["type"] = p.type.empty() ? std::string("about:blank") : p.type;
  j["title"] = p.title.empty() ? std::string(reason_phrase(p.status)) : p.title;
  j["status"] = p.status;
  j["detail"] = p.detail;
  j["correlationId"] = correlation_id;
  if (!p.errors.empty()) {
    auto errors = nlohmann::ordered_json::array();
    for (const auto& [field, message] : p.errors)
      errors.push_back({{"field", field}, {"message", message}});
    j["errors"] = std::move(errors);
  }
  // Details may echo client text; replace invalid UTF-8 instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

problem make_problem(int status, std::string detail) {
  problem p;
  p.status = status;
  p.title = std::string(reason_phrase(status));
  p.detail = std::move(detail);
  return p;
}

problem validation_problem(std::string field, std::string message) {
  problem p = make_problem(422, field + ": " + message);
  p.title = "Validation failed";
  p.type = "urn:saga:validation";
  p.errors.emplace_back(std::move(field), std::move(message));
  return p;
}

int status_for(rejection_code code) noexcept {
  switch (code) {
    case rejection_code::not_found:
      return 404;
    case rejection_code::already_exists:
    case rejection_code::already_cancelled:
    case rejection_code::already_confirmed:
    case rejection_code::already_processed:
    case rejection_code::already_refunded:
    case rejection_code::invalid_state:
    case rejection_code::insufficient_stock:
      return 409;
    case rejection_code::invalid_argument:
    case rejection_code::invalid_quantity:
    case rejection_code::invalid_price:
    case rejection_code::too_many_items:
    case rejection_code::money_overflow:
    case rejection_code::unknown_product:
    case rejection_code::not_paid:
    case rejection_code::idempotency_mismatch:
      return 422;
  }
  return 422;
}

int status_for(failure_code code) noexcept {
  switch (code) {
    case failure_code::timeout:
    case failure_code::version_conflict:
    case failure_code::journal_unavailable:
    case failure_code::actor_unavailable:
    case failure_code::overloaded:
    case failure_code::gateway_unavailable:
      return 503;
    case failure_code::none:
    case failure_code::journal_error:
    case failure_code::poison_command:
      return 500;
  }
  return 500;
}

problem problem_for(rejection_code code, std::string detail) {
  problem p = make_problem(status_for(code), std::move(detail));
  p.type = rejection_type(code);
  return p;
}

problem problem_for(failure_code code, std::string detail) {
  const int status = status_for(code);
  // The internal message can carry SQL text or other internals: never show it. The caller logs it.
  (void)detail;
  std::string shown;
  switch (code) {
    case failure_code::timeout:
      shown =
          "the request was not answered in time; it may still complete (retry with the same "
          "Idempotency-Key to find out)";
      break;
    case failure_code::version_conflict:
      shown = "the resource kept changing concurrently; retry the request";
      break;
    case failure_code::journal_unavailable:
      shown = "the event journal is temporarily unavailable; retry the request";
      break;
    case failure_code::actor_unavailable:
      shown = "the resource is temporarily unavailable; retry the request";
      break;
    case failure_code::overloaded:
      shown = "the service is overloaded; retry the request later";
      break;
    case failure_code::gateway_unavailable:
      shown = "the payment gateway is unavailable; retry the request later";
      break;
    case failure_code::none:
    case failure_code::journal_error:
    case failure_code::poison_command:
      shown = "an internal error occurred; quote the correlation id when reporting it";
      break;
  }
  problem p = make_problem(status, std::move(shown));
  p.type = failure_type(code);
  return p;
}

}  // namespace saga::http

#include "actors/outcome.hpp"

namespace saga::actors {

std::string_view to_string(reply_kind kind) noexcept {
  switch (kind) {
    case reply_kind::accepted:
      return "accepted";
    case reply_kind::replayed:
      return "replayed";
    case reply_kind::rejected:
      return "rejected";
    case reply_kind::failed:
      return "failed";
  }
  return "unknown";
}

std::string_view to_string(failure_code code) noexcept {
  switch (code) {
    case failure_code::none:
      return "none";
    case failure_code::timeout:
      return "timeout";
    case failure_code::version_conflict:
      return "version_conflict";
    case failure_code::journal_unavailable:
      return "journal_unavailable";
    case failure_code::journal_error:
      return "journal_error";
    case failure_code::poison_command:
      return "poison_command";
    case failure_code::actor_unavailable:
      return "actor_unavailable";
    case failure_code::overloaded:
      return "overloaded";
    case failure_code::gateway_unavailable:
      return "gateway_unavailable";
  }
  return "unknown";
}

bool is_retryable(failure_code code) noexcept {
  switch (code) {
    case failure_code::timeout:
    case failure_code::version_conflict:
    case failure_code::journal_unavailable:
    case failure_code::actor_unavailable:
    case failure_code::overloaded:
    case failure_code::gateway_unavailable:
      return true;
    case failure_code::none:
    case failure_code::journal_error:
    case failure_code::poison_command:
      return false;
  }
  return false;
}

}  // namespace saga::actors

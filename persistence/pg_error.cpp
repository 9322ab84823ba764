#include "persistence/pg_error.hpp"

#include <exception>
#include <new>

#include <pqxx/pqxx>

namespace saga::persistence::detail {

namespace {

classified_error make(store_errc code, const std::string& context, const std::string& what,
                      bool unusable = false) {
  std::string message = context.empty() ? what : context + ": " + what;
  // libpq messages end with a newline; keep log lines and JSON problem details tidy.
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return classified_error{store_error{code, std::move(message), -1}, unusable, false};
}

classified_error from_sqlstate(const std::string& state, const std::string& context,
                               const std::string& what) {
  const std::string cls = state.substr(0, 2);
  // 08: connection exception; 57P01-03: the server is shutting down or terminated us.
  if (cls == "08" || state == "57P01" || state == "57P02" || state == "57P03") {
    return make(store_errc::retryable, context, what, true);
  }
  // Serialization failure, deadlock, lock timeout, statement timeout, too many connections.
  if (state == "40001" || state == "40P01" || state == "55P03" || state == "57014" ||
      state == "53300") {
    return make(store_errc::retryable, context, what);
  }
  if (state == "23505") {
    auto c = make(store_errc::version_conflict, context, what);
    c.unique_violation = true;
    return c;
  }
  // 22: data exception (bad JSON, bad uuid, overflow…); 23: other integrity violations;
  // 54: program limit exceeded (e.g. a JSON document nested too deep).
  if (cls == "22" || cls == "23" || cls == "54") {
    return make(store_errc::invalid_request, context, what);
  }
  return make(store_errc::internal, context, what + " [SQLSTATE " + state + "]");
}

}  // namespace

classified_error classify_current_exception(const std::string& context) {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return make(store_errc::retryable, context, e.what(), true);
  } catch (const pqxx::in_doubt_error& e) {
    // The commit may or may not have happened; a retry is safe (idempotent by event id).
    return make(store_errc::retryable, context, e.what(), true);
  } catch (const pqxx::statement_completion_unknown& e) {
    return make(store_errc::retryable, context, e.what(), true);
  } catch (const pqxx::transaction_rollback& e) {
    return make(store_errc::retryable, context, e.what());
  } catch (const pqxx::sql_error& e) {
    return from_sqlstate(e.sqlstate(), context, e.what());
  } catch (const pqxx::usage_error& e) {
    return make(store_errc::internal, context, e.what());
  } catch (const std::bad_alloc&) {
    return make(store_errc::internal, context, "out of memory");
  } catch (const std::exception& e) {
    return make(store_errc::internal, context, e.what());
  } catch (...) {
    return make(store_errc::internal, context, "unknown exception");
  }
}

}  // namespace saga::persistence::detail

#include "domain/saga_codec.hpp"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "domain/json_fields.hpp"

namespace saga::domain {
namespace {

using nlohmann::json;
namespace jf = json_fields;
namespace sg = ::saga::domain::sagas;

constexpr std::int64_t int_max = std::numeric_limits<int>::max();
constexpr std::int64_t int64_min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

// Invalid UTF-8 cannot reach here through decide(), but encoding must never throw.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- typed field access with ranges ----

std::int64_t int_value(const json& v, const std::string& name, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer())
    throw jf::field_error(name, "field '" + name + "' must be an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(int64_max))
    throw jf::field_error(name, "field '" + name + "' is out of range");
  const auto x = v.get<std::int64_t>();
  if (x < lo || x > hi)
    throw jf::field_error(name, "field '" + name + "' must be between " + std::to_string(lo) +
                                    " and " + std::to_string(hi));
  return x;
}

std::int64_t get_int(const json& obj, const char* field, const std::string& prefix,
                     std::int64_t lo = int64_min, std::int64_t hi = int64_max) {
  return int_value(jf::require(obj, field, prefix), prefix + field, lo, hi);
}

int get_small(const json& obj, const char* field, const std::string& prefix, std::int64_t lo) {
  return static_cast<int>(get_int(obj, field, prefix, lo, int_max));
}

const json& element_object(const json& arr, std::size_t i, const std::string& name) {
  const auto& v = arr[i];
  if (!v.is_object()) throw jf::field_error(name, "field '" + name + "' must be an object");
  return v;
}

std::string indexed(const std::string& prefix, const char* field, std::size_t i) {
  return prefix + field + "[" + std::to_string(i) + "]";
}

// ---- enums (written with their to_string names) ----

constexpr sg::phase all_phases[] = {sg::phase::forward, sg::phase::compensation,
                                    sg::phase::on_compensated};
constexpr sg::status all_statuses[] = {sg::status::none,         sg::status::running,
                                       sg::status::compensating, sg::status::completed,
                                       sg::status::compensated,  sg::status::failed};
constexpr sg::target_status all_target_statuses[] = {
    sg::target_status::pending, sg::target_status::succeeded, sg::target_status::failed,
    sg::target_status::unknown, sg::target_status::skipped};
constexpr sg::step_status all_step_statuses[] = {
    sg::step_status::pending,     sg::step_status::running,
    sg::step_status::succeeded,   sg::step_status::failed,
    sg::step_status::aborted,     sg::step_status::compensating,
    sg::step_status::compensated, sg::step_status::compensation_failed};

template <class E, std::size_t N>
E enum_value(const json& v, const std::string& name, const E (&values)[N]) {
  if (!v.is_string()) throw jf::field_error(name, "field '" + name + "' must be a string");
  const auto text = v.get<std::string>();
  for (auto value : values)
    if (sg::to_string(value) == text) return value;
  throw jf::field_error(name, "unknown value '" + text + "' for field '" + name + "'");
}

template <class E, std::size_t N>
E get_enum(const json& obj, const char* field, const std::string& prefix, const E (&values)[N]) {
  return enum_value(jf::require(obj, field, prefix), prefix + field, values);
}

template <class E>
json enum_array(const std::vector<E>& values) {
  json out = json::array();
  for (auto v : values) out.push_back(std::string(sg::to_string(v)));
  return out;
}

std::vector<sg::target_status> get_target_statuses(const json& obj, const char* field,
                                                   const std::string& prefix) {
  const auto& arr = jf::get_array(obj, field, prefix);
  std::vector<sg::target_status> out;
  out.reserve(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i)
    out.push_back(enum_value(arr[i], indexed(prefix, field, i), all_target_statuses));
  return out;
}

std::vector<std::string> get_strings(const json& obj, const char* field,
                                     const std::string& prefix) {
  const auto& arr = jf::get_array(obj, field, prefix);
  std::vector<std::string> out;
  out.reserve(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_string()) {
      const auto name = indexed(prefix, field, i);
      throw jf::field_error(name, "field '" + name + "' must be a string");
    }
    out.push_back(arr[i].get<std::string>());
  }
  return out;
}

// ---- saga input ----

json input_to_json(const sg::saga_input& in) {
  json items = json::array();
  for (const auto& it : in.items) {
    items.push_back({{"productId", it.product_id},
                     {"productName", it.product_name},
                     {"quantity", it.quantity},
                     {"unitPrice", it.unit_price}});
  }
  json attributes = json::object();
  for (const auto& [key, value] : in.attributes) attributes[key] = value;
  return {{"orderId", in.order_id},
          {"customerId", in.customer_id},
          {"items", std::move(items)},
          {"total", in.total},
          {"attributes", std::move(attributes)}};
}

sg::saga_input input_from_json(const json& obj, const char* field) {
  const auto& j = jf::get_object(obj, field);
  const std::string prefix = std::string(field) + ".";
  sg::saga_input in;
  in.order_id = jf::get_string(j, "orderId", prefix);
  in.customer_id = jf::get_string(j, "customerId", prefix);
  const auto& items = jf::get_array(j, "items", prefix);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto name = indexed(prefix, "items", i);
    const auto& it = element_object(items, i, name);
    const auto p = name + ".";
    order::line_item item;
    item.product_id = jf::get_string(it, "productId", p);
    item.product_name = jf::get_string(it, "productName", p);
    item.quantity = get_int(it, "quantity", p);
    item.unit_price = get_int(it, "unitPrice", p);
    in.items.push_back(std::move(item));
  }
  in.total = get_int(j, "total", prefix);
  const auto& attributes = jf::get_object(j, "attributes", prefix);
  for (const auto& [key, value] : attributes.items()) {
    if (!value.is_string()) {
      const auto name = prefix + "attributes." + key;
      throw jf::field_error(name, "field '" + name + "' must be a string");
    }
    in.attributes.emplace(key, value.get<std::string>());
  }
  return in;
}

// ---- events ----

struct type_names {
  std::string_view operator()(const sg::saga_started&) const { return "SagaStarted"; }
  std::string_view operator()(const sg::step_started&) const { return "SagaStepStarted"; }
  std::string_view operator()(const sg::step_succeeded&) const { return "SagaStepSucceeded"; }
  std::string_view operator()(const sg::step_failed&) const { return "SagaStepFailed"; }
  std::string_view operator()(const sg::compensation_started&) const {
    return "SagaCompensationStarted";
  }
  std::string_view operator()(const sg::step_compensated&) const { return "SagaStepCompensated"; }
  std::string_view operator()(const sg::saga_completed&) const { return "SagaCompleted"; }
  std::string_view operator()(const sg::saga_compensated&) const { return "SagaCompensated"; }
  std::string_view operator()(const sg::saga_failed&) const { return "SagaFailed"; }
};

std::string phase_name(sg::phase p) { return std::string(sg::to_string(p)); }

json started_to_json(const sg::step_started& e) {
  return {{"step", e.step},
          {"phase", phase_name(e.phase_)},
          {"attempt", e.attempt},
          {"targetCount", e.target_count},
          {"targets", e.targets},
          {"at", e.at},
          {"deadlineAt", e.deadline_at}};
}

/// Adds a folded step start as "next".
json with_next(json j, const std::optional<sg::step_started>& next) {
  if (next) j["next"] = started_to_json(*next);
  return j;
}

struct event_to_json {
  json operator()(const sg::saga_started& e) const {
    return with_next({{"sagaId", e.saga_id},
                      {"sagaType", e.saga_type},
                      {"correlationId", e.correlation_id},
                      {"input", input_to_json(e.input)},
                      {"steps", e.steps},
                      {"at", e.at}},
                     e.next);
  }
  json operator()(const sg::step_started& e) const { return started_to_json(e); }
  /// SagaStepSucceeded and SagaStepCompensated: one target of an attempt answered.
  template <class TargetDone>
  json target_done(const TargetDone& e) const {
    return with_next({{"step", e.step},
                      {"phase", phase_name(e.phase_)},
                      {"attempt", e.attempt},
                      {"target", e.target},
                      {"stepDone", e.step_done},
                      {"at", e.at}},
                     e.next);
  }
  json operator()(const sg::step_succeeded& e) const { return target_done(e); }
  json operator()(const sg::step_failed& e) const {
    return {{"step", e.step},
            {"phase", phase_name(e.phase_)},
            {"attempt", e.attempt},
            {"target", e.target},
            {"reason", e.reason},
            {"retryable", e.retryable},
            {"willRetry", e.will_retry},
            {"retryAt", e.retry_at},
            {"at", e.at}};
  }
  json operator()(const sg::compensation_started& e) const {
    return with_next({{"reason", e.reason}, {"at", e.at}}, e.next);
  }
  json operator()(const sg::step_compensated& e) const { return target_done(e); }
  json operator()(const sg::saga_completed& e) const { return {{"at", e.at}}; }
  json operator()(const sg::saga_compensated& e) const {
    return {{"reason", e.reason}, {"at", e.at}};
  }
  json operator()(const sg::saga_failed& e) const {
    return {{"step", e.step}, {"phase", phase_name(e.phase_)}, {"reason", e.reason}, {"at", e.at}};
  }
};

const std::string no_prefix;

/// step, phase, attempt and target shared by the per-target step events.
template <class Event>
Event target_event(const json& j) {
  Event e;
  e.step = get_small(j, "step", no_prefix, 0);
  e.phase_ = get_enum(j, "phase", no_prefix, all_phases);
  e.attempt = get_small(j, "attempt", no_prefix, 1);
  e.target = get_small(j, "target", no_prefix, -1);
  e.at = get_int(j, "at", no_prefix);
  return e;
}

sg::step_started started_from_json(const json& j, const std::string& prefix) {
  sg::step_started e;
  e.step = get_small(j, "step", prefix, 0);
  e.phase_ = get_enum(j, "phase", prefix, all_phases);
  e.attempt = get_small(j, "attempt", prefix, 1);
  e.target_count = get_small(j, "targetCount", prefix, 0);
  const auto& targets = jf::get_array(j, "targets", prefix);
  for (std::size_t i = 0; i < targets.size(); ++i)
    e.targets.push_back(static_cast<int>(
        int_value(targets[i], indexed(prefix, "targets", i), 0, e.target_count - 1)));
  e.at = get_int(j, "at", prefix);
  e.deadline_at = get_int(j, "deadlineAt", prefix);
  return e;
}

/// A folded step start: only in schema 2, where it is optional.
std::optional<sg::step_started> next_from_json(const json& j, int schema_version) {
  const auto it = j.find("next");
  if (it == j.end()) return std::nullopt;
  if (schema_version < saga_next_schema_version)
    throw jf::field_error(
        "next", "field 'next' needs schema_version " + std::to_string(saga_next_schema_version));
  if (!it->is_object()) throw jf::field_error("next", "field 'next' must be an object");
  return started_from_json(*it, "next.");
}

sg::event decode_payload(const std::string& type, const json& j, int schema_version) {
  if (type == "SagaStarted") {
    sg::saga_started e;
    e.saga_id = jf::get_string(j, "sagaId");
    e.saga_type = jf::get_string(j, "sagaType");
    e.correlation_id = jf::get_string(j, "correlationId");
    e.input = input_from_json(j, "input");
    e.steps = get_strings(j, "steps", no_prefix);
    e.at = get_int(j, "at", no_prefix);
    e.next = next_from_json(j, schema_version);
    return e;
  }
  if (type == "SagaStepStarted") return started_from_json(j, no_prefix);
  if (type == "SagaStepSucceeded") {
    auto e = target_event<sg::step_succeeded>(j);
    if (e.phase_ != sg::phase::forward)
      throw jf::field_error("phase", "SagaStepSucceeded must have phase 'forward'");
    e.step_done = jf::get_bool(j, "stepDone");
    e.next = next_from_json(j, schema_version);
    return e;
  }
  if (type == "SagaStepFailed") {
    auto e = target_event<sg::step_failed>(j);
    e.reason = jf::get_string(j, "reason");
    e.retryable = jf::get_bool(j, "retryable");
    e.will_retry = jf::get_bool(j, "willRetry");
    e.retry_at = get_int(j, "retryAt", no_prefix);
    return e;
  }
  if (type == "SagaCompensationStarted") {
    return sg::compensation_started{jf::get_string(j, "reason"), get_int(j, "at", no_prefix),
                                    next_from_json(j, schema_version)};
  }
  if (type == "SagaStepCompensated") {
    auto e = target_event<sg::step_compensated>(j);
    if (e.phase_ == sg::phase::forward)
      throw jf::field_error("phase", "SagaStepCompensated cannot have phase 'forward'");
    e.step_done = jf::get_bool(j, "stepDone");
    e.next = next_from_json(j, schema_version);
    return e;
  }
  if (type == "SagaCompleted") return sg::saga_completed{get_int(j, "at", no_prefix)};
  if (type == "SagaCompensated") {
    return sg::saga_compensated{jf::get_string(j, "reason"), get_int(j, "at", no_prefix)};
  }
  if (type == "SagaFailed") {
    sg::saga_failed e;
    e.step = get_small(j, "step", no_prefix, 0);
    e.phase_ = get_enum(j, "phase", no_prefix, all_phases);
    if (e.phase_ == sg::phase::forward)
      throw jf::field_error("phase", "SagaFailed cannot have phase 'forward'");
    e.reason = jf::get_string(j, "reason");
    e.at = get_int(j, "at", no_prefix);
    return e;
  }
  throw jf::field_error("", "unknown saga event type '" + type + "'");
}

template <class T, class F>
decoded<T> guarded(F&& f) {
  try {
    return f();
  } catch (const jf::field_error& err) {
    return unexpected{decode_error{err.field, err.what()}};
  } catch (const std::exception& err) {
    return unexpected{decode_error{"", err.what()}};
  }
}

// ---- state ----

json record_to_json(const sg::step_record& r) {
  return {{"status", std::string(sg::to_string(r.status_))},
          {"forward", enum_array(r.forward)},
          {"compensation", enum_array(r.compensation)},
          {"startedAt", r.started_at},
          {"compensationStartedAt", r.compensation_started_at}};
}

sg::step_record record_from_json(const json& j, const std::string& prefix) {
  sg::step_record r;
  r.status_ = get_enum(j, "status", prefix, all_step_statuses);
  r.forward = get_target_statuses(j, "forward", prefix);
  r.compensation = get_target_statuses(j, "compensation", prefix);
  r.started_at = get_int(j, "startedAt", prefix);
  r.compensation_started_at = get_int(j, "compensationStartedAt", prefix);
  return r;
}

}  // namespace

std::string_view event_type(const sagas::event& e) noexcept { return std::visit(type_names{}, e); }

encoded_event encode(const sagas::event& e) {
  json j = std::visit(event_to_json{}, e);
  const int version = j.contains("next") ? saga_next_schema_version : saga_schema_version;
  j["schema_version"] = version;
  return encoded_event{std::string(event_type(e)), version, dump(j)};
}

decoded<sagas::event> decode_saga_event(const encoded_event& e) {
  return guarded<sagas::event>([&] {
    const json j = jf::parse_payload(e, saga_next_schema_version);
    return decode_payload(e.type, j, e.schema_version);
  });
}

std::string encode_state(const sagas::state& s) {
  json steps = json::array();
  for (const auto& r : s.steps) steps.push_back(record_to_json(r));
  return dump(json{{"schema_version", saga_schema_version},
                   {"sagaId", s.saga_id},
                   {"sagaType", s.saga_type},
                   {"correlationId", s.correlation_id},
                   {"input", input_to_json(s.input)},
                   {"status", std::string(sagas::to_string(s.status_))},
                   {"currentStep", s.current_step},
                   {"phase", phase_name(s.phase_)},
                   {"attempt", s.attempt},
                   {"awaitingRetry", s.awaiting_retry},
                   {"deadlineAt", s.deadline_at},
                   {"retryAt", s.retry_at},
                   {"stepNames", s.step_names},
                   {"steps", std::move(steps)},
                   {"onCompensated", record_to_json(s.on_compensated)},
                   {"attemptFailure", s.attempt_failure},
                   {"attemptFailedForGood", s.attempt_failed_for_good},
                   {"compensationReason", s.compensation_reason},
                   {"failureReason", s.failure_reason},
                   {"version", s.version},
                   {"startedAt", s.started_at},
                   {"updatedAt", s.updated_at}});
}

decoded<sagas::state> decode_saga_state(const std::string& text) {
  return guarded<sagas::state>([&] {
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw jf::field_error("", "saga snapshot is not valid JSON");
    if (!j.is_object()) throw jf::field_error("", "saga snapshot must be a JSON object");
    const auto version = get_int(j, "schema_version", no_prefix);
    if (version != saga_schema_version)
      throw jf::field_error("schema_version", "unsupported schema_version " +
                                                  std::to_string(version) + " for a saga snapshot");
    sagas::state s;
    s.saga_id = jf::get_string(j, "sagaId");
    s.saga_type = jf::get_string(j, "sagaType");
    s.correlation_id = jf::get_string(j, "correlationId");
    s.input = input_from_json(j, "input");
    s.status_ = get_enum(j, "status", no_prefix, all_statuses);
    s.current_step = get_small(j, "currentStep", no_prefix, 0);
    s.phase_ = get_enum(j, "phase", no_prefix, all_phases);
    s.attempt = get_small(j, "attempt", no_prefix, 0);
    s.awaiting_retry = jf::get_bool(j, "awaitingRetry");
    s.deadline_at = get_int(j, "deadlineAt", no_prefix);
    s.retry_at = get_int(j, "retryAt", no_prefix);
    s.step_names = get_strings(j, "stepNames", no_prefix);
    const auto& steps = jf::get_array(j, "steps");
    if (steps.size() != s.step_names.size())
      throw jf::field_error("steps", "field 'steps' must have one entry per name in 'stepNames'");
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto name = indexed(no_prefix, "steps", i);
      s.steps.push_back(record_from_json(element_object(steps, i, name), name + "."));
    }
    s.on_compensated = record_from_json(jf::get_object(j, "onCompensated"), "onCompensated.");
    s.attempt_failure = jf::get_string(j, "attemptFailure");
    s.attempt_failed_for_good = jf::get_bool(j, "attemptFailedForGood");
    s.compensation_reason = jf::get_string(j, "compensationReason");
    s.failure_reason = jf::get_string(j, "failureReason");
    s.version = get_int(j, "version", no_prefix, 0);
    s.started_at = get_int(j, "startedAt", no_prefix);
    s.updated_at = get_int(j, "updatedAt", no_prefix);
    return s;
  });
}

}  // namespace saga::domain

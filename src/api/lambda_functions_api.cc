// Lambda's control plane over kiln's functions: each operation reads Lambda's shape
// (functions/lambda_shapes), acts on the one function table, and answers in Lambda's dialect.
#include "src/api/lambda_functions_api.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include <nlohmann/json.hpp>

#include "src/api/lambda_api.h"
#include "src/functions/lambda_shapes.h"
#include "src/invoke/guest_request.h"
#include "src/invoke/lambda.h"

namespace kiln::kilnd::api {
namespace {

using invoke::LambdaServiceError;
using nlohmann::json;

server::Response lambda_error(const server::Request& req, LambdaServiceError kind, std::string_view message) {
  return lambda_response(req, invoke::lambda_service_error(kind, message), invoke::new_request_id());
}

// A request Lambda's rules (or kiln's) refuse: the body is not JSON, or a parameter is wrong.
server::Response invalid(const server::Request& req, const kiln::json::FieldError& e) {
  return lambda_error(req,
                      e.path == "body" ? LambdaServiceError::kInvalidRequestContent
                                       : LambdaServiceError::kInvalidParameterValue,
                      e.message);
}

server::Response not_found(const server::Request& req, const Call& call, std::string_view name) {
  return lambda_error(req, LambdaServiceError::kResourceNotFound,
                      "Function not found: " + functions::lambda_function_arn(call.caller.tenant, name));
}

server::Response lambda_ok(const server::Request& req, http::status status, const json& body) {
  auto res = server::json_response(req, status, body);
  res.set("x-amzn-RequestId", invoke::new_request_id());
  return res;
}

// A ListFunctions query number: MaxItems.
std::optional<std::uint64_t> query_uint(const std::string& text, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace

std::variant<const functions::Function*, server::Response> LambdaFunctionsApi::find(const server::Request& req,
                                                                                   const Call& call) {
  auto ref = functions::parse_lambda_function_ref(call.params.at(kParam), call.caller.tenant);
  if (!ref.ok()) return invalid(req, ref.error());
  std::string qualifier = ref->qualifier;
  if (auto q = call.target.query.find("Qualifier"); q != call.target.query.end()) qualifier = q->second;
  // Another tenant's function is answered exactly as a missing one (kiln's rule for every route).
  const functions::Function* f = ref->elsewhere ? nullptr : table_.find(call.caller.key(ref->name));
  if (!f || (!qualifier.empty() && qualifier != functions::kLambdaLatest)) return not_found(req, call, ref->name);
  return f;
}

server::Response LambdaFunctionsApi::deploy(const server::Request& req, const Call& call,
                                            registry::FunctionConfig config, http::status status) {
  auto outcome = functions_.deploy(call.caller, std::move(config));
  if (const auto* d = std::get_if<FunctionsApi::Deployed>(&outcome)) {
    return lambda_ok(req, status, functions::lambda_function_configuration(d->function->record));
  }
  const FunctionsApi::DeployRefusal& refusal = std::get<FunctionsApi::DeployRefusal>(outcome);
  switch (refusal.kind) {
    case FunctionsApi::DeployRefusal::Kind::kStopping:
      return lambda_error(req, LambdaServiceError::kResourceConflict, refusal.message);
    case FunctionsApi::DeployRefusal::Kind::kInvalid:
    case FunctionsApi::DeployRefusal::Kind::kQuota:  // a limit of the tenant's, not a throttle to retry
      return lambda_error(req, LambdaServiceError::kInvalidParameterValue, refusal.message);
    case FunctionsApi::DeployRefusal::Kind::kState:
      break;
  }
  return lambda_error(req, LambdaServiceError::kService, refusal.message);
}

server::Response LambdaFunctionsApi::create(const server::Request& req, const Call& call) {
  auto in = functions::read_lambda_create(req.body(), call.caller.tenant);
  if (!in.ok()) return invalid(req, in.error());
  if (table_.find(call.caller.key(in->name))) {
    return lambda_error(req, LambdaServiceError::kResourceConflict, "Function already exist: " + in->name);
  }
  auto config = functions::merge_lambda_changes(in->name, nullptr, in->fields);
  if (!config.ok()) return invalid(req, config.error());
  return deploy(req, call, std::move(*config), http::status::created);
}

server::Response LambdaFunctionsApi::get(const server::Request& req, const Call& call) {
  auto found = find(req, call);
  if (auto* refusal = std::get_if<server::Response>(&found)) return std::move(*refusal);
  return lambda_ok(req, http::status::ok, functions::lambda_get_function(std::get<0>(found)->record));
}

server::Response LambdaFunctionsApi::get_configuration(const server::Request& req, const Call& call) {
  auto found = find(req, call);
  if (auto* refusal = std::get_if<server::Response>(&found)) return std::move(*refusal);
  return lambda_ok(req, http::status::ok, functions::lambda_function_configuration(std::get<0>(found)->record));
}

server::Response LambdaFunctionsApi::list(const server::Request& req, const Call& call) const {
  const auto& query = call.target.query;
  std::uint64_t max_items = functions::kLambdaDefaultPageSize;
  if (auto it = query.find("MaxItems"); it != query.end()) {
    auto v = query_uint(it->second, 1, functions::kLambdaMaxItems);
    if (!v) {
      return lambda_error(req, LambdaServiceError::kInvalidParameterValue,
                          "MaxItems: must be an integer from 1 to " + std::to_string(functions::kLambdaMaxItems));
    }
    max_items = std::min<std::uint64_t>(*v, functions::kLambdaDefaultPageSize);
  }
  // The marker is the last name of the previous page: the next page starts after it, so a
  // function created or deleted between pages neither repeats nor shifts the others.
  std::string marker;
  if (auto it = query.find("Marker"); it != query.end()) {
    if (auto problem = registry::function_name_problem(it->second)) {
      return lambda_error(req, LambdaServiceError::kInvalidParameterValue, "Marker: " + *problem);
    }
    marker = it->second;
  }
  // The caller's namespace only (an admin's too): every name listed is one GetFunction finds.
  json list = json::array();
  std::string last;
  bool more = false;
  for (const auto& [key, f] : table_.functions()) {  // by key, so by name within a namespace
    const registry::FunctionRecord& r = f.record;
    if (r.tenant != call.caller.tenant || (!marker.empty() && r.config.name <= marker)) continue;
    if (list.size() == max_items) {
      more = true;
      break;
    }
    list.push_back(functions::lambda_function_configuration(r));
    last = r.config.name;
  }
  json body = {{"Functions", std::move(list)}};
  if (more) body["NextMarker"] = last;
  return lambda_ok(req, http::status::ok, body);
}

server::Response LambdaFunctionsApi::update_code(const server::Request& req, const Call& call) {
  auto found = find(req, call);
  if (auto* refusal = std::get_if<server::Response>(&found)) return std::move(*refusal);
  const registry::FunctionRecord& current = std::get<0>(found)->record;
  auto in = functions::read_lambda_update_code(req.body(), current.config);
  if (!in.ok()) return invalid(req, in.error());
  auto config = functions::merge_lambda_changes(current.config.name, &current, in->fields);
  if (!config.ok()) return invalid(req, config.error());
  if (in->dry_run) return lambda_ok(req, http::status::ok, functions::lambda_function_configuration(current));
  return deploy(req, call, std::move(*config), http::status::ok);
}

server::Response LambdaFunctionsApi::update_configuration(const server::Request& req, const Call& call) {
  auto found = find(req, call);
  if (auto* refusal = std::get_if<server::Response>(&found)) return std::move(*refusal);
  const registry::FunctionRecord& current = std::get<0>(found)->record;
  auto in = functions::read_lambda_update_configuration(req.body());
  if (!in.ok()) return invalid(req, in.error());
  auto config = functions::merge_lambda_changes(current.config.name, &current, in->fields);
  if (!config.ok()) return invalid(req, config.error());
  return deploy(req, call, std::move(*config), http::status::ok);
}

server::Response LambdaFunctionsApi::remove(const server::Request& req, const Call& call) {
  auto found = find(req, call);
  if (auto* refusal = std::get_if<server::Response>(&found)) return std::move(*refusal);
  if (auto s = table_.remove(std::get<0>(found)->record.key()); !s.ok()) {
    return lambda_error(req, LambdaServiceError::kService, s.error().message);
  }
  auto res = server::make_response(req, http::status::no_content, "", "");
  res.set("x-amzn-RequestId", invoke::new_request_id());
  return res;
}

}  // namespace kiln::kilnd::api

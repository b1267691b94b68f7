// The function resource: list, deploy, get, delete, and the status summary.
#include "src/api/functions_api.h"

#include <map>

#include <nlohmann/json.hpp>

#include "src/api/responses.h"

namespace kiln::kilnd::api {
namespace {

using nlohmann::json;

// A function's record with its instances and pool counters (GET /v1/functions/{name}).
json function_json(const functions::Function& f) {
  json j = registry::record_to_api_json(f.record);
  json inst = json::array();
  json pool = nullptr;
  if (f.pool) {
    for (const auto& i : f.pool->instances()) {
      inst.push_back({{"id", i->id},
                      {"state", i->state == pool::InstanceState::kReady && i->in_flight > 0
                                    ? "busy"
                                    : pool::instance_state_name(i->state)},
                      {"in_flight", i->in_flight},
                      {"served", i->served},
                      {"version", i->version}});
    }
    auto s = f.pool->stats();
    pool = {{"starting", s.starting}, {"idle", s.ready}, {"busy", s.busy}, {"stopping", s.stopping},
            {"queued", s.queued}, {"cold_starts", s.cold_starts}, {"start_failures", s.start_failures},
            {"replaced", s.replaced}};
  }
  j["instances"] = inst;
  j["pool"] = pool;
  return j;
}

}  // namespace

server::Response FunctionsApi::list(const server::Request& req, const Call& call) const {
  json list = json::array();
  for (const auto& [key, f] : table_.functions()) {
    if (!call.caller.sees(f.record)) continue;
    auto s = f.pool ? f.pool->stats() : pool::PoolStats{};
    json e = {{"name", f.record.config.name},
              {"image", f.record.config.image},
              {"state", registry::image_state_name(f.record.image.state)},
              {"version", f.record.version},
              {"instances", s.starting + s.ready + s.busy},
              {"queued", s.queued}};
    if (!f.record.tenant.empty()) e["tenant"] = f.record.tenant;
    list.push_back(std::move(e));
  }
  return server::json_response(req, http::status::ok, {{"functions", list}});
}

server::Response FunctionsApi::get(const server::Request& req, const Call& call) {
  const functions::Function* f = table_.find(call.caller.key(call.name));
  return f ? server::json_response(req, http::status::ok, function_json(*f)) : function_not_found(req, call.name);
}

server::Response FunctionsApi::put(const server::Request& req, const Call& call) {
  if (table_.stopping()) return shutting_down(req);
  registry::FieldError fe;
  auto config = registry::parse_function_config(call.name, req.body(), &fe);
  if (!config.ok()) {
    http::status st = fe.field == "body" && req.body().size() > registry::kMaxConfigBytes
                          ? http::status::payload_too_large
                          : http::status::bad_request;
    return server::json_error(req, st, "invalid_field", fe.message, fe.field);
  }
  auto outcome = deploy(call.caller, std::move(*config));
  if (const auto* d = std::get_if<Deployed>(&outcome)) {
    return server::json_response(req, d->created ? http::status::created : http::status::ok,
                                 registry::record_to_api_json(d->function->record));
  }
  const DeployRefusal& refusal = std::get<DeployRefusal>(outcome);
  switch (refusal.kind) {
    case DeployRefusal::Kind::kStopping:
      return shutting_down(req);
    case DeployRefusal::Kind::kInvalid:
      return server::json_error(req, http::status::bad_request, "invalid_field", refusal.message, refusal.field);
    case DeployRefusal::Kind::kQuota:
      return quota_exceeded(req, refusal.field, refusal.message, false);
    case DeployRefusal::Kind::kState:
      break;
  }
  return server::json_error(req, http::status::internal_server_error, "state", refusal.message);
}

std::variant<FunctionsApi::Deployed, FunctionsApi::DeployRefusal> FunctionsApi::deploy(
    const Caller& caller, registry::FunctionConfig config) {
  using Kind = DeployRefusal::Kind;
  if (table_.stopping()) return DeployRefusal{Kind::kStopping, "", "kilnd is shutting down"};
  if (auto problem = table_.deploy_problem(config)) {
    return DeployRefusal{Kind::kInvalid, problem->field, problem->message};
  }
  const std::string& tenant = caller.tenant;
  const bool exists = table_.find(caller.key(config.name)) != nullptr;
  if (auto refusal = deploy_refusal(tenant, config, !exists)) {
    return DeployRefusal{Kind::kQuota, refusal->quota, refusal->message};
  }
  bool created = false;
  auto f = table_.deploy(tenant, std::move(config), &created);
  if (!f.ok()) return DeployRefusal{Kind::kState, "", f.error().message};
  return Deployed{*f, created};
}

server::Response FunctionsApi::remove(const server::Request& req, const Call& call) {
  const std::string key = call.caller.key(call.name);
  if (!table_.find(key)) return function_not_found(req, call.name);
  if (auto s = table_.remove(key); !s.ok()) {
    return server::json_error(req, http::status::internal_server_error, "state", s.error().message);
  }
  return server::make_response(req, http::status::no_content, "", "");
}

server::Response FunctionsApi::status(const server::Request& req, const Call& call) const {
  std::size_t functions = 0, instances = 0, queued = 0;
  std::map<std::string, std::size_t> states;
  for (const auto& [key, f] : table_.functions()) {
    if (!call.caller.sees(f.record)) continue;
    ++functions;
    ++states[registry::image_state_name(f.record.image.state)];
    if (!f.pool) continue;
    auto s = f.pool->stats();
    instances += s.starting + s.ready + s.busy;
    queued += s.queued;
  }
  json j = {{"version", info_.version},
            {"uptime_ms", functions::wall_ms() - info_.started_ms},
            {"functions", functions},
            {"functions_by_state", states},
            {"instances", instances},
            {"queued", queued},
            {"stopping", table_.stopping()}};
  const tenants::Principal& who = call.caller.principal;
  if (who.admin) j["state_dir"] = info_.state_dir;
  if (auth_.enabled()) {
    j["tenant"] = who.name;
    if (!who.admin) j["invocations_in_flight"] = invocations_.in_flight(call.caller.tenant);
  }
  return server::json_response(req, http::status::ok, j);
}

std::optional<FunctionsApi::QuotaRefusal> FunctionsApi::deploy_refusal(const std::string& tenant,
                                                                       const registry::FunctionConfig& c,
                                                                       bool created) const {
  const tenants::Quotas* q = table_.quotas_of(tenant);
  if (!q) return std::nullopt;
  std::size_t count = 0;
  std::uint64_t min_instances = c.min_instances;
  for (const auto& [key, f] : table_.functions()) {
    if (f.record.tenant != tenant) continue;
    ++count;
    if (f.record.config.name != c.name) min_instances += f.record.config.min_instances;
  }
  if (created && q->max_functions && count >= *q->max_functions) {
    return QuotaRefusal{"max_functions", "quota exceeded: tenant " + tenant + " already has " + std::to_string(count) +
                                             " functions (max_functions " + std::to_string(*q->max_functions) + ")"};
  }
  if (q->max_instances && min_instances > *q->max_instances) {
    return QuotaRefusal{"max_instances", "quota exceeded: min_instances over tenant " + tenant +
                                             "'s functions would be " + std::to_string(min_instances) +
                                             " (max_instances " + std::to_string(*q->max_instances) + ")"};
  }
  return std::nullopt;
}

}  // namespace kiln::kilnd::api

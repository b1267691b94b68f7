// kiln's event and web invocations.
#include "src/api/invoke_api.h"

#include <string>

#include <nlohmann/json.hpp>

#include "src/api/responses.h"
#include "src/functions/lambda_shapes.h"
#include "src/invoke/apigw_event.h"
#include "src/invoke/function_error.h"

namespace kiln::kilnd::api {
namespace {

http::status failure_status(invoke::InvokeStatus s) {
  switch (s) {
    case invoke::InvokeStatus::kOk: return http::status::ok;
    case invoke::InvokeStatus::kQueueFull: return http::status::too_many_requests;
    case invoke::InvokeStatus::kStartFailed: return http::status::bad_gateway;
    case invoke::InvokeStatus::kTimeout: return http::status::gateway_timeout;
    case invoke::InvokeStatus::kCrash: return http::status::bad_gateway;
    case invoke::InvokeStatus::kResponseTooLarge: return http::status::bad_gateway;
    case invoke::InvokeStatus::kShuttingDown: return http::status::service_unavailable;
  }
  return http::status::internal_server_error;
}

// The client's answer to an invocation that ran (or failed to). A web invocation of a
// lambda-mode function answers with the function's result mapped as function URLs map it.
server::Response outcome_response(const server::Request& req, const invoke::Invocation& inv, bool lambda_web) {
  const invoke::InvokeResult& r = inv.result;
  server::Response res;
  if (auto error = r.status == invoke::InvokeStatus::kOk ? invoke::function_error_of(r.response) : std::nullopt) {
    // A lambda-mode runtime's /error: a function error, 502 as function URLs answer it.
    nlohmann::json body = invoke::kiln_function_error_body(*error, inv.request_id);
    body["instance_id"] = r.instance_id;
    res = server::json_response(req, http::status::bad_gateway, body);
    res.set(invoke::kFunctionErrorHeader, "Unhandled");  // the type is in the body (a header must stay clean)
  } else if (r.status == invoke::InvokeStatus::kOk && lambda_web) {
    auto mapped = invoke::web_response_from_result(r.response.body(), req.version());
    if (mapped.ok()) {
      res = std::move(*mapped);
      res.keep_alive(req.keep_alive());
    } else {
      res = server::json_error(req, http::status::bad_gateway, "invalid_function_result", mapped.error().message);
    }
  } else if (r.status == invoke::InvokeStatus::kOk) {
    res = invoke::forward_response(r.response, req.version());
    res.keep_alive(req.keep_alive());
  } else {
    nlohmann::json body = {
        {"error", invoke::invoke_status_name(r.status)}, {"message", r.detail}, {"request_id", inv.request_id}};
    if (!r.instance_id.empty()) body["instance_id"] = r.instance_id;
    res = server::json_response(req, failure_status(r.status), body);
    if (r.status == invoke::InvokeStatus::kQueueFull) res.set(http::field::retry_after, "1");
  }
  res.set("X-Kiln-Request-Id", inv.request_id);
  if (!r.instance_id.empty()) res.set("X-Kiln-Instance-Id", r.instance_id);
  if (inv.leased) res.set("X-Kiln-Cold-Start", r.cold_start ? "1" : "0");
  return res;
}

}  // namespace

server::Response invoke_refusal(const server::Request& req, const invoke::Refusal& refusal) {
  switch (refusal.kind) {
    case invoke::RefusalKind::kNotFound:
      return function_not_found(req, refusal.name);
    case invoke::RefusalKind::kStopping:
      return shutting_down(req);
    case invoke::RefusalKind::kNotReady: {
      auto res = server::json_error(req, http::status::service_unavailable, "not_ready",
                                    "function " + refusal.name + " is not ready: image " +
                                        registry::image_state_name(refusal.image_state) +
                                        (refusal.image_reason.empty() ? "" : " (" + refusal.image_reason + ")"));
      res.set(http::field::retry_after, "1");
      return res;
    }
    case invoke::RefusalKind::kPayloadTooLarge:
      return server::json_error(req, http::status::payload_too_large, "payload_too_large",
                                "payload larger than 6 MiB (" + std::to_string(invoke::kMaxPayloadBytes) + " bytes)");
    case invoke::RefusalKind::kQuota:
      return quota_exceeded(req, refusal.quota, refusal.message, true);
  }
  return server::json_error(req, http::status::internal_server_error, "internal", "unknown refusal");
}

asio::awaitable<void> InvokeApi::event(server::Exchange& ex, const Call& call) { return invoke(ex, call, false); }

asio::awaitable<void> InvokeApi::web(server::Exchange& ex, const Call& call) { return invoke(ex, call, true); }

asio::awaitable<void> InvokeApi::invoke(server::Exchange& ex, const Call& call, bool web) {
  const server::Request& req = ex.request();
  auto admitted = invocations_.admit(call.caller.tenant, call.name, req.body().size());
  if (auto* refusal = std::get_if<invoke::Refusal>(&admitted)) co_return co_await ex.respond(invoke_refusal(req, *refusal));
  invoke::Admission& admission = std::get<invoke::Admission>(admitted);
  // A web request keeps its path as sent (undecoded): what follows /v1/functions/{name}/http.
  const bool lambda_web = web && admission.lambda_mode;
  invoke::GuestRequest guest;
  if (lambda_web) {
    // A Lambda runtime takes events only: the request becomes an API Gateway v2.0 event.
    invoke::WebEventContext ctx;
    ctx.request_id = admission.meta.request_id;
    ctx.account_id = functions::lambda_account(call.caller.tenant);
    ctx.api_id = call.name;
    ctx.source_ip = ex.peer_address();
    ctx.time_ms = functions::wall_ms();
    guest = invoke::make_event_request(
        admission.meta, invoke::make_apigw_event(req, "/" + call.params.at("path"), call.target.raw_query, ctx),
        "application/json");
  } else {
    guest = web ? invoke::make_web_request(admission.meta, req, "/" + call.params.at("path"), call.target.raw_query)
                : invoke::make_event_request(admission.meta, req.body(), std::string(req[http::field::content_type]));
  }
  invoke::Invocation inv = co_await invocations_.run(std::move(admission), std::move(guest), web ? "web" : "event");
  co_return co_await ex.respond(outcome_response(req, inv, lambda_web));
}

}  // namespace kiln::kilnd::api

// The Lambda-compatible Invoke path.
#include "src/api/lambda_api.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "common/base64/base64.h"

namespace kiln::kilnd::api {
namespace {

constexpr std::size_t kLogTailBytes = 4096;  // Lambda: the last 4 KB of the log

server::Response service_error(const server::Request& req, invoke::LambdaServiceError kind, std::string_view message) {
  return lambda_response(req, invoke::lambda_service_error(kind, message), invoke::new_request_id());
}

}  // namespace

server::Response lambda_response(const server::Request& req, const invoke::LambdaReply& reply,
                                 std::string_view request_id) {
  auto res = server::make_response(req, reply.status, reply.body, "");
  for (const auto& [k, v] : reply.headers) res.set(k, v);
  if (!request_id.empty()) res.set("x-amzn-RequestId", bsv(request_id));
  return res;
}

server::Response lambda_refusal(const server::Request& req, const invoke::Refusal& refusal) {
  using invoke::LambdaServiceError;
  switch (refusal.kind) {
    case invoke::RefusalKind::kNotFound:
      return service_error(req, LambdaServiceError::kResourceNotFound, "Function not found: " + refusal.name);
    case invoke::RefusalKind::kStopping:
    case invoke::RefusalKind::kNotReady:
      return service_error(
          req, LambdaServiceError::kResourceConflict,
          std::string("The operation cannot be performed at this time. The function is currently in the following "
                      "state: ") +
              (refusal.kind == invoke::RefusalKind::kStopping ? "Stopping"
                                                              : registry::image_state_name(refusal.image_state)));
    case invoke::RefusalKind::kPayloadTooLarge:
      return service_error(req, LambdaServiceError::kRequestTooLarge,
                           "Request must be smaller than " + std::to_string(invoke::kMaxPayloadBytes) +
                               " bytes for the InvokeFunction operation");
    case invoke::RefusalKind::kQuota:
      return service_error(req, LambdaServiceError::kTooManyRequests, refusal.message);
  }
  return service_error(req, LambdaServiceError::kService, "unknown refusal");
}

server::Response lambda_bad_name(const server::Request& req, const std::string& problem) {
  return service_error(req, invoke::LambdaServiceError::kInvalidParameterValue, "invalid function name: " + problem);
}

asio::awaitable<void> LambdaApi::invoke(server::Exchange& ex, const Call& call) {
  const server::Request& req = ex.request();
  auto type = invoke::parse_invocation_type(sv(req["X-Amz-Invocation-Type"]));
  auto admitted = invocations_.admit(call.caller.tenant, call.name, req.body().size(),
                                     type == invoke::InvocationType::kDryRun ? invoke::Admit::kCheckOnly
                                                                             : invoke::Admit::kInvoke);
  if (auto* refusal = std::get_if<invoke::Refusal>(&admitted)) co_return co_await ex.respond(lambda_refusal(req, *refusal));
  if (!type) {
    co_return co_await ex.respond(service_error(req, invoke::LambdaServiceError::kInvalidParameterValue,
                                                "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun"));
  }
  auto context = invoke::lambda_context(sv(req["X-Amz-Client-Context"]), sv(req["X-Amzn-Trace-Id"]));
  if (!context.ok()) {
    co_return co_await ex.respond(
        service_error(req, invoke::LambdaServiceError::kInvalidRequestContent, context.error().message));
  }
  std::string payload = req.body().empty() ? "{}" : req.body();
  if (nlohmann::json::parse(payload, nullptr, false).is_discarded()) {
    co_return co_await ex.respond(service_error(req, invoke::LambdaServiceError::kInvalidRequestContent,
                                                "Could not parse request body into json"));
  }
  if (*type == invoke::InvocationType::kDryRun) {
    co_return co_await ex.respond(server::make_response(req, http::status::no_content, "", ""));
  }
  invoke::Admission& admission = std::get<invoke::Admission>(admitted);
  const std::string key = admission.key;
  const std::string request_id = admission.meta.request_id;
  invoke::GuestRequest guest = invoke::make_event_request(admission.meta, std::move(payload), "application/json");
  invoke::add_lambda_context(guest, *context);
  if (*type == invoke::InvocationType::kEvent) {
    // Asynchronous: accepted now, run in the background (errors land in the logs); it holds
    // its quota slot until it ends.
    asio::co_spawn(io_, invocations_.run(std::move(admission), std::move(guest), "lambda"), asio::detached);
    auto accepted = server::make_response(req, http::status::accepted, "", "");
    accepted.set("x-amzn-RequestId", request_id);
    co_return co_await ex.respond(std::move(accepted));
  }
  invoke::Invocation inv = co_await invocations_.run(std::move(admission), std::move(guest), "lambda");
  auto res = lambda_response(req, invoke::lambda_from_result(inv.result, inv.request_id), inv.request_id);
  if (inv.logged && beast::iequals(req["X-Amz-Log-Type"], "Tail")) res.set("X-Amz-Log-Result", log_tail(key, request_id));
  co_return co_await ex.respond(std::move(res));
}

std::string LambdaApi::log_tail(const std::string& key, const std::string& request_id) const {
  logs::LogQuery q;
  q.request_id = request_id;
  std::string tail;
  for (const auto& e : logs_.query(key, q)) tail += e.text + "\n";
  if (tail.size() > kLogTailBytes) tail = tail.substr(tail.size() - kLogTailBytes);
  return base64::encode(tail);
}

}  // namespace kiln::kilnd::api

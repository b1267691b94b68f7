// Lambda Invoke API status codes and error bodies (AWS Lambda API reference, Invoke: Errors).
#include "src/invoke/lambda.h"

#include <nlohmann/json.hpp>

#include "common/base64/base64.h"
#include "src/invoke/function_error.h"

namespace kiln::kilnd::invoke {
namespace {

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

LambdaReply lambda_service_error(LambdaServiceError kind, std::string_view message) {
  LambdaReply r;
  std::string type = "User";
  std::string name;
  switch (kind) {
    case LambdaServiceError::kInvalidRequestContent:
      r.status = http::status::bad_request;
      name = "InvalidRequestContentException";
      break;
    case LambdaServiceError::kInvalidParameterValue:
      r.status = http::status::bad_request;
      name = "InvalidParameterValueException";
      break;
    case LambdaServiceError::kResourceNotFound:
      r.status = http::status::not_found;
      name = "ResourceNotFoundException";
      break;
    case LambdaServiceError::kResourceConflict:
      r.status = http::status::conflict;
      name = "ResourceConflictException";
      break;
    case LambdaServiceError::kRequestTooLarge:
      r.status = http::status::payload_too_large;
      name = "RequestTooLargeException";
      break;
    case LambdaServiceError::kTooManyRequests:
      r.status = http::status::too_many_requests;
      name = "TooManyRequestsException";
      break;
    case LambdaServiceError::kService:
      r.status = http::status::internal_server_error;
      name = "ServiceException";
      type = "Service";
      break;
    case LambdaServiceError::kResourceNotReady:
      r.status = http::status::bad_gateway;
      name = "ResourceNotReadyException";
      type = "Service";
      break;
  }
  nlohmann::json body = {{"Type", type}, {"message", message}};
  if (kind == LambdaServiceError::kTooManyRequests) {
    body["Reason"] = "ReservedFunctionConcurrentInvocationLimitExceeded";
    body["retryAfterSeconds"] = "1";
  }
  r.headers.emplace_back("x-amzn-ErrorType", name);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = dump(body);
  return r;
}

LambdaReply lambda_from_result(const InvokeResult& res, std::string_view request_id) {
  LambdaReply r;
  auto function_error = [&](std::string_view type, const std::string& message) {
    r.status = http::status::ok;
    r.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = dump({{"errorType", type}, {"errorMessage", "RequestId: " + std::string(request_id) + " Error: " + message}});
  };
  switch (res.status) {
    case InvokeStatus::kOk:
      if (auto error = function_error_of(res.response)) {  // the runtime's /error, as Lambda answers it
        r.status = http::status::ok;
        r.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
        r.headers.emplace_back("Content-Type", "application/json");
        r.body = dump(error->body);
        break;
      }
      if (res.response.result_int() >= 500) {
        r.status = http::status::ok;
        r.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
        r.headers.emplace_back("Content-Type", "application/json");
        r.body = res.response.body();
        break;
      }
      r.status = http::status::ok;
      r.headers.emplace_back("Content-Type", std::string(res.response[http::field::content_type]).empty()
                                                 ? std::string("application/json")
                                                 : std::string(res.response[http::field::content_type]));
      r.body = res.response.body();
      break;
    case InvokeStatus::kTimeout: function_error("Sandbox.Timedout", res.detail); break;
    case InvokeStatus::kCrash: function_error("Runtime.ExitError", res.detail); break;
    case InvokeStatus::kResponseTooLarge: function_error("Function.ResponseSizeTooLarge", res.detail); break;
    case InvokeStatus::kStartFailed:
      return lambda_service_error(LambdaServiceError::kResourceNotReady, res.detail);
    case InvokeStatus::kQueueFull:
      return lambda_service_error(LambdaServiceError::kTooManyRequests, "Rate Exceeded. " + res.detail);
    case InvokeStatus::kShuttingDown:
      return lambda_service_error(LambdaServiceError::kService, res.detail);
  }
  r.headers.emplace_back("X-Amz-Executed-Version", "$LATEST");
  return r;
}

Result<LambdaContext> lambda_context(std::string_view client_context_header, std::string_view trace_header) {
  constexpr std::size_t kMaxClientContext = 3583;
  constexpr std::size_t kMaxTraceId = 256;
  LambdaContext c;
  if (!client_context_header.empty()) {
    const std::string invalid = "Client context must be a valid Base64-encoded JSON object of at most " +
                                std::to_string(kMaxClientContext) + " bytes.";
    if (client_context_header.size() > kMaxClientContext) return make_error(invalid);
    auto decoded = base64::decode(client_context_header);
    if (!decoded.ok()) return make_error(invalid);
    auto j = nlohmann::json::parse(*decoded, nullptr, false);
    if (!j.is_object()) return make_error(invalid);
    c.client_context = dump(j);  // one line: the runtime's header cannot hold a line break
  }
  bool printable = trace_header.size() <= kMaxTraceId;
  for (char ch : trace_header) printable = printable && ch >= 0x20 && ch < 0x7f;
  if (printable) c.trace_id = std::string(trace_header);
  return c;
}

void add_lambda_context(GuestRequest& req, const LambdaContext& context) {
  if (!context.client_context.empty()) req.set("X-Amz-Client-Context", context.client_context);
  if (!context.trace_id.empty()) req.set("X-Amzn-Trace-Id", context.trace_id);
}

std::optional<InvocationType> parse_invocation_type(std::string_view h) {
  if (h.empty() || h == "RequestResponse") return InvocationType::kRequestResponse;
  if (h == "Event") return InvocationType::kEvent;
  if (h == "DryRun") return InvocationType::kDryRun;
  return std::nullopt;
}

}  // namespace kiln::kilnd::invoke

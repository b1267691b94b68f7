// The Lambda-compatible invoke path (POST /2015-03-31/functions/{name}/invocations): service
// errors as Lambda documents them (status, x-amzn-ErrorType, {"Type","message"} body) and
// function errors as 200 + X-Amz-Function-Error: Unhandled with {"errorType","errorMessage"}.
#pragma once

#include <string>
#include <optional>
#include <utility>
#include <vector>
#include <string_view>

#include "common/result.h"
#include "src/invoke/invoker.h"

namespace kiln::kilnd::invoke {

enum class LambdaServiceError {
  kInvalidRequestContent,  // 400: body is not JSON
  kInvalidParameterValue,  // 400: bad header (invocation type, log type)
  kResourceNotFound,  // 404
  kResourceConflict,  // 409: function not ready (image pending/building/failed)
  kRequestTooLarge,  // 413
  kTooManyRequests,  // 429
  kService,  // 500
  kResourceNotReady,  // 502: the instance could not start
};

struct LambdaReply {
  http::status status = http::status::ok;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

LambdaReply lambda_service_error(LambdaServiceError kind, std::string_view message);

// Maps an invocation result to Lambda's answer. The function's payload is the guest's body;
// a runtime's error (X-Kiln-Function-Error, function_error.h) is 200 + X-Amz-Function-Error:
// Unhandled with the runtime's error body; a guest status >= 500 is an unhandled function error too.
LambdaReply lambda_from_result(const InvokeResult& r, std::string_view request_id);

// What an Invoke request tells the runtime about its caller (Runtime API headers
// Lambda-Runtime-Client-Context and Lambda-Runtime-Trace-Id; kiln-init reads them from the guest
// request's X-Amz-Client-Context and X-Amzn-Trace-Id).
struct LambdaContext {
  std::string client_context;  // one line of JSON, or empty
  std::string trace_id;        // or empty
};
// X-Amz-Client-Context is base64 of a JSON object, at most 3,583 bytes of base64 (Invoke API);
// anything else is an error whose message InvalidRequestContentException carries. The trace id
// is kept when it is printable ASCII of at most 256 bytes, else dropped.
Result<LambdaContext> lambda_context(std::string_view client_context_header, std::string_view trace_header);
// Sets the non-empty parts on the guest request.
void add_lambda_context(GuestRequest& req, const LambdaContext& context);

enum class InvocationType { kRequestResponse, kEvent, kDryRun };
// X-Amz-Invocation-Type; empty = RequestResponse. nullopt for anything else.
std::optional<InvocationType> parse_invocation_type(std::string_view header);

}  // namespace kiln::kilnd::invoke

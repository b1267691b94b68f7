// LambdaApi: AWS Lambda's Invoke (POST /2015-03-31/functions/{name}/invocations) in Lambda's
// dialect: X-Amz-Invocation-Type RequestResponse, Event (202, runs in the background) or
// DryRun (204); X-Amz-Log-Type: Tail (the last 4 KB of the request's log lines, base64, in
// X-Amz-Log-Result); service errors as AWS sends them (status, x-amzn-ErrorType,
// {"Type","message"}, x-amzn-RequestId), function errors as 200 + X-Amz-Function-Error.
#pragma once

#include <string>
#include <string_view>

#include "src/api/dispatcher.h"
#include "src/invoke/invocation_service.h"
#include "src/invoke/lambda.h"
#include "src/logs/log_store.h"

namespace kiln::kilnd::api {

// Lambda's answer to a service error or an invocation's outcome.
server::Response lambda_response(const server::Request& req, const invoke::LambdaReply& reply,
                                 std::string_view request_id);
// A refused invocation in Lambda's dialect: 404 ResourceNotFoundException, 409
// ResourceConflictException (stopping, not ready), 413 RequestTooLargeException, 429
// TooManyRequestsException; with a fresh x-amzn-RequestId, as AWS answers every request.
server::Response lambda_refusal(const server::Request& req, const invoke::Refusal& refusal);
// A malformed {name}: 400 InvalidParameterValueException.
server::Response lambda_bad_name(const server::Request& req, const std::string& problem);
class LambdaApi {
 public:
  LambdaApi(asio::io_context& io, invoke::InvocationService& invocations, const logs::LogStore& logs)
      : io_(io), invocations_(invocations), logs_(logs) {}

  asio::awaitable<void> invoke(server::Exchange& ex, const Call& call);

 private:
  // The request's log lines, at most Lambda's last 4 KB, base64.
  std::string log_tail(const std::string& key, const std::string& request_id) const;

  asio::io_context& io_;
  invoke::InvocationService& invocations_;
  const logs::LogStore& logs_;
};

}  // namespace kiln::kilnd::api

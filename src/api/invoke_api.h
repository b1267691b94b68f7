// InvokeApi: kiln's invocations: POST /v1/functions/{name}/invoke (an event: the guest's
// POST /event-invoke) and * /v1/functions/{name}/http/{*path} (a web request forwarded as
// sent). The guest's answer goes back with X-Kiln-Request-Id, X-Kiln-Instance-Id and
// X-Kiln-Cold-Start; refusals and failures are kiln's JSON errors.
#pragma once

#include "src/api/dispatcher.h"
#include "src/invoke/invocation_service.h"

namespace kiln::kilnd::api {

// A refused invocation in kiln's dialect: 404 not_found, 503 stopping, 503 not_ready
// (Retry-After: 1), 413 payload_too_large, 429 quota_exceeded (Retry-After: 1).
server::Response invoke_refusal(const server::Request& req, const invoke::Refusal& refusal);

class InvokeApi {
 public:
  explicit InvokeApi(invoke::InvocationService& invocations) : invocations_(invocations) {}

  asio::awaitable<void> event(server::Exchange& ex, const Call& call);
  asio::awaitable<void> web(server::Exchange& ex, const Call& call);

 private:
  asio::awaitable<void> invoke(server::Exchange& ex, const Call& call, bool web);

  invoke::InvocationService& invocations_;
};

}  // namespace kiln::kilnd::api

// Answers several kilnd API resources share (kiln's JSON dialect).
#pragma once

#include <string_view>

#include "src/server/http_server.h"

namespace kiln::kilnd::api {

// The one answer for a function the caller cannot see: missing, or another tenant's (404).
server::Response function_not_found(const server::Request& req, std::string_view name);

// 429 {"error":"quota_exceeded","quota":Q,"message":M}; `retry`: with Retry-After: 1
// (invocations may retry; deploys wait for a delete instead).
server::Response quota_exceeded(const server::Request& req, std::string_view quota, std::string_view message,
                                bool retry);

// 503 while kilnd shuts down.
server::Response shutting_down(const server::Request& req);

}  // namespace kiln::kilnd::api

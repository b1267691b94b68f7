// Invoker: one invocation against a function's pool: wait for a lease (bounded by the pool's
// start allowance plus the timeout: as in Lambda, a cold start's init is not billed against the
// timeout), take a kept-alive stream of the instance or open one to its port 9000, send the HTTP
// request, read the answer with a size cap, keep the stream if the server keeps it (HTTP/1.1),
// and report the outcome to the pool (a timed-out instance is recycled, a broken one
// replaced). The timeout runs from the lease; nothing outlives these two deadlines.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>
#include <string>

#include "src/pool/function_pool.h"
#include "src/server/net.h"

namespace kiln::kilnd::invoke {

using GuestRequest = http::request<http::string_body>;
using GuestResponse = http::response<http::string_body>;

inline constexpr std::size_t kMaxPayloadBytes = 6 * 1024 * 1024;  // Lambda's synchronous cap

enum class InvokeStatus {
  kOk,  // the function answered (any HTTP status)
  kQueueFull,  // 429
  kStartFailed,  // the instance could not start: 502
  kTimeout,  // deadline passed (queued or running): 504
  kCrash,  // the connection broke before a full answer: 502
  kResponseTooLarge,  // answer over the cap: 502
  kShuttingDown,  // 503
};
const char* invoke_status_name(InvokeStatus s);

struct InvokeResult {
  InvokeStatus status = InvokeStatus::kOk;
  std::string detail;  // human-readable reason for every non-ok status
  GuestResponse response;
  std::string instance_id;
  bool cold_start = false;
  double init_duration_ms = 0;
  double duration_ms = 0;  // from the lease to the answer
  double queued_ms = 0;  // waiting for a lease
  std::uint64_t max_memory_mib = 0;
};

struct InvokeOptions {
  std::chrono::milliseconds timeout{3000};
  std::size_t max_response_bytes = kMaxPayloadBytes;
};

// `on_lease` (optional) runs when an instance was assigned (START line, request<->instance
// attribution of guest logs); `on_done_lease` when it is given back.
struct InvokeHooks {
  std::function<void(const std::string& instance_id)> leased;
  std::function<void(const std::string& instance_id)> released;
};

asio::awaitable<InvokeResult> invoke(std::shared_ptr<pool::FunctionPool> pool, GuestRequest request,
                                     InvokeOptions options, InvokeHooks hooks = {});

}  // namespace kiln::kilnd::invoke

// RuntimeApiCore: the AWS Lambda Runtime API as a pure state machine (no sockets, no clock):
// at most one invocation queued or outstanding (Lambda's concurrency of 1 per instance) and
// at most one parked `next` long poll. The Lambda bridge feeds it complete requests from the
// runtime and invocations from kilnd, and writes the answers it returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "guest-agent/agent/http_message.h"

namespace kiln::agent {

inline constexpr std::size_t kMaxLambdaPayload = 6 * 1024 * 1024;  // Lambda's synchronous limit

struct Invocation {
  std::string id;
  std::string payload;
  std::uint64_t deadline_ms = 0;  // wall clock, ms since the epoch
  std::string trace_id;           // each optional: the header is left out when empty
  std::string client_context;
  std::string cognito_identity;
};

struct ApiAnswer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// What becomes of an invocation, for kilnd.
struct InvocationResult {
  std::string id;
  bool function_error = false;
  std::string error_type;  // Lambda-Runtime-Function-Error-Type, or ours (size limit)
  std::string body;        // the response, or the error JSON
};

class RuntimeApiCore {
 public:
  struct Outcome {
    bool park = false;  // a `next` with nothing to hand out: keep the connection, answer later
    ApiAnswer answer;   // otherwise: write this
    std::optional<InvocationResult> result;  // an invocation was answered (or failed)
    std::optional<std::string> init_error;   // the runtime reported an init error (its body)
    bool first_next = false;                 // this was the runtime's first `next`: it is ready
  };

  explicit RuntimeApiCore(std::string function_arn) : function_arn_(std::move(function_arn)) {}

  // From kilnd. Fails while another invocation is queued or outstanding.
  Status submit(Invocation inv);
  // When a `next` is parked and an invocation queued: the parked poll's answer (the invocation
  // is then outstanding). Call after submit() and after handle() returned park.
  std::optional<ApiAnswer> dispatch();
  // The parked `next`'s connection closed.
  void unpark() { parked_ = false; }
  // kilnd gave up on an invocation (its connection closed): forget it, queued or outstanding.
  void cancel(std::string_view id);

  // A complete request from the runtime.
  Outcome handle(const HttpRequest& req);
  // A request whose body exceeded kMaxLambdaPayload (only its head was read).
  Outcome handle_oversize(const HttpRequest& head);

  bool parked() const { return parked_; }
  bool busy() const { return queued_.has_value() || !outstanding_.empty(); }
  const std::string& outstanding() const { return outstanding_; }

  // Lambda's error body shape.
  static std::string error_json(std::string_view type, std::string_view message);

 private:
  Outcome answer_id(std::string_view id, bool is_error, const HttpRequest& req);
  ApiAnswer next_answer(const Invocation& inv);

  std::string function_arn_;
  std::optional<Invocation> queued_;
  std::string outstanding_;
  std::string last_answered_;
  bool parked_ = false;
  bool seen_next_ = false;
};

}  // namespace kiln::agent

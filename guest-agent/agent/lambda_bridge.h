// LambdaBridge: kiln-init's lambda mode. kilnd's invocations arrive as HTTP requests on port
// 9000 (as in http9000 mode); instead of splicing them to the function, the bridge serves the
// Lambda Runtime API on 127.0.0.1 (RuntimeApiCore decides every answer), hands each request's
// body to the runtime's `next` long poll and answers kilnd with the runtime's response or error.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/event_loop/event_loop.h"
#include "common/protocol/launch_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "guest-agent/agent/http_message.h"
#include "guest-agent/agent/runtime_api.h"

namespace kiln::agent {

// kilnd's answer for a function error: this header (value "Unhandled", as Lambda's
// X-Amz-Function-Error) on a 500 whose body is the runtime's error JSON.
inline constexpr const char* kFunctionErrorHeader = "X-Kiln-Function-Error";
inline constexpr const char* kFunctionErrorTypeHeader = "X-Kiln-Function-Error-Type";

class LambdaBridge {
 public:
  static constexpr std::size_t kMaxHostConns = 1024;
  // A runtime uses one or two connections; each may buffer a 6 MiB body in PID 1's memory.
  static constexpr std::size_t kMaxRuntimeConns = 8;
  static constexpr std::size_t kMaxRequestId = 128;

  struct Callbacks {
    std::function<void()> ready;  // the runtime's first `next`
    std::function<void(const std::string& error_json)> init_error;
    // Log attribution (RequestTracker): an invocation queued for the runtime (it cannot have
    // seen it yet), its answer, the kilnd connection's end.
    std::function<void(std::uint64_t conn, const std::string& request_id)> started;
    std::function<void(std::uint64_t conn)> answered;
    std::function<void(std::uint64_t conn)> closed;
    std::function<void(const std::string&)> report;  // one line for the function's log
  };

  LambdaBridge(EventLoop& loop, UniqueFd host_listener, UniqueFd api_listener, const protocol::LaunchSpec& spec,
               Callbacks cb);
  ~LambdaBridge();
  LambdaBridge(const LambdaBridge&) = delete;
  LambdaBridge& operator=(const LambdaBridge&) = delete;

  Status start();

 private:
  struct Conn;
  void on_accept(bool host);
  void on_conn(std::uint64_t id, std::uint32_t events);
  void process(std::uint64_t id);
  void host_request(std::uint64_t id, HttpRequest req);
  void runtime_request(std::uint64_t id, HttpRequest req);
  void deliver(const InvocationResult& r);
  void pump();
  void send(std::uint64_t id, const std::string& bytes, bool close);
  void flush(std::uint64_t id);
  void close_conn(std::uint64_t id);
  void rearm(std::uint64_t id);
  Conn* find(std::uint64_t id);

  EventLoop& loop_;
  UniqueFd host_listener_;
  UniqueFd api_listener_;
  protocol::LambdaSpec lambda_;
  Callbacks cb_;
  RuntimeApiCore core_;
  std::map<std::uint64_t, std::unique_ptr<Conn>> conns_;
  std::map<std::string, std::uint64_t> waiting_;  // invocation id -> kilnd connection
  std::uint64_t parked_conn_ = 0;
  std::uint64_t next_id_ = 1;
  std::uint64_t generated_ids_ = 0;
  std::size_t host_conns_ = 0;
  std::size_t runtime_conns_ = 0;
};

}  // namespace kiln::agent

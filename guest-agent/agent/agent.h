// Agent: kiln-init's event loop. Wires the control port (launch spec, status, identity,
// shutdown), the event stream to the host, the invocation proxy, the supervisor and the
// readiness probe; the same code runs as PID 1 in the guest and under test with Unix sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/protocol/frame.h"
#include "common/protocol/launch_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "guest-agent/agent/endpoint.h"
#include "common/event_loop/event_loop.h"
#include "guest-agent/agent/event_stream.h"
#include "guest-agent/agent/lambda_bridge.h"
#include "guest-agent/agent/proxy.h"
#include "guest-agent/agent/request_tracker.h"
#include "guest-agent/agent/supervisor.h"

namespace kiln::agent {

inline constexpr std::uint32_t kProxyPort = 9000;
inline constexpr std::uint32_t kControlPort = 10000;
inline constexpr std::uint32_t kEventsPort = 10001;
inline constexpr std::uint16_t kRuntimeApiPort = 9001;  // lambda mode: 127.0.0.1, for the function

struct AgentOptions {
  Endpoint control = Endpoint::vsock(kVsockAnyCid, kControlPort);
  Endpoint proxy = Endpoint::vsock(kVsockAnyCid, kProxyPort);
  Endpoint events = Endpoint::vsock(kVsockHostCid, kEventsPort);
  // Lambda mode's Runtime API port on 127.0.0.1 (0 = any free port: tests).
  std::uint16_t runtime_api_port = kRuntimeApiPort;
  // A spec known at start (config drive); otherwise the agent waits for one on `control`.
  std::optional<protocol::LaunchSpec> spec;
  // Runs once, right before the command starts (the guest mounts the image and pivots here).
  std::function<Status(const protocol::LaunchSpec&)> prepare_root;
  // Runs on each identity request (after a snapshot restore), once hostname, clock and entropy
  // are applied: the guest refreshes its network here. Its note goes into the identity ack's
  // message (not to the serial console: that costs the restore ~1 ms a byte in a nested test
  // host); an error makes the identity ack fail.
  std::function<Result<std::string>()> after_identity;
  // Where user names are resolved (read after prepare_root).
  std::string passwd_path = "/etc/passwd";
  std::string group_path = "/etc/group";
  // PID 1 of a guest (or of a test's namespaces): may set hostname and clock, and at the end
  // SIGKILLs and reaps every remaining process.
  bool pid1 = false;
  std::string version = "0.1.0";
  std::string boot_id;
  std::uint64_t drain_ms = 1000;  // wait for pipe EOF after the command exits
  std::uint64_t flush_ms = 3000;  // wait for the host to take the last events
  std::uint64_t probe_interval_ms = 10;
  EventStreamLimits limits;
  std::function<void(const std::string&)> console;  // diagnostics (the serial console)
};

class Agent {
 public:
  enum class State { kWaiting, kStarting, kReady, kNotReady, kStopping, kExited };

  explicit Agent(AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs until the command has exited (or a shutdown finished) and the final events were
  // flushed. Errors only for setup failures (sockets, epoll, signalfd).
  Status run();

  State state() const { return state_; }
  const ExitInfo& exit_info() const { return exit_; }
  static const char* state_name(State s);

 private:
  struct ControlConn;
  void on_signal();
  void on_control_accept();
  void on_control(std::uint64_t id, std::uint32_t events);
  void close_control(std::uint64_t id);
  void handle_request(ControlConn& c, const protocol::Frame& f);
  void launch(const protocol::LaunchSpec& spec);
  void launch_failed(const std::string& message, int code);
  void probe();
  // Lambda mode: serves the Runtime API, adds Lambda's environment to *spec.
  Status start_lambda(protocol::LaunchSpec* spec);
  void lambda_ready();
  void lambda_init_error(const std::string& error_json);
  void shutdown(std::uint64_t grace_ms, int first_signal);
  void on_exited(const ExitInfo& info);
  void finish();
  void say(const std::string& msg);
  protocol::HelloEvent hello() const;

  AgentOptions opt_;
  EventLoop loop_;
  UniqueFd signal_fd_;
  UniqueFd control_listener_;
  std::unique_ptr<EventStream> events_;
  std::unique_ptr<Proxy> proxy_;
  std::unique_ptr<LambdaBridge> bridge_;
  std::uint16_t api_port_ = 0;
  std::unique_ptr<Supervisor> supervisor_;
  RequestTracker requests_;  // which invocation the command's output belongs to
  std::map<std::uint64_t, std::unique_ptr<ControlConn>> controls_;
  std::uint64_t next_control_ = 1;
  State state_ = State::kWaiting;
  protocol::LaunchSpec spec_;
  std::string instance_id_;
  std::uint64_t boot_ms_ = 0;
  std::uint64_t started_ms_ = 0;
  bool ready_ = false;
  bool probing_ = false;
  bool not_ready_sent_ = false;
  UniqueFd probe_fd_;
  EventLoop::TimerId probe_timer_ = 0;
  EventLoop::TimerId kill_timer_ = 0;
  bool finishing_ = false;
  bool exited_ = false;
  ExitInfo exit_;
};

}  // namespace kiln::agent

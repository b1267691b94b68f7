// AgentLink: kilnd's side of kiln-init in one VM, over the VMM's hybrid-vsock sockets: the event
// stream the agent opens to host port 10001 (hello, ready, logs, exit ...), requests on control
// port 10000 (launch spec, identity after a restore, status, shutdown) and fresh streams to the
// invocation port. One per VMM process (its sockets go with it).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/protocol/frame.h"
#include "common/protocol/launch_spec.h"
#include "common/result.h"
#include "src/pool/vm_backend.h"

namespace kiln::kilnd::pool {

struct AgentTimeouts {
  std::chrono::milliseconds connect{30000};  // a hybrid-vsock connect and its one request
  std::chrono::milliseconds check{5000};  // a status request
};

class AgentLink : public std::enable_shared_from_this<AgentLink> {
 public:
  using Clock = std::chrono::steady_clock;
  using EventHandler = std::function<void(const protocol::Frame&)>;

  // `vsock`: the host path of the VMM's hybrid-vsock socket.
  AgentLink(asio::io_context& io, std::string vsock, AgentTimeouts timeouts);

  // Listens at `<vsock>_10001` for the agent's event connection; `share` makes the socket
  // reachable to the VMM. Each event frame goes to `on_event` until close(); a new connection
  // replaces the old one (the agent reconnects after a transport reset); accepting stops once
  // `accepting()` is false.
  Status listen(const std::function<Status(const std::string& path)>& share, EventHandler on_event,
                std::function<bool()> accepting);
  void close();  // the listener and the event connection

  // A fresh stream to the function's port (kiln-init splices it to the server).
  asio::awaitable<Result<local::socket>> connect_invoke();
  asio::awaitable<Status> send_launch_spec(const protocol::LaunchSpec& spec);
  // This instance's identity after a restore (instance id, hostname, wall clock, fresh
  // entropy), retried while the guest takes in the vsock transport reset, until the connect
  // timeout or `give_up()`. Returns the attempts it took (0: gave up) and the guest's ack
  // message ("identity applied", plus what kiln-init refreshed: its network).
  struct IdentitySent {
    int attempts = 0;
    std::string message;
  };
  asio::awaitable<Result<IdentitySent>> send_identity(const std::string& hostname, const std::string& instance_id,
                                             const std::function<bool()>& give_up);
  // The agent's status: ready and the command not exited.
  asio::awaitable<bool> healthy();
  // Asks kiln-init to stop the command (SIGTERM, `grace`, SIGKILL) and reboot; bounded by `deadline`.
  asio::awaitable<void> request_shutdown(std::chrono::milliseconds grace, Clock::time_point deadline);

 private:
  static asio::awaitable<void> accept_events(std::shared_ptr<AgentLink> self);
  static asio::awaitable<void> read_events(std::shared_ptr<AgentLink> self, std::shared_ptr<local::socket> sock);

  asio::io_context& io_;
  std::string vsock_;
  AgentTimeouts timeouts_;
  local::acceptor acceptor_;
  std::shared_ptr<local::socket> events_sock_;
  EventHandler on_event_;
  std::function<bool()> accepting_;
};

}  // namespace kiln::kilnd::pool

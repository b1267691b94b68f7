// NbdServer: one export on a Unix socket; each connection is a session (nbd_session.h) on its own
// threads. kilnd runs one per lazy image, its socket bound into the jails of the instances that
// boot from it; kiln-vmm is the client.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"
#include "src/lazy/nbd_session.h"

namespace kiln::kilnd::lazy {

struct NbdServerOptions {
  std::string export_name = "rootfs";
  uint32_t max_connections = 16;  // more are closed at once
  mode_t socket_mode = 0600;      // of the socket file (connecting needs write permission)
  NbdSessionLimits session;
};

class NbdServer {
 public:
  // Listens on `socket_path` (a stale socket file there is replaced; options.socket_mode).
  static Result<std::unique_ptr<NbdServer>> start(const std::string& socket_path, std::shared_ptr<NbdExport> exp,
                                                  NbdServerOptions options = {});
  // Stops accepting, shuts every connection down and joins their threads.
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  const std::string& socket_path() const { return path_; }
  uint64_t connections() const { return connections_.load(); }
  // Sessions that ended with an error (a client that broke the protocol, a failed socket).
  uint64_t session_errors() const { return session_errors_.load(); }
  // The last such error's text ("" if none).
  std::string last_error() const;

 private:
  struct Connection {
    UniqueFd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  NbdServer(std::string path, UniqueFd listener, std::shared_ptr<NbdExport> exp, NbdServerOptions options);
  void accept_loop();
  void reap_locked();  // joins finished sessions

  const std::string path_;
  const UniqueFd listener_;
  const std::shared_ptr<NbdExport> exp_;
  const NbdServerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> session_errors_{0};
  mutable std::mutex mu_;
  std::list<Connection> live_;
  std::string last_error_;
  std::thread acceptor_;
};

}  // namespace kiln::kilnd::lazy

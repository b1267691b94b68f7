// VsockUnixMuxer: the vsock backend for Firecracker's hybrid vsock, on the event loop. Host
// programs connect to `uds_path` and send "CONNECT <port>\n" (common/protocol/hybrid_vsock.h);
// a guest connection to host port P dials "<uds_path>_<P>".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/devices/tick_timer.h"
#include "vmm/devices/vsock_backend.h"
#include "common/event_loop/event_loop.h"

namespace kiln::vmm::devices {

struct VsockUnixMuxerConfig {
  std::string uds_path;
  size_t max_connections = 1024;  // pending handshakes + the device's connections
  // A host client must finish its CONNECT line within this time.
  std::chrono::milliseconds handshake_timeout{5000};
};

class VsockUnixMuxer : public VsockBackend {
 public:
  // Binds and listens on uds_path (which must not exist yet). The loop must outlive the muxer;
  // destroy it on the loop thread or after the loop stopped. The destructor unlinks uds_path.
  static Result<std::unique_ptr<VsockUnixMuxer>> create(VsockUnixMuxerConfig config, EventLoop& loop);
  ~VsockUnixMuxer() override;
  VsockUnixMuxer(const VsockUnixMuxer&) = delete;
  VsockUnixMuxer& operator=(const VsockUnixMuxer&) = delete;

  Status start(VsockBackendSink& sink) override;
  Result<std::unique_ptr<VsockHostStream>> connect(uint32_t port) override;
  size_t pending_count() const override;

 private:
  struct Handshake {  // host client that has not finished its CONNECT line
    UniqueFd fd;
    std::string line;
    std::chrono::steady_clock::time_point deadline;
  };

  VsockUnixMuxer(VsockUnixMuxerConfig config, EventLoop& loop, UniqueFd listener,
                 std::unique_ptr<TickTimer> timer)
      : config_(std::move(config)), loop_(loop), listener_(std::move(listener)), timer_(std::move(timer)) {}

  // Event-loop callbacks: they take mu_ and release it before calling the sink.
  void on_listener();
  void on_handshake(int fd, uint32_t events);
  void on_timer();
  // mu_ held.
  void drop_handshake(int fd);

  const VsockUnixMuxerConfig config_;
  EventLoop& loop_;
  const UniqueFd listener_;
  const std::unique_ptr<TickTimer> timer_;  // ticks while handshakes are pending
  VsockBackendSink* sink_ = nullptr;

  mutable std::mutex mu_;
  std::map<int, std::unique_ptr<Handshake>> handshakes_;
};

}  // namespace kiln::vmm::devices

// VsockDevice: virtio-vsock (virtio 1.2 §5.10) with Firecracker's hybrid vsock host side:
// host programs connect to the Unix socket `uds_path` and write "CONNECT <port>\n"; guest
// connections to host port P are forwarded to the Unix socket "<uds_path>_<P>".
// Socket I/O runs on the event loop; stream semantics live in VsockConnection.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/devices/vsock_connection.h"
#include "vmm/devices/vsock_packet.h"
#include "vmm/event_loop/event_loop.h"
#include "vmm/virtio/virtio_device.h"

namespace kiln::vmm::devices {

struct VsockDeviceConfig {
  uint64_t guest_cid = 3;
  std::string uds_path;
  VsockConnection::Options connection;
  size_t max_connections = 1024;  // host clients (incl. handshakes) + guest connections
  // A host client must finish its CONNECT line within this time.
  std::chrono::milliseconds handshake_timeout{5000};
  // The guest must answer a host-initiated REQUEST within this time (else RST + close). A guest
  // with nothing listening answers at once (RST); this bounds only a guest too busy to answer,
  // which on an oversubscribed host (20 microVMs on 2 emulated cores here) can take seconds.
  std::chrono::milliseconds connect_timeout{10000};
};

class VsockDevice : public virtio::VirtioDevice {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  static inline constexpr uint16_t kRxQueue = 0;
  static inline constexpr uint16_t kTxQueue = 1;
  static inline constexpr uint16_t kEventQueue = 2;
  // First port handed to host-initiated connections (as Firecracker: "OK 1073741824").
  static inline constexpr uint32_t kFirstLocalPort = 1u << 30;

  // Binds and listens on uds_path (which must not exist yet) and registers with `loop`.
  // The loop must outlive the device; destroy the device on the loop thread or after the
  // loop stopped. The destructor unlinks uds_path.
  static Result<std::shared_ptr<VsockDevice>> create(const VsockDeviceConfig& config,
                                                     EventLoop& loop);
  ~VsockDevice() override;

  // Snapshot restore: drops every connection and posts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
  // on the event queue (virtio 1.2 §5.10.6.8). Fails if the device is not active or the
  // driver left no event buffer.
  Status send_transport_reset();
  size_t connection_count() const;
  // Extra state (e.g. the VMM's vCPU exit counts) appended to the warning logged when the
  // guest does not answer a connection: what a diagnosis of an unresponsive guest needs.
  void set_diagnostics(std::function<std::string()> fn) { diagnostics_ = std::move(fn); }

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kQueueSize, kQueueSize, kQueueSize};
  }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  Status activate(const GuestMemory& mem, std::vector<virtio::Queue> queues,
                  uint64_t acked_features, virtio::Interrupt& interrupt) override;
  Status process_queue(uint16_t index) override;
  void reset() override;
  virtio::DeviceCounters counters() const override { return counters_.snapshot(); }
  std::vector<virtio::QueuePosition> queue_positions() const override {
    std::lock_guard lock(mu_);
    return virtio::positions_of(queues_);
  }

 private:
  using Key = std::pair<uint32_t, uint32_t>;  // (local/host port, peer/guest port)

  struct Handshake {  // host client that has not finished its CONNECT line
    UniqueFd fd;
    std::string line;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Conn {
    Conn(UniqueFd f, VsockConnection s) : fd(std::move(f)), sm(std::move(s)) {}
    UniqueFd fd;
    VsockConnection sm;
    uint32_t events = 0;  // current epoll interest
    bool registered = false;
    bool hup = false;  // the socket hung up: no more reads or writes
    std::optional<std::chrono::steady_clock::time_point> connect_deadline;  // host-initiated
  };

  VsockDevice(const VsockDeviceConfig& config, EventLoop& loop, UniqueFd listener, UniqueFd timer)
      : config_(config), loop_(loop), listener_(std::move(listener)), timer_(std::move(timer)) {}

  // Event-loop callbacks (take mu_).
  void on_listener(uint32_t events);
  void on_handshake(int fd, uint32_t events);
  void on_conn(Key key, uint32_t events);
  void read_host(Conn& c);

  // Helpers (mu_ held).
  void finish_handshake(int fd, uint32_t port);
  void drop_handshake(int fd);
  void handle_guest_packet(const VsockHeader& h, std::span<const uint8_t> payload);
  void connect_to_host(const VsockHeader& request);
  void queue_rst(const VsockHeader& reply);
  void service_conn(Key key);  // flush to host, shutdown, interest, reap
  void remove_conn(Key key);
  void drop_all_connections();
  uint32_t allocate_local_port();
  Status fill_rx();
  Status service_all();
  uint32_t handle_tx_chain(const virtio::DescriptorChain& chain);
  void mark_broken(const Error& e);
  void on_timer();
  void update_timer();  // arms the tick while anything has a deadline

  std::string queue_diagnostics();  // mu_ held

  const VsockDeviceConfig config_;
  std::function<std::string()> diagnostics_;
  EventLoop& loop_;
  UniqueFd listener_;
  UniqueFd timer_;  // timerfd ticking while handshakes or connection requests are pending
  bool timer_armed_ = false;

  mutable std::mutex mu_;
  const GuestMemory* mem_ = nullptr;
  std::vector<virtio::Queue> queues_;
  virtio::Interrupt* interrupt_ = nullptr;
  bool active_ = false;
  bool broken_ = false;
  std::map<int, std::unique_ptr<Handshake>> handshakes_;
  std::map<Key, std::unique_ptr<Conn>> conns_;
  std::deque<VsockHeader> rst_queue_;  // connectionless RSTs waiting for rx buffers
  // After a transport reset (restore), rx packets wait until the driver has taken the event in
  // (it re-posts an event buffer and notifies the event queue), at most kResetHold: a host
  // connection made meanwhile would otherwise be accepted and then reset by that event.
  static constexpr std::chrono::milliseconds kResetHold{500};
  std::optional<std::chrono::steady_clock::time_point> reset_hold_since_;
  std::vector<Key> dirty_;             // connections touched by guest packets
  Key rr_cursor_{0, 0};                // round-robin position among connections
  uint32_t next_local_port_ = kFirstLocalPort;
  virtio::AtomicDeviceCounters counters_;
};

}  // namespace kiln::vmm::devices

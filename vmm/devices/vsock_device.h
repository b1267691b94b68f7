// VsockDevice: virtio-vsock (virtio 1.2 §5.10): the rx/tx/event queues, guest packet checks,
// and the streams' state machines (VsockConnectionTable). Where streams end on the host is its
// backend's business (vsock_backend.h); kiln-vmm's is VsockUnixMuxer, Firecracker's hybrid vsock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/devices/tick_timer.h"
#include "vmm/devices/vsock_backend.h"
#include "vmm/devices/vsock_connection.h"
#include "vmm/devices/vsock_connection_table.h"
#include "vmm/devices/vsock_packet.h"
#include "common/event_loop/event_loop.h"
#include "vmm/virtio/activated_device.h"

namespace kiln::vmm::devices {

struct VsockDeviceConfig {
  uint64_t guest_cid = 3;
  std::string uds_path;  // for create(config, loop): the Unix-socket backend's path
  VsockConnection::Options connection;
  size_t max_connections = 1024;  // host clients (incl. handshakes) + guest connections
  // A host client must finish its CONNECT line within this time (Unix-socket backend).
  std::chrono::milliseconds handshake_timeout{5000};
  // The guest must answer a host-initiated REQUEST within this time (else RST + close). A guest
  // with nothing listening answers at once (RST); this bounds only a guest too busy to answer,
  // which on an oversubscribed host (20 microVMs on 2 emulated cores here) can take seconds.
  std::chrono::milliseconds connect_timeout{10000};
};

class VsockDevice : public virtio::ActivatedDevice, private VsockBackendSink {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  static inline constexpr uint16_t kRxQueue = 0;
  static inline constexpr uint16_t kTxQueue = 1;
  static inline constexpr uint16_t kEventQueue = 2;
  static inline constexpr uint32_t kFirstLocalPort = VsockConnectionTable::kFirstLocalPort;

  // Hybrid vsock: a VsockUnixMuxer listening on config.uds_path (which must not exist yet).
  // The loop must outlive the device; destroy the device on the loop thread or after the loop
  // stopped. The destructor unlinks uds_path.
  static Result<std::shared_ptr<VsockDevice>> create(const VsockDeviceConfig& config, EventLoop& loop);
  // Any backend (tests use a fake one); config.uds_path and handshake_timeout are unused.
  static Result<std::shared_ptr<VsockDevice>> create(const VsockDeviceConfig& config, EventLoop& loop,
                                                     std::unique_ptr<VsockBackend> backend);
  ~VsockDevice() override;

  // Snapshot restore: drops every connection and posts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
  // on the event queue (virtio 1.2 §5.10.6.8). Fails if the device is not active or the
  // driver left no event buffer.
  Status send_transport_reset();
  size_t connection_count() const override;
  // Extra state (e.g. the VMM's vCPU exit counts) appended to the warning logged when the
  // guest does not answer a connection: what a diagnosis of an unresponsive guest needs.
  void set_diagnostics(std::function<std::string()> fn) { diagnostics_ = std::move(fn); }

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}

 private:
  VsockDevice(const VsockDeviceConfig& config, std::unique_ptr<TickTimer> timer,
              std::unique_ptr<VsockBackend> backend);

  // ActivatedDevice hooks (mu_ held).
  Status on_activate() override;
  Status on_queue_notify(uint16_t index) override;
  void on_reset() override;
  // VsockBackendSink.
  void on_host_connect(std::unique_ptr<VsockHostStream> stream, uint32_t guest_port) override;
  void on_host_refused() override { counters_.add_error(); }

  // Event-loop callbacks (take mu_).
  void on_stream_ready(VsockConnectionTable::Key key, StreamEvents events);
  void on_timer();

  // mu_ held.
  Status fill_rx();
  void flush_rx();  // fill_rx when serving; an error marks the device broken
  uint32_t handle_tx_chain(const virtio::DescriptorChain& chain);
  void mark_broken(const Error& e);
  void update_timer();  // ticks while a connection deadline or a held rx packet is pending
  std::string queue_diagnostics();

  const VsockDeviceConfig config_;
  std::function<std::string()> diagnostics_;
  std::unique_ptr<TickTimer> timer_;
  std::unique_ptr<VsockBackend> backend_;  // declared before table_, which uses it
  VsockConnectionTable table_;

  bool broken_ = false;
  // After a transport reset (restore), rx packets wait until the driver has taken the event in
  // (it re-posts an event buffer and notifies the event queue), at most kResetHold: a host
  // connection made meanwhile would otherwise be accepted and then reset by that event.
  static constexpr std::chrono::milliseconds kResetHold{500};
  std::optional<std::chrono::steady_clock::time_point> reset_hold_since_;
};

}  // namespace kiln::vmm::devices

// NetDevice: virtio-net (virtio 1.2 §5.1), one receive and one transmit queue over a host
// NetBackend (a TAP). Guest frames are checked (net_frame.h) before they reach the TAP; a
// malformed chain or frame is dropped and counted, never the device. Firecracker's rate
// limiters (bandwidth + ops token buckets) per direction, changeable while running.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/event_loop/event_loop.h"
#include "common/result.h"
#include "vmm/devices/device_wakeup.h"
#include "vmm/devices/net_frame.h"
#include "vmm/devices/tap.h"
#include "vmm/rate_limiter/rate_limiter.h"
#include "vmm/virtio/activated_device.h"

namespace kiln::vmm::devices {

struct NetDeviceConfig {
  std::optional<std::array<uint8_t, 6>> mac;  // offered as VIRTIO_NET_F_MAC when set
  std::optional<uint16_t> mtu;                // offered as VIRTIO_NET_F_MTU when set
  rate_limiter::RateLimiterConfig rx_limit;   // frames to the guest
  rate_limiter::RateLimiterConfig tx_limit;   // frames from the guest
  // The rate limiters' monotonic clock (tests inject one).
  std::function<rate_limiter::Nanos()> clock;
};

// What /metrics shows for a net device besides the common counters (rx_bytes and tx_bytes are
// the common bytes_to_guest and bytes_from_guest under Firecracker's names).
struct NetCounters {
  uint64_t rx_packets = 0, rx_bytes = 0, rx_dropped = 0, rx_throttled = 0, rx_backend_errors = 0;
  uint64_t tx_packets = 0, tx_bytes = 0, tx_dropped = 0, tx_throttled = 0, tx_backend_errors = 0;
};

class NetDevice : public virtio::ActivatedDevice {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  static inline constexpr uint16_t kRxQueue = 0;
  static inline constexpr uint16_t kTxQueue = 1;

  // Registers the backend's fd on the loop (not polled until the driver is up). The loop must
  // outlive the device; destroy the device on the loop thread or after the loop stopped.
  static Result<std::shared_ptr<NetDevice>> create(const NetDeviceConfig& config,
                                                   std::unique_ptr<NetBackend> backend, EventLoop& loop);
  ~NetDevice() override;

  // PATCH /network-interfaces: replaces the given directions' limiters (full buckets). Any thread.
  Status update_rate_limiters(const std::optional<rate_limiter::RateLimiterConfig>& rx,
                              const std::optional<rate_limiter::RateLimiterConfig>& tx);
  NetCounters net_counters() const;

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  std::vector<std::pair<std::string, uint64_t>> extra_counters() const override;

 private:
  NetDevice(const NetDeviceConfig& config, std::unique_ptr<NetBackend> backend, EventLoop& loop,
            rate_limiter::RateLimiter rx, rate_limiter::RateLimiter tx);

  // ActivatedDevice hooks (mu_ held).
  Status on_activate() override;
  Status on_queue_notify(uint16_t index) override;
  void on_reset() override;

  // Event-loop callbacks (take mu_).
  void on_backend_event(uint32_t events);
  // Activation, a rate-limit wait ended, limiters changed, or more TX work is queued.
  void on_wakeup();

  // mu_ held, device active.
  Status process_rx();
  Status process_tx();
  // Puts the held frame into receive chains; false when the guest has not posted enough.
  Result<bool> deliver_rx_frame();
  uint32_t send_tx_chain(const virtio::DescriptorChain& chain);  // the used length: 0
  void run_queues();  // process_rx + process_tx; a corrupt ring marks the device broken
  void apply_offload();
  void update_polling();
  rate_limiter::Nanos now() const { return clock_(); }

  const NetDeviceConfig config_;
  const std::function<rate_limiter::Nanos()> clock_;
  const std::unique_ptr<NetBackend> backend_;
  EventLoop& loop_;
  DeviceWakeup wakeup_;

  // mu_ held.
  rate_limiter::RateLimiter rx_limiter_;
  rate_limiter::RateLimiter tx_limiter_;
  std::vector<uint8_t> rx_frame_;  // staging buffer, kMaxNetBuffer bytes
  size_t rx_len_ = 0;              // bytes of the held frame (0: none held)
  bool rx_charged_ = false;        // the held frame passed the rx limiter
  bool offload_set_ = false;       // the TAP's offloads match the driver's features
  bool polling_ = false;           // backend fd registered for EPOLLIN
  bool backend_dead_ = false;      // the backend hung up: no more reads
  bool broken_ = false;            // a ring was corrupt: NEEDS_RESET until the driver resets
  // The per-direction counts the common counters_ lack; bytes are kept there only.
  struct PacketCounts {
    uint64_t rx_packets = 0, rx_dropped = 0, rx_throttled = 0, rx_backend_errors = 0;
    uint64_t tx_packets = 0, tx_dropped = 0, tx_throttled = 0, tx_backend_errors = 0;
  } stats_;
};

}  // namespace kiln::vmm::devices

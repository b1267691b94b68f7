// RngDevice: virtio-rng (virtio 1.2 §5.4): fills the driver's writable buffers from the
// host's getrandom().
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "vmm/virtio/virtio_device.h"

namespace kiln::vmm::devices {

class RngDevice : public virtio::VirtioDevice {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  // Bytes served per request at most, so one request cannot monopolise the event loop.
  static inline constexpr uint64_t kMaxBytesPerRequest = 64 * 1024;

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(uint64_t, std::span<uint8_t> data) const override;
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
  uint32_t handle(const virtio::DescriptorChain& chain);

  mutable std::mutex mu_;
  const GuestMemory* mem_ = nullptr;
  std::vector<virtio::Queue> queues_;
  virtio::Interrupt* interrupt_ = nullptr;
  bool active_ = false;
  virtio::AtomicDeviceCounters counters_;
};

}  // namespace kiln::vmm::devices

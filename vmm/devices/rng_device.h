// RngDevice: virtio-rng (virtio 1.2 §5.4): fills the driver's writable buffers from the
// host's getrandom().
#pragma once

#include <memory>
#include <vector>

#include "vmm/virtio/activated_device.h"

namespace kiln::vmm::devices {

class RngDevice : public virtio::ActivatedDevice {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  // Bytes served per request at most, so one request cannot monopolise the event loop.
  static inline constexpr uint64_t kMaxBytesPerRequest = 64 * 1024;

  RngDevice() : ActivatedDevice("virtio-rng", {kQueueSize}) {}

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  void read_config(uint64_t, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}

 private:
  Status on_queue_notify(uint16_t index) override;
  uint32_t handle(const virtio::DescriptorChain& chain);
};

}  // namespace kiln::vmm::devices

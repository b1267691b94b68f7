// VirtioDevice: what a device (blk, rng, vsock) implements for a transport (virtio 1.2 §2,
// §3). Devices are thread-safe: the transport calls them from vCPU threads, their queue
// work runs on the event-loop thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/virtio/device_counters.h"
#include "vmm/virtio/interrupt.h"
#include "vmm/virtio/queue.h"

namespace kiln::vmm::virtio {

struct QueuePosition {
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
};

// Positions of a device's queues (helper for implementations).
inline std::vector<QueuePosition> positions_of(const std::vector<Queue>& queues) {
  std::vector<QueuePosition> out;
  for (const Queue& q : queues) out.push_back({q.next_avail(), q.next_used()});
  return out;
}

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_id() const = 0;
  // Offered feature bits; must include VIRTIO_F_VERSION_1.
  virtual uint64_t device_features() const = 0;
  // One entry per virtqueue: its maximum size.
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  // Device configuration space (little-endian bytes); bytes past its end read as 0 and
  // writes to read-only fields are ignored.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

  // DRIVER_OK: the device takes the queues (validated against mem when marked ready) and
  // starts serving them. An error marks the device NEEDS_RESET.
  virtual Status activate(const GuestMemory& mem, std::vector<Queue> queues,
                          uint64_t acked_features, Interrupt& interrupt) = 0;
  // The driver notified queue `index`. An error means the device is broken (NEEDS_RESET);
  // a malformed request is not an error here, it is completed and counted.
  virtual Status process_queue(uint16_t index) = 0;
  // Writing 0 to Status: back to the pre-activation state, queues dropped.
  virtual void reset() = 0;

  virtual DeviceCounters counters() const = 0;
  // Device-specific counters for /metrics (name, value), beside the common ones.
  virtual std::vector<std::pair<std::string, uint64_t>> extra_counters() const { return {}; }

  // Ring positions (next_avail, next_used) of the active queues, for snapshots; empty when
  // not activated. Restoring passes them back through activate() in the Queue objects.
  virtual std::vector<QueuePosition> queue_positions() const = 0;
};

// Copies from a config byte image into data at offset; bytes past the image read as 0.
inline void read_config_bytes(std::span<const uint8_t> image, uint64_t offset,
                              std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t pos = offset + i;  // offset < 4 KiB from the transport; still check for wrap
    data[i] = (pos >= offset && pos < image.size()) ? image[static_cast<size_t>(pos)] : 0;
  }
}

}  // namespace kiln::vmm::virtio

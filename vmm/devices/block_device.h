// BlockDevice: virtio-blk (virtio 1.2 §5.2) over a raw image file, read-only or read-write;
// IN, OUT, FLUSH and GET_ID, synchronous pread/pwrite on the event-loop thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/virtio/virtio_device.h"

namespace kiln::vmm::devices {

struct BlockDeviceConfig {
  std::string path;       // raw image (regular file or block device)
  bool read_only = true;  // advertise VIRTIO_BLK_F_RO and refuse writes
  std::string drive_id;   // GET_ID serial (first 20 bytes)
};

class BlockDevice : public virtio::VirtioDevice {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  // Data segments per request: header + status must still fit a chain of kQueueSize.
  static inline constexpr uint32_t kSegMax = kQueueSize - 2;

  static Result<std::shared_ptr<BlockDevice>> open(const BlockDeviceConfig& config);

  uint64_t capacity_sectors() const { return capacity_; }
  bool read_only() const { return read_only_; }

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
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
  BlockDevice(UniqueFd fd, uint64_t capacity, bool read_only, std::string id)
      : fd_(std::move(fd)), capacity_(capacity), read_only_(read_only), id_(std::move(id)) {}

  // Serves one request; returns the used length (bytes written into the chain).
  uint32_t handle(const virtio::DescriptorChain& chain);
  uint8_t do_in(uint64_t sector, std::vector<std::span<uint8_t>> bufs, uint64_t len);
  uint8_t do_out(uint64_t sector, std::vector<std::span<uint8_t>> bufs, uint64_t len);

  const UniqueFd fd_;
  const uint64_t capacity_;  // in 512-byte sectors
  const bool read_only_;
  const std::string id_;

  mutable std::mutex mu_;
  const GuestMemory* mem_ = nullptr;
  std::vector<virtio::Queue> queues_;
  virtio::Interrupt* interrupt_ = nullptr;
  bool active_ = false;
  virtio::AtomicDeviceCounters counters_;
};

}  // namespace kiln::vmm::devices

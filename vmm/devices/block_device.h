// BlockDevice: virtio-blk (virtio 1.2 §5.2) over a raw image file, read-only or read-write;
// IN, OUT, FLUSH and GET_ID, synchronous pread/pwrite on the event-loop thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/event_loop/event_loop.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/devices/device_wakeup.h"
#include "vmm/rate_limiter/rate_limiter.h"
#include "vmm/virtio/activated_device.h"

namespace kiln::vmm::devices {

struct BlockDeviceConfig {
  std::string path;       // raw image (regular file or block device)
  bool read_only = true;  // advertise VIRTIO_BLK_F_RO and refuse writes
  std::string drive_id;   // GET_ID serial (first 20 bytes)
  // Firecracker's drive rate limiter: bandwidth in data bytes, ops in requests. Needs the
  // event loop (waits for tokens on its timers); none = unlimited.
  rate_limiter::RateLimiterConfig limit;
  std::function<rate_limiter::Nanos()> clock;  // tests inject one; default kiln::monotonic_ns
};

class BlockDevice : public virtio::ActivatedDevice {
 public:
  static inline constexpr uint16_t kQueueSize = 256;
  // Data segments per request: header + status must still fit a chain of kQueueSize.
  static inline constexpr uint32_t kSegMax = kQueueSize - 2;

  // `loop` may be null only for an unlimited drive; it must outlive the device.
  static Result<std::shared_ptr<BlockDevice>> open(const BlockDeviceConfig& config, EventLoop* loop = nullptr);
  // PATCH /drives: replaces the limiter (full buckets); refused for a drive built without a loop.
  Status update_rate_limiter(const rate_limiter::RateLimiterConfig& limit);

  uint64_t capacity_sectors() const { return capacity_; }
  bool read_only() const { return read_only_; }

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}

 private:
  BlockDevice(UniqueFd fd, uint64_t capacity, const BlockDeviceConfig& config, EventLoop* loop,
              rate_limiter::RateLimiter limiter);

  Status on_queue_notify(uint16_t index) override;
  // Whether the limiter lets this request through now (else a wakeup is scheduled).
  bool admit(const virtio::DescriptorChain& chain);
  void on_wakeup();

  // Serves one request; returns the used length (bytes written into the chain).
  uint32_t handle(const virtio::DescriptorChain& chain);
  uint8_t do_in(uint64_t sector, std::vector<std::span<uint8_t>> bufs, uint64_t len);
  uint8_t do_out(uint64_t sector, std::vector<std::span<uint8_t>> bufs, uint64_t len);

  const UniqueFd fd_;
  const uint64_t capacity_;  // in 512-byte sectors
  const bool read_only_;
  const std::string id_;
  const std::function<rate_limiter::Nanos()> clock_;
  rate_limiter::RateLimiter limiter_;  // mu_ held
  std::unique_ptr<DeviceWakeup> wakeup_;  // with a loop only
};

}  // namespace kiln::vmm::devices

// BlockDevice: virtio-blk (virtio 1.2 §5.2), read-only or read-write, IN, OUT, FLUSH and GET_ID,
// over a BlockBackend: a raw image file (synchronous, straight into guest buffers) or an NBD
// export (asynchronous through bounce buffers, completed in any order, virtio 1.2 §2.7).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/event_loop/event_loop.h"
#include "common/result.h"
#include "vmm/devices/block_backend.h"
#include "vmm/devices/device_wakeup.h"
#include "vmm/rate_limiter/rate_limiter.h"
#include "vmm/virtio/activated_device.h"

namespace kiln::vmm::devices {

struct BlockDeviceConfig {
  // A raw image (regular file or block device), or an NBD URI (nbd+unix:///EXPORT?socket=PATH,
  // vmm/config/nbd_uri.h), served by that NBD server.
  std::string path;
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
  // Bounce-buffer bytes an asynchronous backend may hold for requests in flight; past it the
  // queue waits for completions (a request larger than it alone fails). A request larger than the
  // backend's max_request_bytes() goes out as several commands.
  static inline constexpr uint64_t kMaxBounceBytes = 64ull << 20;

  // `loop` may be null only for an unlimited file drive; it must outlive the device. An NBD
  // drive connects here (the size comes from the server).
  static Result<std::shared_ptr<BlockDevice>> open(const BlockDeviceConfig& config, EventLoop* loop = nullptr);
  // A device over a given backend (tests).
  static Result<std::shared_ptr<BlockDevice>> create(const BlockDeviceConfig& config,
                                                     std::unique_ptr<BlockBackend> backend, EventLoop* loop);
  ~BlockDevice() override;

  // PATCH /drives: replaces the limiter (full buckets); refused for a drive built without a loop.
  Status update_rate_limiter(const rate_limiter::RateLimiterConfig& limit);

  // Snapshots (not on the loop thread): stop taking requests from the queue and wait up to
  // `deadline` for those in flight to complete; an error names how many did not. Then
  // resume_requests() (also after an error).
  Status quiesce(std::chrono::milliseconds deadline);
  void resume_requests();
  size_t in_flight() const;

  uint64_t capacity_sectors() const { return capacity_; }
  bool read_only() const { return read_only_; }

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  std::vector<std::pair<std::string, uint64_t>> extra_counters() const override;

 private:
  // A request handed to an asynchronous backend.
  struct InFlight {
    virtio::DescriptorChain chain;  // its guest buffers, written only at completion
    BlockOp op = BlockOp::kRead;
    std::vector<uint8_t> bounce;
    uint32_t parts = 0;     // backend commands not completed yet
    bool failed = false;    // some part failed
    bool orphaned = false;  // the device was reset meanwhile: the result goes nowhere
  };

  BlockDevice(std::unique_ptr<BlockBackend> backend, const BlockDeviceConfig& config, EventLoop* loop,
              rate_limiter::RateLimiter limiter);

  Status on_queue_notify(uint16_t index) override;
  void on_reset() override;
  // Whether this request may start now: bounce budget, then the rate limiter (else a wakeup
  // or a completion serves the queue again).
  bool admit(const virtio::DescriptorChain& chain);
  void on_wakeup();
  // Loop thread, no lock: completions from the backend.
  void on_backend_ready();
  void complete_finished_locked();

  // Serves one request; returns the used length, or nullopt when the backend completes it later.
  std::optional<uint32_t> handle(const virtio::DescriptorChain& chain);
  std::optional<uint32_t> start_io(const virtio::DescriptorChain& chain, BlockOp op, uint64_t sector, uint64_t len);
  // Status into the chain's last writable byte after `data_written` bytes; returns the used length.
  uint32_t finish(const virtio::DescriptorChain& chain, uint8_t status, uint64_t data_written, const char* why);

  std::unique_ptr<BlockBackend> backend_;  // closed first (~BlockDevice): it may hold bounce buffers
  const uint64_t capacity_;  // in 512-byte sectors
  const bool read_only_;
  const std::string id_;
  const std::function<rate_limiter::Nanos()> clock_;
  rate_limiter::RateLimiter limiter_;  // mu_ held
  std::unique_ptr<DeviceWakeup> wakeup_;  // with a loop only

  // mu_ held: requests at an asynchronous backend, by tag.
  std::unordered_map<uint64_t, InFlight> in_flight_;
  uint64_t next_tag_ = 1;
  uint64_t bounce_bytes_ = 0;
  bool waiting_for_bounce_ = false;  // the queue stopped for the bounce budget
  bool quiesced_ = false;
  std::condition_variable drained_;
};

}  // namespace kiln::vmm::devices

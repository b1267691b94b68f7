// BlockDevice implementation. The status byte is the last writable byte of each chain and
// is written after the data (virtio 1.2 §5.2.6).
#include "vmm/devices/block_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/clock.h"
#include "common/io.h"
#include "vmm/devices/block_request.h"
#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

using virtio::feature_bit;

Result<std::shared_ptr<BlockDevice>> BlockDevice::open(const BlockDeviceConfig& config, EventLoop* loop) {
  int flags = (config.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  UniqueFd fd(::open(config.path.c_str(), flags));
  if (!fd) return errno_error("virtio-blk: open " + config.path);
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return errno_error("virtio-blk: size of " + config.path);
  if (size % kSectorSize != 0) {
    KILN_LOG_WARN("virtio-blk: %s is not a multiple of 512 bytes; the tail is not visible",
                  config.path.c_str());
  }
  uint64_t capacity = static_cast<uint64_t>(size) / kSectorSize;
  auto clock = config.clock ? config.clock : std::function<rate_limiter::Nanos()>(kiln::monotonic_ns);
  KILN_ASSIGN_OR_RETURN(auto limiter, rate_limiter::RateLimiter::make(config.limit, clock()));
  if (limiter.limited() && !loop) return make_error("virtio-blk: a rate-limited drive needs the event loop");
  BlockDeviceConfig c = config;
  c.clock = clock;
  return std::shared_ptr<BlockDevice>(new BlockDevice(std::move(fd), capacity, c, loop, std::move(limiter)));
}

BlockDevice::BlockDevice(UniqueFd fd, uint64_t capacity, const BlockDeviceConfig& config, EventLoop* loop,
                         rate_limiter::RateLimiter limiter)
    : ActivatedDevice("virtio-blk", {kQueueSize}),
      fd_(std::move(fd)),
      capacity_(capacity),
      read_only_(config.read_only),
      id_(config.drive_id),
      clock_(config.clock),
      limiter_(std::move(limiter)) {
  if (loop) wakeup_ = std::make_unique<DeviceWakeup>(*loop, [this] { on_wakeup(); });
}

Status BlockDevice::update_rate_limiter(const rate_limiter::RateLimiterConfig& limit) {
  if (!wakeup_) return make_error("virtio-blk: this drive cannot be rate-limited (no event loop)");
  KILN_ASSIGN_OR_RETURN(auto limiter, rate_limiter::RateLimiter::make(limit, clock_()));
  std::lock_guard lock(mu_);
  limiter_ = std::move(limiter);
  wakeup_->soon();  // requests held for tokens may go now
  return ok_status();
}

bool BlockDevice::admit(const virtio::DescriptorChain& chain) {
  if (!limiter_.limited()) return true;
  // Data bytes as Firecracker counts them: what a read fills or a write carries.
  uint64_t header = std::min<uint64_t>(chain.readable_len, kBlkHeaderSize);
  uint64_t bytes = (chain.readable_len - header) + (chain.writable_len > 0 ? chain.writable_len - 1 : 0);
  if (limiter_.consume(bytes, clock_())) return true;
  wakeup_->after(std::max<rate_limiter::Nanos>(limiter_.wait_for(bytes, clock_()), 1));
  return false;
}

void BlockDevice::on_wakeup() {
  std::lock_guard lock(mu_);
  if (!active_locked()) return;
  if (auto st = on_queue_notify(0); !st.ok()) {
    KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: device broken: %s", st.error().message.c_str());
    interrupt().mark_needs_reset();
  }
}

uint32_t BlockDevice::device_id() const { return virtio::kDeviceIdBlock; }

uint64_t BlockDevice::device_features() const {
  uint64_t f = feature_bit(virtio::kFeatureVersion1) | feature_bit(virtio::kFeatureIndirectDesc) |
               feature_bit(kBlkFeatureFlush) | feature_bit(kBlkFeatureSegMax);
  if (read_only_) f |= feature_bit(kBlkFeatureRo);
  return f;
}

void BlockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  // struct virtio_blk_config (virtio 1.2 §5.2.4): le64 capacity, le32 size_max (unused:
  // VIRTIO_BLK_F_SIZE_MAX not offered), le32 seg_max. seg_max lets a request carry many
  // data segments (through an indirect table) instead of one per request.
  std::array<uint8_t, 16> image{};
  std::memcpy(image.data(), &capacity_, 8);
  uint32_t seg_max = kSegMax;
  std::memcpy(image.data() + 12, &seg_max, 4);
  virtio::read_config_bytes(image, offset, data);
}

Status BlockDevice::on_queue_notify(uint16_t) {
  return serve(0, [this](const virtio::DescriptorChain& c) { return handle(c); },
               [this](const virtio::DescriptorChain& c) { return admit(c); });
}

uint8_t BlockDevice::do_in(uint64_t sector, std::vector<std::span<uint8_t>> bufs, uint64_t len) {
  uint64_t off = sector * kSectorSize;  // no overflow: sector <= capacity = size / 512
  for (auto b : bufs) {
    if (auto st = io::pread_all(fd_.get(), b.data(), b.size(), off, "the disk image"); !st.ok()) {
      KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: read at %llu failed: %s",
                     static_cast<unsigned long long>(off), st.error().message.c_str());
      return kBlkStatusIoErr;
    }
    off += b.size();
  }
  counters_.add_to_guest(len);
  return kBlkStatusOk;
}

uint8_t BlockDevice::do_out(uint64_t sector, std::vector<std::span<uint8_t>> bufs, uint64_t len) {
  uint64_t off = sector * kSectorSize;
  for (auto b : bufs) {
    if (auto st = io::pwrite_all(fd_.get(), b.data(), b.size(), off, "the disk image"); !st.ok()) {
      KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: write at %llu failed: %s",
                     static_cast<unsigned long long>(off), st.error().message.c_str());
      return kBlkStatusIoErr;
    }
    off += b.size();
  }
  counters_.add_from_guest(len);
  return kBlkStatusOk;
}

uint32_t BlockDevice::handle(const virtio::DescriptorChain& chain) {
  // Without a writable byte there is nowhere to put the status: drop the request.
  if (chain.writable_len == 0) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-blk: request without a status byte");
    return 0;
  }
  virtio::ChainReader reader(chain.readable);
  virtio::ChainWriter writer(chain.writable);
  const uint64_t data_in_len = chain.writable_len - 1;  // writable bytes before the status

  // Writes the status into the last writable byte, after any data; the used length is the
  // data written plus the status byte.
  auto complete = [&](uint8_t status, uint64_t data_written, const char* why) -> uint32_t {
    if (status != kBlkStatusOk) {
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-blk: %s", why);
      data_written = 0;
    }
    std::span<uint8_t> last = chain.writable.back();
    last[last.size() - 1] = status;
    return static_cast<uint32_t>(data_written + 1);
  };

  std::array<uint8_t, kBlkHeaderSize> hdr_bytes;
  if (!reader.read(hdr_bytes).ok()) return complete(kBlkStatusIoErr, 0, "request header too short");
  BlockRequestHeader hdr = parse_block_request_header(hdr_bytes).value();

  switch (hdr.type) {
    case kBlkTypeIn: {
      if (reader.remaining() != 0) return complete(kBlkStatusIoErr, 0, "IN request with readable data");
      if (!check_block_range(hdr.sector, data_in_len, capacity_).ok()) {
        return complete(kBlkStatusIoErr, 0, "IN request out of range");
      }
      auto bufs = writer.take(data_in_len);
      return complete(do_in(hdr.sector, std::move(bufs.value()), data_in_len), data_in_len,
                      "IN failed");
    }
    case kBlkTypeOut: {
      if (read_only_) return complete(kBlkStatusIoErr, 0, "write to a read-only drive");
      if (data_in_len != 0) return complete(kBlkStatusIoErr, 0, "OUT request with writable data");
      const uint64_t len = reader.remaining();
      if (!check_block_range(hdr.sector, len, capacity_).ok()) {
        return complete(kBlkStatusIoErr, 0, "OUT request out of range");
      }
      auto bufs = reader.take(len);
      return complete(do_out(hdr.sector, std::move(bufs.value()), len), 0, "OUT failed");
    }
    case kBlkTypeFlush: {
      if (!read_only_ && ::fdatasync(fd_.get()) != 0) {
        return complete(kBlkStatusIoErr, 0, "flush failed");
      }
      return complete(kBlkStatusOk, 0, "");
    }
    case kBlkTypeGetId: {
      if (reader.remaining() != 0) return complete(kBlkStatusIoErr, 0, "GET_ID with readable data");
      // virtio 1.2 §5.2.6: a 20-byte string, NUL-padded when shorter.
      std::array<uint8_t, kBlkIdBytes> id{};
      std::memcpy(id.data(), id_.data(), std::min(id_.size(), id.size()));
      size_t n = static_cast<size_t>(std::min<uint64_t>(data_in_len, kBlkIdBytes));
      (void)writer.write(std::span<const uint8_t>(id.data(), n));
      counters_.add_to_guest(n);
      return complete(kBlkStatusOk, n, "");
    }
    default:
      return complete(kBlkStatusUnsupp, 0, "unsupported request type");
  }
}

}  // namespace kiln::vmm::devices

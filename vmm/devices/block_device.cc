// BlockDevice implementation. The status byte is the last writable byte of each chain and
// is written after the data (virtio 1.2 §5.2.6).
#include "vmm/devices/block_device.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "common/clock.h"
#include "vmm/config/nbd_uri.h"
#include "vmm/devices/block_file_backend.h"
#include "vmm/devices/block_nbd_backend.h"
#include "vmm/devices/block_request.h"
#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

using virtio::feature_bit;

Result<std::shared_ptr<BlockDevice>> BlockDevice::open(const BlockDeviceConfig& config, EventLoop* loop) {
  std::unique_ptr<BlockBackend> backend;
  if (config::is_nbd_uri(config.path)) {
    KILN_ASSIGN_OR_RETURN(config::NbdUri uri, config::parse_nbd_uri(config.path));
    if (!loop) return make_error("virtio-blk: an NBD drive needs the event loop");
    KILN_ASSIGN_OR_RETURN(backend, NbdBlockBackend::connect(uri, config.read_only, *loop));
  } else {
    KILN_ASSIGN_OR_RETURN(backend, FileBlockBackend::open(config.path, config.read_only));
  }
  return create(config, std::move(backend), loop);
}

Result<std::shared_ptr<BlockDevice>> BlockDevice::create(const BlockDeviceConfig& config,
                                                         std::unique_ptr<BlockBackend> backend, EventLoop* loop) {
  auto clock = config.clock ? config.clock : std::function<rate_limiter::Nanos()>(kiln::monotonic_ns);
  KILN_ASSIGN_OR_RETURN(auto limiter, rate_limiter::RateLimiter::make(config.limit, clock()));
  if (limiter.limited() && !loop) return make_error("virtio-blk: a rate-limited drive needs the event loop");
  if (!backend->synchronous() && !loop) return make_error("virtio-blk: an asynchronous backend needs the event loop");
  BlockDeviceConfig c = config;
  c.clock = clock;
  auto dev = std::shared_ptr<BlockDevice>(new BlockDevice(std::move(backend), c, loop, std::move(limiter)));
  BlockDevice* self = dev.get();
  dev->backend_->set_ready_callback([self] { self->on_backend_ready(); });
  return dev;
}

BlockDevice::BlockDevice(std::unique_ptr<BlockBackend> backend, const BlockDeviceConfig& config, EventLoop* loop,
                         rate_limiter::RateLimiter limiter)
    : ActivatedDevice("virtio-blk", {kQueueSize}),
      backend_(std::move(backend)),
      capacity_(backend_->size_bytes() / kSectorSize),
      read_only_(config.read_only || backend_->read_only()),
      id_(config.drive_id),
      clock_(config.clock),
      limiter_(std::move(limiter)) {
  if (loop) wakeup_ = std::make_unique<DeviceWakeup>(*loop, [this] { on_wakeup(); });
}

BlockDevice::~BlockDevice() {
  // The backend's commands in flight point into in_flight_'s bounce buffers: end them first.
  backend_.reset();
}

Status BlockDevice::update_rate_limiter(const rate_limiter::RateLimiterConfig& limit) {
  if (!wakeup_) return make_error("virtio-blk: this drive cannot be rate-limited (no event loop)");
  KILN_ASSIGN_OR_RETURN(auto limiter, rate_limiter::RateLimiter::make(limit, clock_()));
  std::lock_guard lock(mu_);
  limiter_ = std::move(limiter);
  wakeup_->soon();  // requests held for tokens may go now
  return ok_status();
}

Status BlockDevice::quiesce(std::chrono::milliseconds deadline) {
  std::unique_lock lock(mu_);
  quiesced_ = true;
  if (drained_.wait_for(lock, deadline, [this] { return in_flight_.empty(); })) return ok_status();
  return make_error("virtio-blk: " + std::to_string(in_flight_.size()) + " request(s) still in flight at the backend after " +
                    std::to_string(deadline.count()) + " ms");
}

void BlockDevice::resume_requests() {
  std::lock_guard lock(mu_);
  quiesced_ = false;
  if (wakeup_) wakeup_->soon();  // chains published meanwhile
}

size_t BlockDevice::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_.size();
}

std::vector<std::pair<std::string, uint64_t>> BlockDevice::extra_counters() const {
  auto c = backend_->counters();
  c.emplace_back("in_flight", in_flight());
  return c;
}

bool BlockDevice::admit(const virtio::DescriptorChain& chain) {
  // Data bytes as Firecracker counts them: what a read fills or a write carries.
  uint64_t header = std::min<uint64_t>(chain.readable_len, kBlkHeaderSize);
  uint64_t bytes = (chain.readable_len - header) + (chain.writable_len > 0 ? chain.writable_len - 1 : 0);
  if (!backend_->synchronous() && !in_flight_.empty() && bounce_bytes_ + bytes > kMaxBounceBytes) {
    waiting_for_bounce_ = true;  // the next completion serves the queue again
    return false;
  }
  if (!limiter_.limited()) return true;
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

void BlockDevice::on_backend_ready() {
  std::lock_guard lock(mu_);
  complete_finished_locked();
  if (waiting_for_bounce_ && !quiesced_ && active_locked()) {
    waiting_for_bounce_ = false;
    if (auto st = on_queue_notify(0); !st.ok()) {
      KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: device broken: %s", st.error().message.c_str());
      interrupt().mark_needs_reset();
    }
  }
}

void BlockDevice::complete_finished_locked() {
  for (const BlockCompletion& c : backend_->take_completions()) {
    auto it = in_flight_.find(c.tag);
    if (it == in_flight_.end()) continue;
    if (!c.ok) it->second.failed = true;
    if (--it->second.parts > 0) continue;
    InFlight r = std::move(it->second);
    in_flight_.erase(it);
    bounce_bytes_ -= r.bounce.size();
    if (r.orphaned || !active_locked()) continue;
    uint32_t used = 0;
    if (r.failed) {
      used = finish(r.chain, kBlkStatusIoErr, 0, "NBD request failed");
    } else if (r.op == BlockOp::kRead) {
      // The chain's writable buffers were checked against guest memory when it was walked.
      virtio::ChainWriter writer(r.chain.writable);
      (void)writer.write(r.bounce);
      counters_.add_to_guest(r.bounce.size());
      used = finish(r.chain, kBlkStatusOk, r.bounce.size(), "");
    } else {
      if (r.op == BlockOp::kWrite) counters_.add_from_guest(r.bounce.size());
      used = finish(r.chain, kBlkStatusOk, 0, "");
    }
    if (auto st = complete_deferred(0, r.chain.head, used); !st.ok()) {
      KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: device broken: %s", st.error().message.c_str());
      interrupt().mark_needs_reset();
    }
  }
  if (in_flight_.empty()) drained_.notify_all();
}

void BlockDevice::on_reset() {
  // Requests still at the backend complete into nothing: the driver may reuse their buffers.
  for (auto& [tag, r] : in_flight_) r.orphaned = true;
  waiting_for_bounce_ = false;
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
  if (quiesced_) return ok_status();  // resume_requests() serves the queue again
  KILN_TRY(serve(0, [this](const virtio::DescriptorChain& c) { return handle(c); },
                 [this](const virtio::DescriptorChain& c) { return admit(c); }));
  complete_finished_locked();  // what failed while being issued
  return ok_status();
}

uint32_t BlockDevice::finish(const virtio::DescriptorChain& chain, uint8_t status, uint64_t data_written,
                             const char* why) {
  if (status != kBlkStatusOk) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-blk: %s", why);
    data_written = 0;
  }
  std::span<uint8_t> last = chain.writable.back();
  last[last.size() - 1] = status;
  return static_cast<uint32_t>(data_written + 1);
}

std::optional<uint32_t> BlockDevice::start_io(const virtio::DescriptorChain& chain, BlockOp op, uint64_t sector,
                                              uint64_t len) {
  const uint64_t offset = sector * kSectorSize;  // no overflow: sector <= capacity = size / 512
  const uint64_t data_in = op == BlockOp::kRead ? len : 0;
  if (backend_->synchronous()) {
    virtio::ChainReader reader(chain.readable);
    virtio::ChainWriter writer(chain.writable);
    BlockIo io{0, op, offset, {}};
    if (op == BlockOp::kRead) io.bufs = std::move(writer.take(len).value());
    if (op == BlockOp::kWrite) {
      (void)reader.skip(kBlkHeaderSize);
      io.bufs = std::move(reader.take(len).value());
    }
    if (!backend_->submit(std::move(io)).value_or(false)) {
      return finish(chain, kBlkStatusIoErr, 0, op == BlockOp::kFlush ? "flush failed" : "I/O failed");
    }
    if (op == BlockOp::kRead) counters_.add_to_guest(len);
    if (op == BlockOp::kWrite) counters_.add_from_guest(len);
    return finish(chain, kBlkStatusOk, data_in, "");
  }

  if (len == 0 && op != BlockOp::kFlush) return finish(chain, kBlkStatusOk, 0, "");  // nothing to move
  if (len > kMaxBounceBytes) return finish(chain, kBlkStatusIoErr, 0, "request larger than the bounce budget");
  const uint64_t tag = next_tag_++;
  InFlight& r = in_flight_[tag];
  r.chain = chain;
  r.op = op;
  r.bounce.resize(len);
  if (op == BlockOp::kWrite) {
    virtio::ChainReader reader(chain.readable);
    (void)reader.skip(kBlkHeaderSize);
    (void)reader.read(r.bounce);
  }
  bounce_bytes_ += len;
  // One backend command per max_request_bytes() of data (a flush is one command); the request
  // completes when its last part does.
  const uint64_t part = backend_->max_request_bytes() != 0 ? backend_->max_request_bytes() : std::max<uint64_t>(len, 1);
  uint64_t done_at = 0;
  do {
    const uint64_t n = std::min(part, len - done_at);
    BlockIo io{tag, op, offset + done_at, {}};
    if (op != BlockOp::kFlush) io.bufs.push_back(std::span<uint8_t>(r.bounce.data() + done_at, n));
    std::optional<bool> result = backend_->submit(std::move(io));
    if (!result) {
      ++r.parts;
    } else if (!*result) {
      r.failed = true;
      break;  // later parts are not sent; those in flight finish first
    }
    done_at += n;
  } while (done_at < len);
  if (r.parts > 0) return std::nullopt;  // completes through complete_finished_locked()
  const bool ok = !r.failed;
  bounce_bytes_ -= len;
  in_flight_.erase(tag);
  if (!ok) return finish(chain, kBlkStatusIoErr, 0, "NBD request failed");
  return finish(chain, kBlkStatusOk, 0, "");  // only a flush the server needs no call for
}

std::optional<uint32_t> BlockDevice::handle(const virtio::DescriptorChain& chain) {
  // Without a writable byte there is nowhere to put the status: drop the request.
  if (chain.writable_len == 0) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-blk: request without a status byte");
    return 0;
  }
  virtio::ChainReader reader(chain.readable);
  const uint64_t data_in_len = chain.writable_len - 1;  // writable bytes before the status

  std::array<uint8_t, kBlkHeaderSize> hdr_bytes;
  if (!reader.read(hdr_bytes).ok()) return finish(chain, kBlkStatusIoErr, 0, "request header too short");
  BlockRequestHeader hdr = parse_block_request_header(hdr_bytes).value();

  switch (hdr.type) {
    case kBlkTypeIn: {
      if (reader.remaining() != 0) return finish(chain, kBlkStatusIoErr, 0, "IN request with readable data");
      if (!check_block_range(hdr.sector, data_in_len, capacity_).ok()) {
        return finish(chain, kBlkStatusIoErr, 0, "IN request out of range");
      }
      return start_io(chain, BlockOp::kRead, hdr.sector, data_in_len);
    }
    case kBlkTypeOut: {
      if (read_only_) return finish(chain, kBlkStatusIoErr, 0, "write to a read-only drive");
      if (data_in_len != 0) return finish(chain, kBlkStatusIoErr, 0, "OUT request with writable data");
      const uint64_t len = reader.remaining();
      if (!check_block_range(hdr.sector, len, capacity_).ok()) {
        return finish(chain, kBlkStatusIoErr, 0, "OUT request out of range");
      }
      return start_io(chain, BlockOp::kWrite, hdr.sector, len);
    }
    case kBlkTypeFlush:
      return start_io(chain, BlockOp::kFlush, 0, 0);
    case kBlkTypeGetId: {
      if (reader.remaining() != 0) return finish(chain, kBlkStatusIoErr, 0, "GET_ID with readable data");
      // virtio 1.2 §5.2.6: a 20-byte string, NUL-padded when shorter.
      std::array<uint8_t, kBlkIdBytes> id{};
      std::memcpy(id.data(), id_.data(), std::min(id_.size(), id.size()));
      size_t n = static_cast<size_t>(std::min<uint64_t>(data_in_len, kBlkIdBytes));
      virtio::ChainWriter writer(chain.writable);
      (void)writer.write(std::span<const uint8_t>(id.data(), n));
      counters_.add_to_guest(n);
      return finish(chain, kBlkStatusOk, n, "");
    }
    default:
      return finish(chain, kBlkStatusUnsupp, 0, "unsupported request type");
  }
}

}  // namespace kiln::vmm::devices

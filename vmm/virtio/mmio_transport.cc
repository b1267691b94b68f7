// VirtioMmioTransport implementation. Driver mistakes (writes in the wrong state, bad queue
// sizes or addresses) are refused and counted; bad values mark the device NEEDS_RESET.
#include "vmm/virtio/mmio_transport.h"

#include <cstring>
#include <string>

#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::virtio {

namespace {

uint64_t set_low(uint64_t v, uint32_t low) { return (v & 0xffffffff00000000ull) | low; }
uint64_t set_high(uint64_t v, uint32_t high) { return (v & 0xffffffffull) | (uint64_t{high} << 32); }

}  // namespace

VirtioMmioTransport::VirtioMmioTransport(const GuestMemory& mem,
                                         std::shared_ptr<VirtioDevice> device,
                                         Interrupt::Trigger irq_trigger)
    : mem_(mem), device_(std::move(device)), interrupt_(std::move(irq_trigger)) {
  for (uint16_t max : device_->queue_max_sizes()) queues_.emplace_back(max);
}

uint32_t VirtioMmioTransport::status() const {
  std::lock_guard lock(mu_);
  uint32_t s = status_;
  if (needs_reset_ || interrupt_.needs_reset()) s |= kStatusNeedsReset;
  return s;
}

bool VirtioMmioTransport::activated() const {
  std::lock_guard lock(mu_);
  return activated_;
}

uint64_t VirtioMmioTransport::acked_features() const {
  std::lock_guard lock(mu_);
  return acked_features_;
}

uint64_t VirtioMmioTransport::refused_writes() const {
  std::lock_guard lock(mu_);
  return refused_writes_;
}

void VirtioMmioTransport::mmio_read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= mmio::kConfig) {
    device_->read_config(offset - mmio::kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    KILN_LOG_GUEST(logging::LogLevel::kWarning,
                   "virtio-mmio: %zu-byte read at 0x%llx ignored (registers are 32-bit)",
                   data.size(), static_cast<unsigned long long>(offset));
    return;
  }
  uint32_t v;
  if (offset == mmio::kInterruptStatus) {
    // Lock-free (Interrupt is atomic): a vCPU taking the device's interrupt does not wait for
    // the event loop, which holds mu_ while it serves a queue notification.
    v = interrupt_.status();
  } else {
    std::lock_guard lock(mu_);
    v = read_register(offset);
  }
  std::memcpy(data.data(), &v, 4);  // little-endian host
}

void VirtioMmioTransport::mmio_write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= mmio::kConfig) {
    std::lock_guard lock(mu_);
    // Any width is allowed here; the device ignores writes to read-only fields.
    device_->write_config(offset - mmio::kConfig, data);
    return;
  }
  if (offset == mmio::kInterruptAck && data.size() == 4) {
    uint32_t v;
    std::memcpy(&v, data.data(), 4);
    interrupt_.ack(v);  // lock-free, as the InterruptStatus read
    return;
  }
  std::lock_guard lock(mu_);
  if (data.size() != 4 || offset % 4 != 0) {
    ++refused_writes_;
    KILN_LOG_GUEST(logging::LogLevel::kWarning,
                   "virtio-mmio: %zu-byte write at 0x%llx ignored (registers are 32-bit)",
                   data.size(), static_cast<unsigned long long>(offset));
    return;
  }
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  write_register(offset, v);
}

Queue* VirtioMmioTransport::selected_queue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t VirtioMmioTransport::read_register(uint64_t offset) {
  switch (offset) {
    case mmio::kMagicValue:
      return mmio::kMagic;
    case mmio::kVersion:
      return mmio::kVersion2;
    case mmio::kDeviceId:
      return device_->device_id();
    case mmio::kVendorId:
      return mmio::kKilnVendorId;
    case mmio::kDeviceFeatures: {
      uint64_t f = device_->device_features();
      if (device_features_sel_ == 0) return static_cast<uint32_t>(f);
      if (device_features_sel_ == 1) return static_cast<uint32_t>(f >> 32);
      return 0;
    }
    case mmio::kQueueNumMax: {
      Queue* q = selected_queue();
      return q ? q->max_size() : 0;  // 0: queue not available
    }
    case mmio::kQueueReady: {
      Queue* q = selected_queue();
      return (q && q->ready) ? 1 : 0;
    }
    case mmio::kInterruptStatus:
      return interrupt_.status();
    case mmio::kStatus: {
      uint32_t s = status_;
      if (needs_reset_ || interrupt_.needs_reset()) s |= kStatusNeedsReset;
      return s;
    }
    case mmio::kShmLenLow:
    case mmio::kShmLenHigh:
    case mmio::kShmBaseLow:
    case mmio::kShmBaseHigh:
      return 0xffffffff;  // no shared memory regions (virtio 1.2 §4.2.2)
    case mmio::kConfigGeneration:
      return config_generation_;
    default:
      KILN_LOG_GUEST(logging::LogLevel::kDebug, "virtio-mmio: read of write-only/unknown 0x%llx",
                     static_cast<unsigned long long>(offset));
      return 0;
  }
}

bool VirtioMmioTransport::queue_config_writable() const {
  // Queues are set up after FEATURES_OK and before DRIVER_OK (virtio 1.2 §3.1.1).
  return (status_ & kStatusFeaturesOk) && !(status_ & kStatusDriverOk) &&
         !(status_ & kStatusFailed) && !needs_reset_;
}

void VirtioMmioTransport::write_register(uint64_t offset, uint32_t v) {
  auto refuse = [&](const char* why) {
    ++refused_writes_;
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-mmio(dev %u): write 0x%x to 0x%llx refused: %s",
                   device_->device_id(), v, static_cast<unsigned long long>(offset), why);
  };
  switch (offset) {
    case mmio::kDeviceFeaturesSel:
      device_features_sel_ = v;
      return;
    case mmio::kDriverFeaturesSel:
      driver_features_sel_ = v;
      return;
    case mmio::kDriverFeatures:
      if (!(status_ & kStatusDriver) || (status_ & kStatusFeaturesOk) || needs_reset_) {
        return refuse("features are only written between DRIVER and FEATURES_OK");
      }
      if (driver_features_sel_ == 0) {
        acked_features_ = set_low(acked_features_, v);
      } else if (driver_features_sel_ == 1) {
        acked_features_ = set_high(acked_features_, v);
      } else if (v != 0) {
        refuse("no feature bits above 63 exist");
      }
      return;
    case mmio::kQueueSel:
      queue_sel_ = v;
      return;
    case mmio::kQueueNotify:
      if (!activated_ || needs_reset_ || interrupt_.needs_reset()) {
        return refuse("queue notify before DRIVER_OK");
      }
      notify_locked(v);
      return;
    case mmio::kStatus:
      write_status(v);
      return;
    case mmio::kShmSel:
      return;
    default:
      break;
  }

  // Per-queue configuration.
  Queue* q = selected_queue();
  switch (offset) {
    case mmio::kQueueNum:
    case mmio::kQueueReady:
    case mmio::kQueueDescLow:
    case mmio::kQueueDescHigh:
    case mmio::kQueueDriverLow:
    case mmio::kQueueDriverHigh:
    case mmio::kQueueDeviceLow:
    case mmio::kQueueDeviceHigh:
      break;
    default:
      return refuse("read-only or unknown register");
  }
  if (!queue_config_writable()) return refuse("queue setup outside FEATURES_OK..DRIVER_OK");
  if (q == nullptr) return refuse("QueueSel names no queue");
  if (offset == mmio::kQueueReady) {
    if (v == 0) {
      q->ready = false;
      return;
    }
    auto valid = q->validate(mem_);
    if (!valid.ok()) {
      refuse("queue configuration invalid");
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-mmio: %s", valid.error().message.c_str());
      mark_needs_reset_locked();
      return;
    }
    q->ready = true;
    return;
  }
  if (q->ready) return refuse("queue configuration changed while QueueReady is 1");
  switch (offset) {
    case mmio::kQueueNum: {
      // virtio 1.2 §2.7: split queue sizes are powers of two, at most QueueNumMax.
      if (v == 0 || v > q->max_size() || (v & (v - 1)) != 0) {
        refuse("queue size not a power of two within QueueNumMax");
        mark_needs_reset_locked();
        return;
      }
      q->size = static_cast<uint16_t>(v);
      return;
    }
    case mmio::kQueueDescLow:
      q->desc_table = GuestAddress(set_low(q->desc_table.value(), v));
      return;
    case mmio::kQueueDescHigh:
      q->desc_table = GuestAddress(set_high(q->desc_table.value(), v));
      return;
    case mmio::kQueueDriverLow:
      q->avail_ring = GuestAddress(set_low(q->avail_ring.value(), v));
      return;
    case mmio::kQueueDriverHigh:
      q->avail_ring = GuestAddress(set_high(q->avail_ring.value(), v));
      return;
    case mmio::kQueueDeviceLow:
      q->used_ring = GuestAddress(set_low(q->used_ring.value(), v));
      return;
    case mmio::kQueueDeviceHigh:
      q->used_ring = GuestAddress(set_high(q->used_ring.value(), v));
      return;
    default:
      return;
  }
}

bool VirtioMmioTransport::features_ok_acceptable() const {
  const uint64_t offered = device_->device_features();
  // Modern transport: the driver must accept VIRTIO_F_VERSION_1 (virtio 1.2 §6.1) and
  // nothing the device did not offer (virtio 1.2 §2.2.1).
  return (acked_features_ & feature_bit(kFeatureVersion1)) && (acked_features_ & ~offered) == 0;
}

void VirtioMmioTransport::mark_needs_reset_locked() {
  needs_reset_ = true;
  // A configuration-change interrupt tells a running driver (virtio 1.2 §2.1.2).
  if (status_ & kStatusDriverOk) interrupt_.signal_config();
}

void VirtioMmioTransport::reset_locked() {
  if (activated_ || (status_ != 0)) device_->reset();
  activated_ = false;
  status_ = 0;
  needs_reset_ = false;
  device_features_sel_ = 0;
  driver_features_sel_ = 0;
  acked_features_ = 0;
  queue_sel_ = 0;
  std::vector<Queue> fresh;
  for (const Queue& q : queues_) fresh.emplace_back(q.max_size());
  queues_ = std::move(fresh);
  interrupt_.clear();
}

void VirtioMmioTransport::write_status(uint32_t v) {
  // virtio 1.2 §2.1, §3.1.1: 0 resets; otherwise the driver adds one bit at a time in the
  // order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, and may set FAILED at any time.
  if (v == 0) {
    reset_locked();
    return;
  }
  auto refuse = [&](const char* why) {
    ++refused_writes_;
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-mmio(dev %u): status 0x%x refused: %s",
                   device_->device_id(), v, why);
  };
  if ((v & status_) != status_) return refuse("status bits can only be cleared by a reset");
  const uint32_t added = v & ~status_;
  if (added == 0) return;
  if (added == kStatusFailed) {
    status_ |= kStatusFailed;
    return;
  }
  if (needs_reset_ || interrupt_.needs_reset() || (status_ & kStatusFailed)) {
    return refuse("device needs a reset");
  }
  switch (added) {
    case kStatusAcknowledge:
      if (status_ != 0) break;
      status_ = v;
      return;
    case kStatusDriver:
      if (status_ != kStatusAcknowledge) break;
      status_ = v;
      return;
    case kStatusFeaturesOk:
      if (status_ != (kStatusAcknowledge | kStatusDriver)) break;
      // Leaving FEATURES_OK clear tells the driver the feature set is refused (§3.1.1).
      if (!features_ok_acceptable()) return refuse("driver features unacceptable");
      status_ = v;
      return;
    case kStatusDriverOk: {
      if (status_ != (kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk)) break;
      status_ = v;
      std::vector<Queue> qs = queues_;
      for (Queue& q : qs) {
        q.indirect_allowed = (acked_features_ & feature_bit(kFeatureIndirectDesc)) != 0;
        q.event_idx = (acked_features_ & feature_bit(kFeatureEventIdx)) != 0;
      }
      auto st = device_->activate(mem_, std::move(qs), acked_features_, interrupt_);
      if (!st.ok()) {
        KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-mmio(dev %u): activation failed: %s",
                       device_->device_id(), st.error().message.c_str());
        mark_needs_reset_locked();
        return;
      }
      activated_ = true;
      return;
    }
    default:
      break;
  }
  refuse("invalid status transition");
}

void VirtioMmioTransport::notify_locked(uint32_t index) {
  if (index >= queues_.size()) {
    ++refused_writes_;
    return;
  }
  auto st = device_->process_queue(static_cast<uint16_t>(index));
  if (!st.ok()) {
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-mmio(dev %u): queue %u broken: %s",
                   device_->device_id(), index, st.error().message.c_str());
    mark_needs_reset_locked();
  }
}

MmioTransportState VirtioMmioTransport::save_state() const {
  std::lock_guard lock(mu_);
  MmioTransportState s;
  s.status = status_;
  if (needs_reset_ || interrupt_.needs_reset()) s.status |= kStatusNeedsReset;
  s.acked_features = acked_features_;
  s.device_features_sel = device_features_sel_;
  s.driver_features_sel = driver_features_sel_;
  s.queue_sel = queue_sel_;
  s.interrupt_status = interrupt_.status();
  std::vector<QueuePosition> pos;
  if (activated_) pos = device_->queue_positions();
  for (size_t i = 0; i < queues_.size(); ++i) {
    const Queue& q = queues_[i];
    QueueState qs{q.size, q.ready, q.desc_table.value(), q.avail_ring.value(), q.used_ring.value(), 0, 0};
    if (i < pos.size()) {
      qs.next_avail = pos[i].next_avail;
      qs.next_used = pos[i].next_used;
    }
    s.queues.push_back(qs);
  }
  return s;
}

Status VirtioMmioTransport::restore_state(const MmioTransportState& s) {
  std::lock_guard lock(mu_);
  if (status_ != 0 || activated_) return make_error("virtio-mmio restore: transport already in use");
  if (s.queues.size() != queues_.size()) return make_error("virtio-mmio restore: queue count differs");
  const uint32_t base = s.status & ~(kStatusNeedsReset | kStatusFailed);
  const uint32_t kAck = kStatusAcknowledge, kDrv = kAck | kStatusDriver,
                 kFeat = kDrv | kStatusFeaturesOk, kOk = kFeat | kStatusDriverOk;
  if (base != 0 && base != kAck && base != kDrv && base != kFeat && base != kOk) {
    return make_error("virtio-mmio restore: impossible status value");
  }
  if ((s.acked_features & ~device_->device_features()) != 0) {
    return make_error("virtio-mmio restore: acked features the device does not offer");
  }
  std::vector<Queue> qs;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const QueueState& in = s.queues[i];
    Queue q(queues_[i].max_size());
    q.size = in.size;
    q.ready = in.ready;
    q.desc_table = GuestAddress(in.desc_table);
    q.avail_ring = GuestAddress(in.avail_ring);
    q.used_ring = GuestAddress(in.used_ring);
    q.indirect_allowed = (s.acked_features & feature_bit(kFeatureIndirectDesc)) != 0;
    q.event_idx = (s.acked_features & feature_bit(kFeatureEventIdx)) != 0;
    q.set_positions(in.next_avail, in.next_used);
    if (q.ready) {
      auto valid = q.validate(mem_);
      if (!valid.ok()) return valid.error().wrap("virtio-mmio restore: queue " + std::to_string(i));
    }
    qs.push_back(q);
  }
  const bool broken = (s.status & kStatusNeedsReset) != 0;
  if (base == kOk && !broken && !(s.status & kStatusFailed)) {
    KILN_TRY(device_->activate(mem_, qs, s.acked_features, interrupt_));
    activated_ = true;
  }
  queues_ = std::move(qs);
  status_ = s.status & ~kStatusNeedsReset;
  needs_reset_ = broken;
  acked_features_ = s.acked_features;
  device_features_sel_ = s.device_features_sel;
  driver_features_sel_ = s.driver_features_sel;
  queue_sel_ = s.queue_sel;
  interrupt_.restore_status(s.interrupt_status & (kInterruptUsedBuffer | kInterruptConfigChange));
  return ok_status();
}

void VirtioMmioTransport::notify_queue(uint32_t index) {
  std::lock_guard lock(mu_);
  if (!activated_ || needs_reset_ || interrupt_.needs_reset()) return;
  notify_locked(index);
}

}  // namespace kiln::vmm::virtio

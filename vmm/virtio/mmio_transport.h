// VirtioMmioTransport: the virtio-mmio "modern" register block (virtio 1.2 §4.2.2, Version 2)
// in front of one VirtioDevice: feature negotiation, the status state machine, queue setup,
// interrupt status and the device configuration window at 0x100.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "vmm/memory/guest_memory.h"
#include "vmm/virtio/interrupt.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio_device.h"

namespace kiln::vmm::virtio {

// Register offsets (virtio 1.2 §4.2.2, table "MMIO Device Register Layout").
namespace mmio {
inline constexpr uint64_t kMagicValue = 0x000;
inline constexpr uint64_t kVersion = 0x004;
inline constexpr uint64_t kDeviceId = 0x008;
inline constexpr uint64_t kVendorId = 0x00c;
inline constexpr uint64_t kDeviceFeatures = 0x010;
inline constexpr uint64_t kDeviceFeaturesSel = 0x014;
inline constexpr uint64_t kDriverFeatures = 0x020;
inline constexpr uint64_t kDriverFeaturesSel = 0x024;
inline constexpr uint64_t kQueueSel = 0x030;
inline constexpr uint64_t kQueueNumMax = 0x034;
inline constexpr uint64_t kQueueNum = 0x038;
inline constexpr uint64_t kQueueReady = 0x044;
inline constexpr uint64_t kQueueNotify = 0x050;
inline constexpr uint64_t kInterruptStatus = 0x060;
inline constexpr uint64_t kInterruptAck = 0x064;
inline constexpr uint64_t kStatus = 0x070;
inline constexpr uint64_t kQueueDescLow = 0x080;
inline constexpr uint64_t kQueueDescHigh = 0x084;
inline constexpr uint64_t kQueueDriverLow = 0x090;
inline constexpr uint64_t kQueueDriverHigh = 0x094;
inline constexpr uint64_t kQueueDeviceLow = 0x0a0;
inline constexpr uint64_t kQueueDeviceHigh = 0x0a4;
inline constexpr uint64_t kShmSel = 0x0ac;
inline constexpr uint64_t kShmLenLow = 0x0b0;
inline constexpr uint64_t kShmLenHigh = 0x0b4;
inline constexpr uint64_t kShmBaseLow = 0x0b8;
inline constexpr uint64_t kShmBaseHigh = 0x0bc;
inline constexpr uint64_t kConfigGeneration = 0x0fc;
inline constexpr uint64_t kConfig = 0x100;

inline constexpr uint32_t kMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kVersion2 = 2;
inline constexpr uint32_t kKilnVendorId = 0x4e4c494b;  // "KILN"
// Size of one device's MMIO window (as in virtio_mmio.device=4K@...).
inline constexpr uint64_t kWindowSize = 0x1000;
}  // namespace mmio

// Plain snapshot of a transport and its queues (Firecracker-style State struct).
struct QueueState {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;
  uint64_t used_ring = 0;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
};

struct MmioTransportState {
  uint32_t status = 0;  // including NEEDS_RESET when the device was broken
  uint64_t acked_features = 0;
  uint32_t device_features_sel = 0;
  uint32_t driver_features_sel = 0;
  uint32_t queue_sel = 0;
  uint32_t interrupt_status = 0;
  std::vector<QueueState> queues;
};

// Wiring in kiln-vmm (one transport per device, MMIO window of mmio::kWindowSize bytes):
// - vCPU thread, KVM_EXIT_MMIO inside the window: mmio_read/mmio_write(addr - base, data).
// - KVM_IOEVENTFD on base + mmio::kQueueNotify (4 bytes, datamatch = queue index) per queue;
//   the event-loop callback reads the eventfd and calls notify_queue(index).
// - irq_trigger writes 1 to the device's KVM irqfd (GSI from virtio_mmio.device=...).
// The trigger runs with the transport and/or device lock held: it must not call back in.
class VirtioMmioTransport {
 public:
  // mem and device must outlive the transport. irq_trigger raises the device's guest
  // interrupt line (kiln-vmm: write to the irqfd).
  VirtioMmioTransport(const GuestMemory& mem, std::shared_ptr<VirtioDevice> device,
                      Interrupt::Trigger irq_trigger = {});
  VirtioMmioTransport(const VirtioMmioTransport&) = delete;
  VirtioMmioTransport& operator=(const VirtioMmioTransport&) = delete;

  // MMIO exits, offset relative to the window base. Registers below 0x100 take only aligned
  // 32-bit accesses (virtio 1.2 §4.2.2.2); others read as 0 and writes are ignored.
  void mmio_read(uint64_t offset, std::span<uint8_t> data);
  void mmio_write(uint64_t offset, std::span<const uint8_t> data);

  // A queue notification that bypassed mmio_write (KVM ioeventfd on QueueNotify with
  // datamatch = queue index). Call from the event-loop thread.
  void notify_queue(uint32_t index);

  // Snapshot support. restore_state() expects a transport fresh from construction (or
  // reset); it validates the state against the device and guest memory and re-activates
  // the device when the state has DRIVER_OK.
  MmioTransportState save_state() const;
  Status restore_state(const MmioTransportState& state);

  uint32_t status() const;
  bool activated() const;
  uint64_t acked_features() const;
  // Register writes refused because of the device state or a bad value.
  uint64_t refused_writes() const;
  Interrupt& interrupt() { return interrupt_; }
  VirtioDevice& device() { return *device_; }
  size_t queue_count() const { return queues_.size(); }

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void reset_locked();
  void mark_needs_reset_locked();
  bool features_ok_acceptable() const;
  bool queue_config_writable() const;
  Queue* selected_queue();
  void notify_locked(uint32_t index);

  const GuestMemory& mem_;
  std::shared_ptr<VirtioDevice> device_;
  Interrupt interrupt_;

  mutable std::mutex mu_;
  std::vector<Queue> queues_;  // driver configuration until DRIVER_OK
  uint32_t status_ = 0;
  bool needs_reset_ = false;  // set by the transport itself (bad register values)
  bool activated_ = false;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t acked_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t config_generation_ = 0;
  uint64_t refused_writes_ = 0;
};

}  // namespace kiln::vmm::virtio

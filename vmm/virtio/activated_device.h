// ActivatedDevice: what every virtio device keeps from DRIVER_OK to reset (virtio 1.2 §3.1.1)
// done once: the lock, the guest memory, the activated queues, the interrupt and the counters,
// with activate/reset/process_queue/queue_positions. A device adds only its own requests.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/virtio/device_counters.h"
#include "vmm/virtio/interrupt.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio_device.h"

namespace kiln::vmm::virtio {

class ActivatedDevice : public VirtioDevice {
 public:
  std::vector<uint16_t> queue_max_sizes() const final { return max_sizes_; }
  // Takes the queues when there is one per queue_max_sizes() entry and each is ready; refused
  // while already active (the transport resets first). Then on_activate(); if that fails the
  // device is inactive again.
  Status activate(const GuestMemory& mem, std::vector<Queue> queues, uint64_t acked_features,
                  Interrupt& interrupt) final;
  // Ignored while inactive and for indices past the last queue; otherwise on_queue_notify().
  Status process_queue(uint16_t index) final;
  // on_reset(), then inactive: queues, memory and interrupt dropped. Idempotent.
  void reset() final;
  DeviceCounters counters() const final { return counters_.snapshot(); }
  // Ring positions of the active queues (empty when inactive): saved in snapshots and passed
  // back through activate() in the restored Queue objects.
  std::vector<QueuePosition> queue_positions() const final;

  bool active() const;

 protected:
  // `name` prefixes errors ("virtio-blk"); one queue per entry of queue_max_sizes.
  ActivatedDevice(std::string name, std::vector<uint16_t> queue_max_sizes)
      : name_(std::move(name)), max_sizes_(std::move(queue_max_sizes)) {}

  // Hooks, called with mu_ held. on_activate runs once the queues are taken.
  virtual Status on_activate() { return ok_status(); }
  // The driver notified queue `index` (valid, device active). An error marks the device
  // NEEDS_RESET; a malformed request is completed and counted instead.
  virtual Status on_queue_notify(uint16_t index) = 0;
  // Before the activation is dropped; also runs when inactive (a device may hold state from
  // before activation, e.g. vsock host connections waiting for the driver).
  virtual void on_reset() {}

  // mu_ held. mem(), queue() and interrupt() only while active_locked().
  bool active_locked() const { return mem_ != nullptr; }
  const GuestMemory& mem() const { return *mem_; }
  Queue& queue(uint16_t index) { return queues_[index]; }
  const Queue& queue(uint16_t index) const { return queues_[index]; }
  size_t queue_count() const { return queues_.size(); }
  Interrupt& interrupt() { return *interrupt_; }
  uint64_t acked_features() const { return acked_features_; }  // of the current activation
  const std::string& name() const { return name_; }

  // Serves queue `index` the common way (serve_queue) and raises the used-buffer interrupt
  // when the driver wants one. mu_ held, device active.
  Status serve(uint16_t index, const ChainHandler& handler, const ChainAdmit& admit = {});
  // Completes a chain the handler deferred (returned nullopt for) and raises the used-buffer
  // interrupt when the driver wants one. mu_ held, device active.
  Status complete_deferred(uint16_t index, uint16_t head, uint32_t used_len);

  // Guards the activation and whatever state the device adds; hooks run with it held.
  mutable std::mutex mu_;
  AtomicDeviceCounters counters_;  // lock-free

 private:
  const std::string name_;
  const std::vector<uint16_t> max_sizes_;
  const GuestMemory* mem_ = nullptr;  // non-null exactly while active
  std::vector<Queue> queues_;
  Interrupt* interrupt_ = nullptr;
  uint64_t acked_features_ = 0;
};

}  // namespace kiln::vmm::virtio

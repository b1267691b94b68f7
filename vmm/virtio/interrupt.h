// Interrupt: a device's InterruptStatus bits (virtio 1.2 §4.2.2) and the hook that raises
// the guest interrupt (an irqfd in kiln-vmm). Shared by a transport and its device; lock-free
// so devices may signal from the event-loop thread while a vCPU reads the registers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::virtio {

class Interrupt {
 public:
  using Trigger = std::function<void()>;

  explicit Interrupt(Trigger trigger = {}) : trigger_(std::move(trigger)) {}
  Interrupt(const Interrupt&) = delete;
  Interrupt& operator=(const Interrupt&) = delete;

  // Set before the device is activated; not synchronised with signal_*().
  void set_trigger(Trigger trigger) { trigger_ = std::move(trigger); }

  // The device added used buffers (InterruptStatus bit 0).
  void signal_used_queue() { raise(kInterruptUsedBuffer); }
  // The device configuration changed (InterruptStatus bit 1).
  void signal_config() { raise(kInterruptConfigChange); }
  // The device hit an error it cannot recover from (virtio 1.2 §2.1.2): the transport
  // reports DEVICE_NEEDS_RESET and the driver gets a configuration-change interrupt.
  void mark_needs_reset() {
    needs_reset_.store(true, std::memory_order_release);
    signal_config();
  }

  uint32_t status() const { return status_.load(std::memory_order_acquire); }
  void ack(uint32_t bits) { status_.fetch_and(~bits, std::memory_order_acq_rel); }
  bool needs_reset() const { return needs_reset_.load(std::memory_order_acquire); }
  // Device reset: no pending bits, not broken.
  void clear() {
    status_.store(0, std::memory_order_release);
    needs_reset_.store(false, std::memory_order_release);
  }
  // Snapshot restore: the pending bits as saved (no interrupt is raised).
  void restore_status(uint32_t bits) { status_.store(bits, std::memory_order_release); }
  uint64_t triggered_count() const { return triggered_.load(std::memory_order_relaxed); }

 private:
  void raise(uint32_t bit) {
    status_.fetch_or(bit, std::memory_order_acq_rel);
    triggered_.fetch_add(1, std::memory_order_relaxed);
    if (trigger_) trigger_();
  }

  Trigger trigger_;
  std::atomic<uint32_t> status_{0};
  std::atomic<bool> needs_reset_{false};
  std::atomic<uint64_t> triggered_{0};
};

}  // namespace kiln::vmm::virtio

// ActivatedDevice implementation.
#include "vmm/virtio/activated_device.h"

#include <string>

namespace kiln::vmm::virtio {

Status ActivatedDevice::activate(const GuestMemory& mem, std::vector<Queue> queues, uint64_t acked_features,
                                 Interrupt& interrupt) {
  std::lock_guard lock(mu_);
  if (active_locked()) return make_error(name_ + ": already active");
  if (queues.size() != max_sizes_.size()) {
    return make_error(name_ + ": expected " + std::to_string(max_sizes_.size()) + " queues, got " +
                      std::to_string(queues.size()));
  }
  for (size_t i = 0; i < queues.size(); ++i) {
    if (!queues[i].ready) return make_error(name_ + ": queue " + std::to_string(i) + " is not ready");
  }
  mem_ = &mem;
  queues_ = std::move(queues);
  interrupt_ = &interrupt;
  acked_features_ = acked_features;
  auto st = on_activate();
  if (!st.ok()) {
    mem_ = nullptr;
    queues_.clear();
    interrupt_ = nullptr;
  }
  return st;
}

Status ActivatedDevice::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!active_locked() || index >= queues_.size()) return ok_status();
  return on_queue_notify(index);
}

void ActivatedDevice::reset() {
  std::lock_guard lock(mu_);
  on_reset();
  mem_ = nullptr;
  queues_.clear();
  interrupt_ = nullptr;
}

std::vector<QueuePosition> ActivatedDevice::queue_positions() const {
  std::lock_guard lock(mu_);
  return positions_of(queues_);
}

bool ActivatedDevice::active() const {
  std::lock_guard lock(mu_);
  return active_locked();
}

Status ActivatedDevice::serve(uint16_t index, const ChainHandler& handler, const ChainAdmit& admit) {
  KILN_ASSIGN_OR_RETURN(bool notify, serve_queue(*mem_, queues_[index], counters_, handler, admit));
  if (notify) interrupt_->signal_used_queue();
  return ok_status();
}

Status ActivatedDevice::complete_deferred(uint16_t index, uint16_t head, uint32_t used_len) {
  KILN_TRY(queues_[index].add_used(*mem_, head, used_len));
  KILN_ASSIGN_OR_RETURN(bool notify, queues_[index].needs_notification(*mem_));
  if (notify) interrupt_->signal_used_queue();
  return ok_status();
}

}  // namespace kiln::vmm::virtio

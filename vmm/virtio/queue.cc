// Queue implementation: ring index arithmetic is modulo 2^16 as the spec requires.
#include "vmm/virtio/queue.h"

#include <atomic>
#include <string>

#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::virtio {

namespace {

struct __attribute__((packed)) UsedElem {
  uint32_t id;
  uint32_t len;
};

Result<uint64_t> area_end_check(const GuestMemory& mem, GuestAddress base, uint64_t len,
                                uint64_t align, const char* what) {
  if (base.value() % align != 0) return make_error(std::string("queue: misaligned ") + what);
  if (!mem.check_range(base, len)) {
    return make_error(std::string("queue: ") + what + " outside guest memory");
  }
  return len;
}

}  // namespace

bool Queue::size_valid() const {
  return size != 0 && size <= max_size_ && (size & (size - 1)) == 0;
}

Status Queue::validate(const GuestMemory& mem) const {
  if (!size_valid()) return make_error("queue: size is not a power of two within the maximum");
  const uint64_t n = size;
  KILN_TRY(area_end_check(mem, desc_table, 16 * n, 16, "descriptor table"));
  KILN_TRY(area_end_check(mem, avail_ring, 6 + 2 * n, 2, "available ring"));
  KILN_TRY(area_end_check(mem, used_ring, 6 + 8 * n, 4, "used ring"));
  return ok_status();
}

Result<bool> Queue::has_available(const GuestMemory& mem) const {
  auto idx_addr = avail_ring.checked_add(2);
  if (!idx_addr) return make_error("queue: avail ring address overflows");
  KILN_ASSIGN_OR_RETURN(uint16_t avail_idx, mem.read_obj<uint16_t>(*idx_addr));
  return avail_idx != next_avail_;
}

Result<uint16_t> Queue::request_kick(const GuestMemory& mem, uint16_t avail_idx) {
  // avail_event (after the used ring) = the avail index seen: the driver kicks when it
  // publishes past it. Then look again: a chain published before the driver could see the
  // request comes with no kick (virtio 1.2 §2.7.10).
  auto avail_event = used_ring.checked_add(4 + 8 * uint64_t{size});
  auto idx_addr = avail_ring.checked_add(2);
  if (!avail_event || !idx_addr) return make_error("queue: ring address overflows");
  KILN_TRY(mem.write_obj(*avail_event, avail_idx));
  std::atomic_thread_fence(std::memory_order_seq_cst);
  KILN_ASSIGN_OR_RETURN(uint16_t now, mem.read_obj<uint16_t>(*idx_addr));
  std::atomic_thread_fence(std::memory_order_acquire);
  return now;
}

Result<bool> Queue::arm_kick(const GuestMemory& mem) {
  if (!event_idx) return has_available(mem);
  auto idx_addr = avail_ring.checked_add(2);
  if (!idx_addr) return make_error("queue: avail ring address overflows");
  KILN_ASSIGN_OR_RETURN(uint16_t avail_idx, mem.read_obj<uint16_t>(*idx_addr));
  if (avail_idx != next_avail_) return true;
  KILN_ASSIGN_OR_RETURN(avail_idx, request_kick(mem, avail_idx));
  return avail_idx != next_avail_;
}

Result<std::optional<AvailableChain>> Queue::pop(const GuestMemory& mem) {
  if (!size_valid()) return make_error("queue: invalid size");
  auto idx_addr = avail_ring.checked_add(2);
  if (!idx_addr) return make_error("queue: avail ring address overflows");
  KILN_ASSIGN_OR_RETURN(uint16_t avail_idx, mem.read_obj<uint16_t>(*idx_addr));
  // Ring entries are read only after the index that published them.
  std::atomic_thread_fence(std::memory_order_acquire);

  uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0 && event_idx) {
    KILN_ASSIGN_OR_RETURN(avail_idx, request_kick(mem, avail_idx));
    pending = static_cast<uint16_t>(avail_idx - next_avail_);
  }
  if (pending == 0) return std::optional<AvailableChain>();
  if (pending > size) {
    return make_error("queue: driver published more chains than the queue holds");
  }
  auto slot = avail_ring.checked_add(4 + 2 * uint64_t{static_cast<uint16_t>(next_avail_ % size)});
  if (!slot) return make_error("queue: avail ring address overflows");
  KILN_ASSIGN_OR_RETURN(uint16_t head, mem.read_obj<uint16_t>(*slot));
  if (head >= size) return make_error("queue: avail ring head index out of range");
  ++next_avail_;

  AvailableChain out;
  out.head = head;
  out.chain = walk_descriptor_chain(mem, desc_table, size, head,
                                    ChainWalkOptions{.indirect_allowed = indirect_allowed});
  return std::optional<AvailableChain>(std::move(out));
}

Status Queue::add_used(const GuestMemory& mem, uint16_t head, uint32_t len) {
  if (!size_valid()) return make_error("queue: invalid size");
  auto slot = used_ring.checked_add(4 + 8 * uint64_t{static_cast<uint16_t>(next_used_ % size)});
  if (!slot) return make_error("queue: used ring address overflows");
  KILN_TRY(mem.write_obj(*slot, UsedElem{head, len}));
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  ++next_used_;
  auto idx_addr = used_ring.checked_add(2);
  if (!idx_addr) return make_error("queue: used ring address overflows");
  KILN_TRY(mem.write_obj(*idx_addr, next_used_));
  added_since_notify_ = true;
  return ok_status();
}

Result<bool> Queue::needs_notification(const GuestMemory& mem) {
  if (!added_since_notify_) return false;
  added_since_notify_ = false;
  // Order the used index store before reading the driver's flags or used_event (virtio 1.2
  // §2.7.7.2).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx) {
    KILN_ASSIGN_OR_RETURN(uint16_t flags, mem.read_obj<uint16_t>(avail_ring));
    return (flags & kAvailFlagNoInterrupt) == 0;
  }
  auto used_event_addr = avail_ring.checked_add(4 + 2 * uint64_t{size});
  if (!used_event_addr) return make_error("queue: avail ring address overflows");
  KILN_ASSIGN_OR_RETURN(uint16_t used_event, mem.read_obj<uint16_t>(*used_event_addr));
  const bool was_valid = signalled_used_valid_;
  const uint16_t old_used = signalled_used_;
  signalled_used_ = next_used_;
  signalled_used_valid_ = true;
  // vring_need_event: the driver wants an interrupt once the used index passes used_event,
  // i.e. used_event lies in [old_used, next_used_).
  return !was_valid || static_cast<uint16_t>(next_used_ - used_event - 1) < static_cast<uint16_t>(next_used_ - old_used);
}

Result<bool> serve_queue(const GuestMemory& mem, Queue& queue, AtomicDeviceCounters& counters,
                         const ChainHandler& handler, const ChainAdmit& admit) {
  for (uint32_t i = 0; i < queue.size; ++i) {
    KILN_ASSIGN_OR_RETURN(std::optional<AvailableChain> next, queue.pop(mem));
    if (!next) break;
    if (admit && next->chain.ok() && !admit(next->chain.value())) {
      queue.undo_pop();
      break;
    }
    counters.add_request();
    std::optional<uint32_t> used_len = 0;
    if (next->chain.ok()) {
      used_len = handler(next->chain.value());
    } else {
      counters.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio: malformed descriptor chain: %s",
                     next->chain.error().message.c_str());
    }
    if (used_len) KILN_TRY(queue.add_used(mem, next->head, *used_len));
  }
  return queue.needs_notification(mem);
}

}  // namespace kiln::vmm::virtio

// Queue: one split virtqueue (virtio 1.2 §2.7): the driver-chosen configuration plus the
// device's ring positions. Pops available chains, publishes used elements, decides whether
// the driver wants an interrupt.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "common/result.h"
#include "vmm/memory/guest_address.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/virtio/descriptor_chain.h"
#include "vmm/virtio/device_counters.h"

namespace kiln::vmm::virtio {

// A chain taken from the avail ring. `chain` holds an error when the request is malformed:
// the device then completes it with add_used(head, 0) and counts an error.
struct AvailableChain {
  uint16_t head = 0;
  Result<DescriptorChain> chain = make_error("no chain");
};

class Queue {
 public:
  explicit Queue(uint16_t max_size) : size(max_size), max_size_(max_size) {}

  // Driver configuration: plain fields the transport writes (virtio 1.2 §4.2.2).
  uint16_t size;
  bool ready = false;
  GuestAddress desc_table;
  GuestAddress avail_ring;
  GuestAddress used_ring;
  bool indirect_allowed = false;  // VIRTIO_F_INDIRECT_DESC negotiated
  // VIRTIO_F_EVENT_IDX negotiated (virtio 1.2 §2.7.7, §2.7.10): interrupts follow the driver's
  // used_event, and the device asks for kicks through avail_event, which pop() sets to the
  // avail index each time it finds the ring empty (the driver kicks for the next chain only).
  // A device offering it must pop until the ring is empty (or wake itself) to see new chains.
  bool event_idx = false;

  uint16_t max_size() const { return max_size_; }

  // Whether size is a power of two in [1, max_size] (virtio 1.2 §2.7).
  bool size_valid() const;
  // Whole configuration: size, alignment (virtio 1.2 §2.7, table "Virtqueue Part
  // Alignment"), and every ring area inside guest memory.
  Status validate(const GuestMemory& mem) const;

  // Next available chain; nullopt when the driver has published nothing new. An error means
  // the ring itself is corrupt (avail index ran ahead by more than the queue size, or a head
  // index out of range): the device must be marked NEEDS_RESET.
  Result<std::optional<AvailableChain>> pop(const GuestMemory& mem);
  // Puts the last `count` popped chains back (the device could not use them yet).
  void undo_pop(uint16_t count = 1) { next_avail_ = static_cast<uint16_t>(next_avail_ - count); }
  // Whether the avail ring holds chains not popped yet.
  Result<bool> has_available(const GuestMemory& mem) const;
  // has_available() for a device that stops popping before the ring is empty: with event_idx
  // it first asks for a kick on the next chain (as pop() does when it finds the ring empty),
  // so a false answer means the driver's next chain comes with a kick.
  Result<bool> arm_kick(const GuestMemory& mem);

  // Publishes a used element (virtio 1.2 §2.7.8): `len` = bytes written into the chain.
  Status add_used(const GuestMemory& mem, uint16_t head, uint32_t len);
  // True when something was added since the last call and the driver wants an interrupt:
  // VIRTQ_AVAIL_F_NO_INTERRUPT clear, or with event_idx, the used index passed used_event
  // since the last interrupt (the first call after a restore always says yes).
  Result<bool> needs_notification(const GuestMemory& mem);

  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }
  // For restore from a snapshot.
  void set_positions(uint16_t next_avail, uint16_t next_used) {
    next_avail_ = next_avail;
    next_used_ = next_used;
  }

 private:
  // event_idx: writes avail_event = avail_idx, then returns the avail index read again.
  Result<uint16_t> request_kick(const GuestMemory& mem, uint16_t avail_idx);

  uint16_t max_size_;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  bool added_since_notify_ = false;
  // event_idx: the used index at the last notification decision, once there was one.
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
};

// Serves a queue the common way: pops at most queue.size chains (everything published
// before this call; later chains come with their own notification), hands each valid chain
// to `handler`, which returns the used length (bytes written) or nullopt when the device
// completes the chain later itself (add_used; virtio 1.2 §2.7: used entries need not follow
// the avail order), and completes malformed chains with length 0 as errors. Returns whether the driver wants an interrupt; an error
// means the ring is corrupt (NEEDS_RESET). With `admit`, each valid chain is offered to it
// first; when it refuses (a rate limiter out of tokens), the chain is put back and serving
// stops until the device calls again.
using ChainHandler = std::function<std::optional<uint32_t>(const DescriptorChain&)>;
using ChainAdmit = std::function<bool(const DescriptorChain&)>;
Result<bool> serve_queue(const GuestMemory& mem, Queue& queue, AtomicDeviceCounters& counters,
                         const ChainHandler& handler, const ChainAdmit& admit = {});

}  // namespace kiln::vmm::virtio

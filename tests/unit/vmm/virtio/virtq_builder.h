// Test helper: fake guest RAM plus a split virtqueue laid out by hand (descriptor table,
// avail and used rings), the way a driver would. Shared by virtio and device tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "vmm/memory/guest_memory.h"
#include "vmm/virtio/descriptor_chain.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::virtio::testing {

inline GuestMemory make_memory(uint64_t size = 0x100000) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0), static_cast<size_t>(size)}});
  if (!mem.ok()) std::abort();
  return std::move(*mem);
}

struct Buf {
  uint64_t addr;
  uint32_t len;
  bool write;
};

// One driver-side queue inside `mem`: descriptors at base, avail at base+0x1000*k, ...
class VirtqBuilder {
 public:
  VirtqBuilder(const GuestMemory& mem, uint64_t base, uint16_t size)
      : mem_(mem), size_(size), desc_(base), avail_(base + 16 * uint64_t{size}),
        used_(((base + 16 * uint64_t{size} + 6 + 2 * uint64_t{size}) + 3) & ~uint64_t{3}) {}

  uint16_t size() const { return size_; }
  GuestAddress desc() const { return GuestAddress(desc_); }
  GuestAddress avail() const { return GuestAddress(avail_); }
  GuestAddress used() const { return GuestAddress(used_); }
  uint64_t end() const { return used_ + 6 + 8 * uint64_t{size_}; }

  Queue queue(uint16_t max_size = 0) const {
    Queue q(max_size ? max_size : size_);
    q.size = size_;
    q.desc_table = desc();
    q.avail_ring = avail();
    q.used_ring = used();
    q.ready = true;
    return q;
  }

  void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    write_desc(desc_ + 16 * uint64_t{i}, addr, len, flags, next);
  }
  static void write_desc_at(const GuestMemory& mem, uint64_t at, uint64_t addr, uint32_t len,
                            uint16_t flags, uint16_t next) {
    VirtqDesc d{addr, len, flags, next};
    ASSERT_TRUE(mem.write_obj(GuestAddress(at), d).ok());
  }

  // Writes a chain of buffers into free descriptors, publishes it, returns the head.
  uint16_t add_chain(const std::vector<Buf>& bufs) {
    uint16_t head = next_desc_;
    for (size_t i = 0; i < bufs.size(); ++i) {
      uint16_t idx = static_cast<uint16_t>((next_desc_ + i) % size_);
      uint16_t flags = bufs[i].write ? kDescFlagWrite : 0;
      uint16_t next = 0;
      if (i + 1 < bufs.size()) {
        flags |= kDescFlagNext;
        next = static_cast<uint16_t>((idx + 1) % size_);
      }
      set_desc(idx, bufs[i].addr, bufs[i].len, flags, next);
    }
    next_desc_ = static_cast<uint16_t>((next_desc_ + bufs.size()) % size_);
    publish(head);
    return head;
  }

  void publish(uint16_t head) {
    uint64_t slot = avail_ + 4 + 2 * uint64_t{static_cast<uint16_t>(avail_idx_ % size_)};
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(slot), head).ok());
    ++avail_idx_;
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_ + 2), avail_idx_).ok());
  }
  void set_avail_idx(uint16_t v) {
    avail_idx_ = v;
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_ + 2), v).ok());
  }
  void set_avail_flags(uint16_t flags) {
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_), flags).ok());
  }

  // VIRTIO_F_EVENT_IDX fields: used_event (the driver's, after the avail ring) and avail_event
  // (the device's, after the used ring).
  void set_used_event(uint16_t v) {
    ASSERT_TRUE(mem_.write_obj<uint16_t>(GuestAddress(avail_ + 4 + 2 * uint64_t{size_}), v).ok());
  }
  uint16_t avail_event() const { return *mem_.read_obj<uint16_t>(GuestAddress(used_ + 4 + 8 * uint64_t{size_})); }

  uint16_t used_idx() const { return *mem_.read_obj<uint16_t>(GuestAddress(used_ + 2)); }
  // Used element i: (id, len).
  std::pair<uint32_t, uint32_t> used_elem(uint16_t i) const {
    uint64_t at = used_ + 4 + 8 * uint64_t{static_cast<uint16_t>(i % size_)};
    return {*mem_.read_obj<uint32_t>(GuestAddress(at)), *mem_.read_obj<uint32_t>(GuestAddress(at + 4))};
  }

 private:
  void write_desc(uint64_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    write_desc_at(mem_, at, addr, len, flags, next);
  }

  const GuestMemory& mem_;
  uint16_t size_;
  uint64_t desc_, avail_, used_;
  uint16_t next_desc_ = 0;
  uint16_t avail_idx_ = 0;
};

inline std::vector<uint8_t> read_bytes(const GuestMemory& mem, uint64_t addr, size_t n) {
  std::vector<uint8_t> out(n);
  EXPECT_TRUE(mem.read(GuestAddress(addr), out).ok());
  return out;
}
inline void write_bytes(const GuestMemory& mem, uint64_t addr, const std::vector<uint8_t>& b) {
  ASSERT_TRUE(mem.write(GuestAddress(addr), b).ok());
}

}  // namespace kiln::vmm::virtio::testing

// Fuzz target: split-virtqueue descriptor-chain walking and queue pop/add_used/serve_queue
// (vmm/virtio/descriptor_chain.h, queue.h) with fuzz bytes as queue registers and guest RAM.
// Input: 20-byte register block (see Registers), then the guest RAM image.
#include <cstdint>
#include <vector>

#include "tests/fuzz/support/fuzz_guest_memory.h"
#include "tests/fuzz/support/fuzz_input.h"
#include "tests/fuzz/support/quiet_logs.h"
#include "vmm/virtio/descriptor_chain.h"
#include "vmm/virtio/queue.h"

namespace kiln::fuzz {
namespace {

using vmm::GuestAddress;
using vmm::virtio::ChainReader;
using vmm::virtio::ChainWriter;
using vmm::virtio::DescriptorChain;
using vmm::virtio::Queue;

struct Registers {
  uint8_t flags = 0;  // bit0 indirect allowed, bit1 addresses near 2^64, bit2 restore positions, bit3 event_idx
  uint8_t pops = 0;   // how many chains to pop
  uint16_t size = 0;
  uint16_t head = 0;
  uint16_t next_avail = 0;
  uint32_t desc = 0, avail = 0, used = 0;
};

GuestAddress to_address(uint32_t raw, bool high) {
  // Mostly inside (or just past) the layout; with `high`, next to the top of the address space.
  if (high) return GuestAddress(0xffff'ffff'0000'0000ull | raw);
  return GuestAddress(raw % (kGuestSpan + 0x100));
}

uint64_t total(const std::vector<std::span<uint8_t>>& bufs) {
  uint64_t n = 0;
  for (const auto& b : bufs) n += b.size();
  return n;
}

// A valid chain must only hand out views inside guest RAM, with lengths that add up.
void check_chain(const DescriptorChain& c, uint16_t queue_size) {
  const FuzzGuestMemory& fm = FuzzGuestMemory::instance();
  for (const auto& b : c.readable) KILN_FUZZ_CHECK(fm.contains(b));
  for (const auto& b : c.writable) KILN_FUZZ_CHECK(fm.contains(b));
  KILN_FUZZ_CHECK(total(c.readable) == c.readable_len);
  KILN_FUZZ_CHECK(total(c.writable) == c.writable_len);
  KILN_FUZZ_CHECK(c.head < queue_size);
}

// Exercises the cursor helpers over a chain: the device's view of a request.
uint32_t consume(const DescriptorChain& c) {
  ChainReader r(c.readable);
  uint8_t hdr[16];
  uint64_t before = r.remaining();
  if (r.read(hdr).ok()) KILN_FUZZ_CHECK(r.remaining() == before - sizeof(hdr));
  else KILN_FUZZ_CHECK(r.remaining() == before);
  (void)r.skip(7);
  auto views = r.take(100);
  if (views.ok()) {
    uint64_t n = 0;
    for (const auto& v : *views) {
      KILN_FUZZ_CHECK(FuzzGuestMemory::instance().contains(v));
      n += v.size();
    }
    KILN_FUZZ_CHECK(n == 100);
  }
  std::vector<uint8_t> rest(static_cast<size_t>(std::min<uint64_t>(r.remaining(), 1 << 20)));
  (void)r.read(rest);

  ChainWriter w(c.writable);
  const uint8_t three[3] = {1, 2, 3};
  (void)w.write(three);
  auto out = w.take(50);
  if (out.ok()) {
    for (auto& v : *out) {
      KILN_FUZZ_CHECK(FuzzGuestMemory::instance().contains(v));
      std::memset(v.data(), 0xab, v.size());
    }
  }
  std::vector<uint8_t> fill(static_cast<size_t>(std::min<uint64_t>(w.remaining(), 1 << 20)), 0xcd);
  (void)w.write(fill);
  KILN_FUZZ_CHECK(w.written() <= c.writable_len);
  return static_cast<uint32_t>(w.written());
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  quiet_vmm_logs();
  FuzzInput in(data, size);
  Registers regs;
  regs.flags = in.u8();
  regs.pops = in.u8();
  regs.size = in.u16();
  regs.head = in.u16();
  regs.next_avail = in.u16();
  regs.desc = in.u32();
  regs.avail = in.u32();
  regs.used = in.u32();
  FuzzGuestMemory& fm = FuzzGuestMemory::instance();
  fm.load(in.rest());
  const kiln::vmm::GuestMemory& mem = fm.mem();

  bool high = (regs.flags & 2) != 0;
  kiln::vmm::virtio::ChainWalkOptions opts;
  opts.indirect_allowed = (regs.flags & 1) != 0;

  // 1. A direct walk from the given head (queue size as the driver wrote it).
  auto chain = kiln::vmm::virtio::walk_descriptor_chain(mem, to_address(regs.desc, high),
                                                        regs.size, regs.head, opts);
  if (chain.ok()) {
    check_chain(*chain, regs.size);
    consume(*chain);
  }

  // 2. The queue as a device would drive it after activation (validate first, as activate does).
  Queue q(256);
  q.size = regs.size;
  q.desc_table = to_address(regs.desc, high);
  q.avail_ring = to_address(regs.avail, high);
  q.used_ring = to_address(regs.used, high);
  q.indirect_allowed = opts.indirect_allowed;
  q.event_idx = (regs.flags & 8) != 0;  // VIRTIO_F_EVENT_IDX: avail_event writes, used_event reads
  q.ready = true;
  if (!q.validate(mem).ok()) return 0;
  KILN_FUZZ_CHECK(q.size_valid());
  if (regs.flags & 4) q.set_positions(regs.next_avail, regs.next_avail);
  for (unsigned i = 0; i < (regs.pops % 64u) + 1; ++i) {
    auto popped = q.pop(mem);
    if (!popped.ok() || !popped->has_value()) break;
    const kiln::vmm::virtio::AvailableChain& ac = **popped;
    KILN_FUZZ_CHECK(ac.head < q.size);
    uint32_t len = 0;
    if (ac.chain.ok()) {
      check_chain(*ac.chain, q.size);
      len = consume(*ac.chain);
    }
    if (!q.add_used(mem, ac.head, len).ok()) break;
  }
  (void)q.has_available(mem);
  (void)q.arm_kick(mem);
  (void)q.needs_notification(mem);

  // 3. serve_queue over the same rings (positions continue where pops left off).
  kiln::vmm::virtio::AtomicDeviceCounters counters;
  (void)kiln::vmm::virtio::serve_queue(mem, q, counters, [&](const DescriptorChain& c) {
    check_chain(c, q.size);
    return consume(c);
  });
  return 0;
}

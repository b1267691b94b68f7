// FuzzGuestMemory: a fixed guest RAM layout for the virtio fuzz targets, refilled from fuzz
// bytes for every input, plus the oracle that every host view handed out lies inside it.
// Layout: [0, 0x8000) and [0x8000, 0x10000) (two adjacent regions, so buffers may straddle
// a region boundary) and [0x20000, 0x21000) after a hole.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "tests/fuzz/support/fuzz_input.h"
#include "vmm/memory/guest_memory.h"

namespace kiln::fuzz {

// Where the seed generator (tests/fuzz/tools/gen_seeds.py) lays out a queue of kSeedQueueSize.
inline constexpr uint64_t kSeedDescTable = 0x0000;
inline constexpr uint64_t kSeedAvailRing = 0x0400;
inline constexpr uint64_t kSeedUsedRing = 0x0800;
inline constexpr uint16_t kSeedQueueSize = 16;
// One past the highest guest address in the layout (addresses are drawn below a bit more).
inline constexpr uint64_t kGuestSpan = 0x21000;

class FuzzGuestMemory {
 public:
  static FuzzGuestMemory& instance() {
    static FuzzGuestMemory m;
    return m;
  }

  const vmm::GuestMemory& mem() const { return mem_; }

  // Zeroes RAM, then copies `image` over it region by region in address order.
  void load(std::span<const uint8_t> image) {
    size_t pos = 0;
    for (const vmm::GuestRegionInfo& r : mem_.regions()) {
      std::memset(r.host, 0, r.size);
      size_t n = std::min<size_t>(r.size, image.size() - pos);
      if (n > 0) std::memcpy(r.host, image.data() + pos, n);
      pos += n;
    }
  }

  // Whether a host view lies entirely inside one region of guest RAM.
  bool contains(std::span<const uint8_t> view) const {
    if (view.empty()) return true;
    auto p = reinterpret_cast<uintptr_t>(view.data());
    for (const vmm::GuestRegionInfo& r : mem_.regions()) {
      auto b = reinterpret_cast<uintptr_t>(r.host);
      if (p >= b && p - b <= r.size && view.size() <= r.size - (p - b)) return true;
    }
    return false;
  }

 private:
  FuzzGuestMemory() {
    auto m = vmm::GuestMemory::create_anonymous({{vmm::GuestAddress(0), 0x8000},
                                                 {vmm::GuestAddress(0x8000), 0x8000},
                                                 {vmm::GuestAddress(0x20000), 0x1000}});
    if (!m.ok()) fuzz_fail(__FILE__, __LINE__, "guest memory");
    mem_ = std::move(*m);
  }
  vmm::GuestMemory mem_;
};

}  // namespace kiln::fuzz

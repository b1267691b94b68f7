// GuestMemory: the guest-physical RAM regions and the only way kiln code touches them.
// Every access is bounds- and overflow-checked; a bad address is an error value, never UB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "common/mapped_region.h"
#include "common/result.h"
#include "vmm/memory/guest_address.h"

namespace kiln::vmm {

// What to create: one region of guest RAM.
struct GuestRegionSpec {
  GuestAddress base;
  size_t size = 0;
};

// A region as seen by the KVM core (KVM_SET_USER_MEMORY_REGION needs all three).
struct GuestRegionInfo {
  GuestAddress base;
  uint64_t size = 0;
  uint8_t* host = nullptr;
};

class GuestMemory {
 public:
  // One region to adopt: e.g. a snapshot memory file mapped MAP_PRIVATE.
  struct Adopted {
    GuestAddress base;
    MappedRegion mapping;  // the region's size is mapping.size()
  };

  GuestMemory() = default;
  GuestMemory(GuestMemory&&) = default;
  GuestMemory& operator=(GuestMemory&&) = default;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Anonymous private RAM for each spec. Regions must be non-empty and must not overlap.
  static Result<GuestMemory> create_anonymous(const std::vector<GuestRegionSpec>& specs);
  // Takes ownership of existing mappings (same rules as create_anonymous).
  static Result<GuestMemory> from_mappings(std::vector<Adopted> regions);

  // Regions sorted by guest base.
  std::vector<GuestRegionInfo> regions() const;
  size_t region_count() const { return regions_.size(); }

  // Whether [addr, addr+len) lies inside guest RAM (may span adjacent regions).
  bool check_range(GuestAddress addr, uint64_t len) const;

  // Host view of [addr, addr+len); fails unless it lies inside a single region. len may be 0.
  Result<std::span<uint8_t>> slice(GuestAddress addr, uint64_t len) const;

  // Copies between guest RAM and host buffers; may cross adjacent regions. Either the whole
  // range is valid and copied, or nothing is copied and an error is returned.
  Status read(GuestAddress addr, std::span<uint8_t> out) const;
  Status write(GuestAddress addr, std::span<const uint8_t> in) const;

  template <typename T>
  Result<T> read_obj(GuestAddress addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    KILN_TRY(read(addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof(T))));
    return v;
  }
  template <typename T>
  Status write_obj(GuestAddress addr, const T& v) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(addr, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof(T)));
  }

 private:
  struct Region {
    GuestAddress base;
    uint64_t size = 0;
    MappedRegion mapping;
  };
  // Region containing addr, or nullptr.
  const Region* find(GuestAddress addr) const;
  static Result<GuestMemory> build(std::vector<Region> regions);

  std::vector<Region> regions_;  // sorted by base, non-overlapping
};

}  // namespace kiln::vmm

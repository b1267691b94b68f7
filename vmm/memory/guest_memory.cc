// GuestMemory implementation: region lookup and checked copies.
#include "vmm/memory/guest_memory.h"

#include <algorithm>
#include <string>

#include "common/hex.h"

namespace kiln::vmm {

Result<GuestMemory> GuestMemory::build(std::vector<Region> regions) {
  std::sort(regions.begin(), regions.end(),
            [](const Region& a, const Region& b) { return a.base < b.base; });
  for (size_t i = 0; i < regions.size(); ++i) {
    const Region& r = regions[i];
    if (r.size == 0) return make_error("guest memory: empty region at " + hex(r.base.value()));
    // The last byte must be addressable: base + size - 1 must not wrap.
    auto last = r.base.checked_add(r.size - 1);
    if (!last) return make_error("guest memory: region at " + hex(r.base.value()) + " wraps");
    if (i + 1 < regions.size() && last->value() >= regions[i + 1].base.value()) {
      return make_error("guest memory: regions at " + hex(r.base.value()) + " and " +
                        hex(regions[i + 1].base.value()) + " overlap");
    }
  }
  GuestMemory m;
  m.regions_ = std::move(regions);
  return m;
}

Result<GuestMemory> GuestMemory::create_anonymous(const std::vector<GuestRegionSpec>& specs) {
  std::vector<Region> regions;
  regions.reserve(specs.size());
  for (const auto& s : specs) {
    if (s.size == 0) return make_error("guest memory: empty region at " + hex(s.base.value()));
    KILN_ASSIGN_OR_RETURN(MappedRegion map, MappedRegion::anonymous(s.size));
    regions.push_back(Region{s.base, s.size, std::move(map)});
  }
  return build(std::move(regions));
}

Result<GuestMemory> GuestMemory::from_mappings(std::vector<Adopted> adopted) {
  std::vector<Region> regions;
  regions.reserve(adopted.size());
  for (auto& a : adopted) {
    if (!a.mapping.valid()) return make_error("guest memory: invalid mapping adopted");
    uint64_t size = a.mapping.size();
    regions.push_back(Region{a.base, size, std::move(a.mapping)});
  }
  return build(std::move(regions));
}

std::vector<GuestRegionInfo> GuestMemory::regions() const {
  std::vector<GuestRegionInfo> out;
  out.reserve(regions_.size());
  for (const auto& r : regions_) out.push_back({r.base, r.size, r.mapping.data()});
  return out;
}

const GuestMemory::Region* GuestMemory::find(GuestAddress addr) const {
  // First region whose base is > addr, then step back one.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                             [](GuestAddress a, const Region& r) { return a < r.base; });
  if (it == regions_.begin()) return nullptr;
  --it;
  uint64_t off = addr.value() - it->base.value();
  return off < it->size ? &*it : nullptr;
}

Result<std::span<uint8_t>> GuestMemory::slice(GuestAddress addr, uint64_t len) const {
  const Region* r = find(addr);
  if (r == nullptr) {
    return make_error("guest memory: address " + hex(addr.value()) + " is not in guest RAM");
  }
  uint64_t off = addr.value() - r->base.value();
  // off < size holds, so size - off cannot underflow.
  if (len > r->size - off) {
    return make_error("guest memory: range " + hex(addr.value()) + "+" + hex(len) +
                      " crosses the end of its region");
  }
  return std::span<uint8_t>(r->mapping.data() + off, static_cast<size_t>(len));
}

bool GuestMemory::check_range(GuestAddress addr, uint64_t len) const {
  if (len == 0) return find(addr) != nullptr;
  if (!addr.checked_add(len - 1)) return false;
  GuestAddress cur = addr;
  uint64_t left = len;
  while (left > 0) {
    const Region* r = find(cur);
    if (r == nullptr) return false;
    uint64_t avail = r->size - (cur.value() - r->base.value());
    uint64_t n = std::min(avail, left);
    left -= n;
    if (left > 0) cur = GuestAddress(cur.value() + n);  // no wrap: checked above
  }
  return true;
}

Status GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
  if (!check_range(addr, out.size())) {
    return make_error("guest memory: read of " + hex(out.size()) + " bytes at " +
                      hex(addr.value()) + " is out of range");
  }
  GuestAddress cur = addr;
  size_t done = 0;
  while (done < out.size()) {
    const Region* r = find(cur);  // non-null: range checked
    uint64_t off = cur.value() - r->base.value();
    size_t n = static_cast<size_t>(std::min<uint64_t>(r->size - off, out.size() - done));
    std::memcpy(out.data() + done, r->mapping.data() + off, n);
    done += n;
    cur = GuestAddress(cur.value() + n);
  }
  return ok_status();
}

Status GuestMemory::write(GuestAddress addr, std::span<const uint8_t> in) const {
  if (!check_range(addr, in.size())) {
    return make_error("guest memory: write of " + hex(in.size()) + " bytes at " +
                      hex(addr.value()) + " is out of range");
  }
  GuestAddress cur = addr;
  size_t done = 0;
  while (done < in.size()) {
    const Region* r = find(cur);
    uint64_t off = cur.value() - r->base.value();
    size_t n = static_cast<size_t>(std::min<uint64_t>(r->size - off, in.size() - done));
    std::memcpy(r->mapping.data() + off, in.data() + done, n);
    done += n;
    cur = GuestAddress(cur.value() + n);
  }
  return ok_status();
}

}  // namespace kiln::vmm

// Zero page construction.
#include "vmm/arch/boot_params.h"

#include <algorithm>
#include <cstring>

#include "vmm/arch/layout.h"

namespace kiln::vmm::arch {
namespace {
constexpr uint32_t kE820Ram = 1, kE820Reserved = 2;
constexpr uint32_t kHdrMagic = 0x53726448;
}  // namespace

std::vector<GuestRegionSpec> ram_regions(uint64_t mem_bytes) {
  std::vector<GuestRegionSpec> out;
  uint64_t low = std::min(mem_bytes, layout::kMmioGapStart);
  out.push_back({GuestAddress(0), static_cast<size_t>(low)});
  if (mem_bytes > low) out.push_back({GuestAddress(layout::kMmioGapEnd), static_cast<size_t>(mem_bytes - low)});
  return out;
}

uint64_t initrd_limit(uint64_t mem_bytes, const std::optional<setup_header>& hdr) {
  uint64_t limit = std::min(mem_bytes, layout::kMmioGapStart);
  uint64_t max_addr = hdr ? uint64_t{hdr->initrd_addr_max} + 1 : 0x38000000;  // boot.rst default
  return std::min(limit, max_addr);
}

Status write_boot_params(const GuestMemory& mem, const BootParamsSpec& spec) {
  if (spec.cmdline.size() + 1 > layout::kCmdlineMax) {
    return make_error("kernel command line is " + std::to_string(spec.cmdline.size()) +
                      " bytes; the limit is " + std::to_string(layout::kCmdlineMax - 1));
  }
  std::vector<uint8_t> cmd(spec.cmdline.begin(), spec.cmdline.end());
  cmd.push_back(0);
  KILN_TRY(mem.write(GuestAddress(layout::kCmdline), cmd));

  boot_params bp{};
  if (spec.bzimage_hdr) bp.hdr = *spec.bzimage_hdr;
  bp.hdr.type_of_loader = 0xff;
  bp.hdr.boot_flag = 0xaa55;
  bp.hdr.header = kHdrMagic;
  bp.hdr.loadflags |= LOADED_HIGH | KEEP_SEGMENTS;
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdline);
  bp.hdr.cmdline_size = static_cast<uint32_t>(spec.cmdline.size());
  if (!spec.bzimage_hdr) bp.hdr.kernel_alignment = 0x01000000;
  if (spec.initrd) {
    bp.hdr.ramdisk_image = static_cast<uint32_t>(spec.initrd->addr.value());
    bp.hdr.ramdisk_size = static_cast<uint32_t>(spec.initrd->size);
  }

  // e820: low RAM up to the EBDA (MP table), reserved EBDA, RAM from 1 MiB up to the MMIO gap,
  // and RAM above 4 GiB.
  auto add = [&bp](uint64_t addr, uint64_t size, uint32_t type) -> Status {
    if (bp.e820_entries >= E820_MAX_ENTRIES_ZEROPAGE) return make_error("too many e820 entries");
    bp.e820_table[bp.e820_entries++] = boot_e820_entry{addr, size, type};
    return ok_status();
  };
  uint64_t low_end = std::min(spec.mem_bytes, layout::kMmioGapStart);
  if (low_end <= layout::kHimemStart) return make_error("guest memory must be larger than 1 MiB");
  KILN_TRY(add(0, layout::kEbdaStart, kE820Ram));
  KILN_TRY(add(layout::kEbdaStart, layout::kEbdaEnd - layout::kEbdaStart, kE820Reserved));
  KILN_TRY(add(layout::kHimemStart, low_end - layout::kHimemStart, kE820Ram));
  if (spec.mem_bytes > low_end) KILN_TRY(add(layout::kMmioGapEnd, spec.mem_bytes - low_end, kE820Ram));
  return mem.write_obj(GuestAddress(layout::kZeroPage), bp);
}

}  // namespace kiln::vmm::arch

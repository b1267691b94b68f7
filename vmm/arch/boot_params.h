// Builds the Linux zero page (struct boot_params) with the e820 map, command line and initrd,
// and the RAM layout shared with the memory setup (zero-page.rst, boot.rst).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/arch/kernel_loader.h"
#include "vmm/memory/guest_memory.h"

namespace kiln::vmm::arch {

// Guest RAM regions for `mem_bytes` of RAM: below the 3 GiB MMIO gap, and above 4 GiB.
std::vector<GuestRegionSpec> ram_regions(uint64_t mem_bytes);

struct BootParamsSpec {
  uint64_t mem_bytes = 0;
  std::string cmdline;
  std::optional<LoadedInitrd> initrd;
  std::optional<setup_header> bzimage_hdr;
};

// Writes the command line at layout::kCmdline and the zero page at layout::kZeroPage.
Status write_boot_params(const GuestMemory& mem, const BootParamsSpec& spec);

// Highest address (exclusive) an initrd may end at for this kernel and RAM size.
uint64_t initrd_limit(uint64_t mem_bytes, const std::optional<setup_header>& bzimage_hdr);

}  // namespace kiln::vmm::arch

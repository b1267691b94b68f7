// Loads a guest kernel into guest memory: an ELF vmlinux (PT_LOAD segments at their physical
// addresses, booted at its 64-bit entry) or a bzImage (protected-mode part at 1 MiB, booted at
// its 64-bit entry, setup header handed to the zero page). Linux x86 boot protocol, boot.rst.
#pragma once

#include <asm/bootparam.h>

#include <optional>
#include <string>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"

namespace kiln::vmm::arch {

struct LoadedKernel {
  GuestAddress entry;                        // 64-bit entry point (physical)
  uint64_t end = 0;                          // first byte after the loaded image
  std::optional<setup_header> bzimage_hdr;   // set for a bzImage
};

// `fd` is read with pread only; every offset and length is checked against the file size and
// guest memory, so a hostile image is an error, not a host fault.
Result<LoadedKernel> load_kernel(const GuestMemory& mem, int fd);
Result<LoadedKernel> load_kernel_file(const GuestMemory& mem, const std::string& path);

// Loads an initrd at the highest page-aligned address below `limit` that fits in RAM.
struct LoadedInitrd {
  GuestAddress addr;
  uint64_t size = 0;
};
Result<LoadedInitrd> load_initrd_file(const GuestMemory& mem, const std::string& path,
                                      uint64_t lowest, uint64_t limit);

}  // namespace kiln::vmm::arch

// The arm64 kernel Image and where the boot pieces go in DRAM (Documentation/arch/arm64/
// booting.rst): the Image's 64-byte header (magic "ARM\x64", text_offset, image_size, flags),
// the kernel at a 2 MiB aligned base + text_offset, the device tree in the top 2 MiB block of
// DRAM (fdt.h: fdt_address) and the initrd right below it. Pure: bytes and numbers in, checked.
#pragma once

#include <cstdint>
#include <span>

#include "common/result.h"

namespace kiln::vmm::aarch64 {

inline constexpr size_t kImageHeaderSize = 64;
inline constexpr uint32_t kImageMagic = 0x644d5241;  // "ARM\x64", little endian at offset 56

struct ImageHeader {
  uint64_t text_offset = 0;
  uint64_t image_size = 0;  // the kernel's effective size, BSS included (>= the file's)
  unsigned page_size_kib = 0;  // 0: the kernel did not say
  bool place_anywhere = false;  // flags bit 3: any 2 MiB aligned base in DRAM, not only the lowest
};

// Parses the first bytes of an Image file of `file_size` bytes. Errors name what is wrong: too
// short, an ELF file (the vmlinux, not arch/arm64/boot/Image), another magic, a big-endian
// kernel, reserved flag bits set, a text_offset that is not 4 KiB aligned or not below 2 MiB, an
// image_size smaller than the file. image_size 0 (kernels before 3.17): text_offset 0x80000 and
// the file's size, as booting.rst says.
Result<ImageHeader> parse_image_header(std::span<const uint8_t> head, uint64_t file_size);

// Where each piece of an arm64 boot goes in [mem_base, mem_base + mem_size).
struct BootPlacement {
  uint64_t kernel = 0;       // load address: 2 MiB aligned DRAM base + text_offset
  uint64_t kernel_end = 0;   // kernel + image_size
  uint64_t initrd = 0;       // page aligned, right below the device tree (0: no initrd)
  uint64_t fdt = 0;          // fdt_address(): the top 2 MiB block
};

// Fails when the pieces do not fit without overlapping (the kernel, then free memory, then the
// initrd, then the device tree).
Result<BootPlacement> place_boot(const ImageHeader& image, uint64_t initrd_size, uint64_t mem_base, uint64_t mem_size);

}  // namespace kiln::vmm::aarch64

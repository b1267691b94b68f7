// The arm64 Image header and boot placement (image.h).
#include "vmm/arch/aarch64/image.h"

#include <cstring>

#include "vmm/arch/aarch64/fdt.h"
#include "vmm/arch/aarch64/layout.h"

namespace kiln::vmm::aarch64 {
namespace {

constexpr uint64_t kLegacyTextOffset = 0x80000;
constexpr uint64_t kPage = 4096;

uint64_t le64(std::span<const uint8_t> b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

Result<ImageHeader> parse_image_header(std::span<const uint8_t> head, uint64_t file_size) {
  if (head.size() < kImageHeaderSize || file_size < kImageHeaderSize) {
    return make_error("arm64 Image: shorter than its 64-byte header");
  }
  if (std::memcmp(head.data(), "\x7f" "ELF", 4) == 0) {
    return make_error("arm64 Image: this is an ELF file (vmlinux); the kernel wants arch/arm64/boot/Image");
  }
  const uint32_t magic = static_cast<uint32_t>(le64(head, 56));
  if (magic != kImageMagic) return make_error("arm64 Image: bad magic (not an arm64 kernel Image)");
  ImageHeader h;
  h.text_offset = le64(head, 8);
  h.image_size = le64(head, 16);
  const uint64_t flags = le64(head, 24);
  if (h.image_size == 0) {
    // Before 3.17: no flags, text_offset 0x80000 in the kernel's endianness (little here).
    h.text_offset = kLegacyTextOffset;
    h.image_size = file_size;
    return h;
  }
  if (flags & 1) return make_error("arm64 Image: a big-endian kernel (flags bit 0); kiln runs little-endian guests");
  if (flags >> 4) return make_error("arm64 Image: reserved flag bits set (flags " + std::to_string(flags) + ")");
  static constexpr unsigned kPageKib[] = {0, 4, 16, 64};
  h.page_size_kib = kPageKib[(flags >> 1) & 3];
  h.place_anywhere = (flags >> 3) & 1;
  if (h.text_offset % kPage != 0 || h.text_offset >= layout::kKernelAlign) {
    return make_error("arm64 Image: text_offset " + std::to_string(h.text_offset) + " is not a 4 KiB multiple below 2 MiB");
  }
  if (h.image_size < file_size) {
    return make_error("arm64 Image: image_size " + std::to_string(h.image_size) + " is smaller than the file (" +
                      std::to_string(file_size) + " bytes)");
  }
  return h;
}

Result<BootPlacement> place_boot(const ImageHeader& image, uint64_t initrd_size, uint64_t mem_base, uint64_t mem_size) {
  if (mem_base + mem_size < mem_base) return make_error("memory wraps around");
  BootPlacement p;
  KILN_ASSIGN_OR_RETURN(p.fdt, fdt_address(mem_base, mem_size));
  p.kernel = align_up(mem_base, layout::kKernelAlign) + image.text_offset;
  p.kernel_end = p.kernel + image.image_size;
  if (p.kernel_end < p.kernel || p.kernel_end > p.fdt) {
    return make_error("the kernel (" + std::to_string(image.image_size) + " bytes) does not fit below the device tree");
  }
  if (initrd_size > 0) {
    const uint64_t room = p.fdt - align_up(p.kernel_end, kPage);
    if (initrd_size > room) {
      return make_error("the initrd (" + std::to_string(initrd_size) + " bytes) does not fit between the kernel and the device tree (" +
                        std::to_string(room) + " bytes)");
    }
    p.initrd = (p.fdt - initrd_size) & ~(kPage - 1);
  }
  return p;
}

}  // namespace kiln::vmm::aarch64

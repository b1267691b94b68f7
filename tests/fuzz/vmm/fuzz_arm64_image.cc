// Fuzz target: the arm64 Image header and the boot placement (vmm/arch/aarch64/image.h).
// Input: the Image's first 64 bytes, then three little-endian u64: the file size, the initrd
// size and the memory size (DRAM at its base). Whatever is accepted must be placed in order:
// kernel, then the initrd, then the device tree, all inside memory.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "vmm/arch/aarch64/image.h"
#include "vmm/arch/aarch64/layout.h"

namespace {

uint64_t take_u64(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::vmm::aarch64;
  if (size < kImageHeaderSize + 24) return 0;
  const uint64_t file_size = take_u64(data + kImageHeaderSize);
  const uint64_t initrd_size = take_u64(data + kImageHeaderSize + 8);
  const uint64_t mem_size = take_u64(data + kImageHeaderSize + 16) & ((1ull << 40) - 1);
  auto header = parse_image_header({data, kImageHeaderSize}, file_size);
  if (!header.ok()) return 0;
  if (header->text_offset >= layout::kKernelAlign || header->image_size < file_size) std::abort();
  auto p = place_boot(*header, initrd_size, layout::kDramBase, mem_size);
  if (!p.ok()) return 0;
  const uint64_t end = layout::kDramBase + mem_size;
  if (p->kernel < layout::kDramBase || p->kernel_end > p->fdt || p->fdt + layout::kFdtMaxSize > end) std::abort();
  if (initrd_size > 0 && (p->initrd < p->kernel_end || p->initrd + initrd_size > p->fdt || p->initrd % 4096 != 0)) std::abort();
  return 0;
}

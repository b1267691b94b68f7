// The arm64 Image header with good and hostile headers, and where a boot's pieces go
// (vmm/arch/aarch64/image.h).
#include "vmm/arch/aarch64/image.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "vmm/arch/aarch64/layout.h"

namespace kiln::vmm::aarch64 {
namespace {

std::vector<uint8_t> header(uint64_t text_offset, uint64_t image_size, uint64_t flags, uint32_t magic = kImageMagic) {
  std::vector<uint8_t> h(kImageHeaderSize, 0);
  auto put = [&](size_t at, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) h[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(8, text_offset, 8);
  put(16, image_size, 8);
  put(24, flags, 8);
  put(56, magic, 4);
  return h;
}

void refused(const std::vector<uint8_t>& h, uint64_t file_size, const std::string& part) {
  auto r = parse_image_header(h, file_size);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

TEST(Arm64Image, ReadsAModernHeader) {
  // 4 KiB pages (flags bits 1-2 = 1), placed anywhere (bit 3).
  auto h = parse_image_header(header(0, 40 << 20, 0b1010), 30 << 20);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->text_offset, 0u);
  EXPECT_EQ(h->image_size, 40u << 20);
  EXPECT_EQ(h->page_size_kib, 4u);
  EXPECT_TRUE(h->place_anywhere);
  auto big_pages = parse_image_header(header(0x80000, 8 << 20, 0b0110), 8 << 20);
  ASSERT_TRUE(big_pages.ok());
  EXPECT_EQ(big_pages->page_size_kib, 64u);
  EXPECT_FALSE(big_pages->place_anywhere);
}

TEST(Arm64Image, AHeaderBefore317MeansTextOffset0x80000AndTheFileSize) {
  auto h = parse_image_header(header(0x12345, 0, 0), 9 << 20);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->text_offset, 0x80000u);
  EXPECT_EQ(h->image_size, 9u << 20);
}

TEST(Arm64Image, RefusesHostileHeaders) {
  refused(std::vector<uint8_t>(63, 0), 63, "shorter than its 64-byte header");
  refused(header(0, 1 << 20, 0), 10, "shorter");
  std::vector<uint8_t> elf = header(0, 1 << 20, 0);
  std::memcpy(elf.data(), "\x7f" "ELF", 4);
  refused(elf, 1 << 20, "ELF file (vmlinux)");
  refused(header(0, 1 << 20, 0, 0x12345678), 1 << 20, "bad magic");
  refused(header(0, 1 << 20, 1), 1 << 20, "big-endian");
  refused(header(0, 1 << 20, 1ull << 4), 1 << 20, "reserved flag bits");
  refused(header(0, 1 << 20, 1ull << 63), 1 << 20, "reserved flag bits");
  refused(header(0x80001, 1 << 20, 0), 1 << 20, "text_offset");
  refused(header(2 << 20, 4 << 20, 0), 1 << 20, "text_offset");
  refused(header(0, 1 << 20, 0), 2 << 20, "smaller than the file");
}

TEST(Arm64Boot, PiecesGoInOrderWithoutOverlapping) {
  ImageHeader image;
  image.text_offset = 0x80000;
  image.image_size = 30 << 20;
  auto p = place_boot(image, 5 << 20, layout::kDramBase, 128ull << 20);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->kernel, layout::kDramBase + 0x80000);
  EXPECT_EQ(p->kernel_end, p->kernel + (30u << 20));
  EXPECT_EQ(p->fdt, layout::kDramBase + (126ull << 20));
  EXPECT_EQ(p->initrd, p->fdt - (5u << 20));
  EXPECT_EQ(p->initrd % 4096, 0u);
  EXPECT_GE(p->initrd, p->kernel_end);
  // An initrd of an odd size still ends below the tree, page aligned.
  auto odd = place_boot(image, 12345, layout::kDramBase, 128ull << 20);
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->initrd % 4096, 0u);
  EXPECT_LE(odd->initrd + 12345, odd->fdt);
  auto none = place_boot(image, 0, layout::kDramBase, 128ull << 20);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->initrd, 0u);
}

TEST(Arm64Boot, RefusesWhatDoesNotFit) {
  ImageHeader image;
  image.image_size = 120ull << 20;
  auto kernel = place_boot(image, 0, layout::kDramBase, 64ull << 20);
  ASSERT_FALSE(kernel.ok());
  EXPECT_NE(kernel.error().message.find("the kernel"), std::string::npos) << kernel.error().message;
  image.image_size = 30 << 20;
  auto initrd = place_boot(image, 100ull << 20, layout::kDramBase, 128ull << 20);
  ASSERT_FALSE(initrd.ok());
  EXPECT_NE(initrd.error().message.find("the initrd"), std::string::npos) << initrd.error().message;
  EXPECT_FALSE(place_boot(image, 0, layout::kDramBase, 2ull << 20).ok());
}

}  // namespace
}  // namespace kiln::vmm::aarch64

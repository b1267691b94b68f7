// Zero page and RAM layout: e820 map, command line, initrd fields, hostile sizes.
#include "vmm/arch/boot_params.h"

#include <gtest/gtest.h>

#include "vmm/arch/layout.h"

namespace kiln::vmm::arch {
namespace {

GuestMemory make_mem(uint64_t bytes) {
  auto m = GuestMemory::create_anonymous(ram_regions(bytes));
  EXPECT_TRUE(m.ok()) << m.error().message;
  return std::move(*m);
}

TEST(RamRegions, SplitsAroundTheMmioGap) {
  auto small = ram_regions(128ull << 20);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].size, 128ull << 20);
  auto big = ram_regions(4ull << 30);
  ASSERT_EQ(big.size(), 2u);
  EXPECT_EQ(big[0].size, layout::kMmioGapStart);
  EXPECT_EQ(big[1].base.value(), layout::kMmioGapEnd);
  EXPECT_EQ(big[1].size, (4ull << 30) - layout::kMmioGapStart);
}

TEST(BootParams, E820AndCommandLine) {
  GuestMemory mem = make_mem(128ull << 20);
  BootParamsSpec spec;
  spec.mem_bytes = 128ull << 20;
  spec.cmdline = "console=ttyS0 reboot=k";
  spec.initrd = LoadedInitrd{GuestAddress(0x4000000), 12345};
  ASSERT_TRUE(write_boot_params(mem, spec).ok());
  auto bp = mem.read_obj<boot_params>(GuestAddress(layout::kZeroPage));
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->hdr.boot_flag, 0xaa55);
  EXPECT_EQ(bp->hdr.header, 0x53726448u);
  EXPECT_EQ(bp->hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp->hdr.cmd_line_ptr, layout::kCmdline);
  EXPECT_EQ(bp->hdr.ramdisk_image, 0x4000000u);
  EXPECT_EQ(bp->hdr.ramdisk_size, 12345u);
  ASSERT_EQ(bp->e820_entries, 3);
  EXPECT_EQ(bp->e820_table[0].addr, 0u);
  EXPECT_EQ(bp->e820_table[0].size, layout::kEbdaStart);
  EXPECT_EQ(bp->e820_table[1].type, 2u);  // reserved: MP table
  EXPECT_EQ(bp->e820_table[2].addr, layout::kHimemStart);
  EXPECT_EQ(bp->e820_table[2].addr + bp->e820_table[2].size, 128ull << 20);
  char cmd[32] = {};
  ASSERT_TRUE(mem.read(GuestAddress(layout::kCmdline), std::span(reinterpret_cast<uint8_t*>(cmd), sizeof cmd - 1)).ok());
  EXPECT_STREQ(cmd, "console=ttyS0 reboot=k");
}

TEST(BootParams, HighMemoryGetsItsOwnE820Entry) {
  GuestMemory mem = make_mem(4ull << 30);
  BootParamsSpec spec;
  spec.mem_bytes = 4ull << 30;
  ASSERT_TRUE(write_boot_params(mem, spec).ok());
  auto bp = mem.read_obj<boot_params>(GuestAddress(layout::kZeroPage));
  ASSERT_EQ(bp->e820_entries, 4);
  EXPECT_EQ(bp->e820_table[2].addr + bp->e820_table[2].size, layout::kMmioGapStart);
  EXPECT_EQ(bp->e820_table[3].addr, layout::kMmioGapEnd);
}

TEST(BootParams, OverlongCommandLineIsRefused) {
  GuestMemory mem = make_mem(64ull << 20);
  BootParamsSpec spec;
  spec.mem_bytes = 64ull << 20;
  spec.cmdline = std::string(layout::kCmdlineMax, 'x');
  auto s = write_boot_params(mem, spec);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("command line"), std::string::npos);
}

TEST(BootParams, InitrdLimitHonoursKernelMaximum) {
  EXPECT_EQ(initrd_limit(128ull << 20, std::nullopt), 128ull << 20);
  EXPECT_EQ(initrd_limit(2ull << 30, std::nullopt), 0x38000000u);
  setup_header hdr{};
  hdr.initrd_addr_max = 0x7fffffff;
  EXPECT_EQ(initrd_limit(4ull << 30, hdr), 0x80000000u);
}

}  // namespace
}  // namespace kiln::vmm::arch

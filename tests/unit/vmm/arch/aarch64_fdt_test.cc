// The arm64 device tree (vmm/arch/aarch64/fdt.h), parsed back with libfdt node by node, for 1,
// 2 and 4 vCPUs with GICv3 and GICv2, and its refusals.
#include "vmm/arch/aarch64/fdt.h"

#include <gtest/gtest.h>
#include <libfdt.h>

#include <string>
#include <vector>

#include "vmm/arch/aarch64/layout.h"

namespace kiln::vmm::aarch64 {
namespace {

namespace L = layout;

FdtSpec spec_for(uint32_t vcpus, GicVersion gic) {
  FdtSpec s;
  s.mem_base = L::kDramBase;
  s.mem_size = 256ull << 20;
  for (uint32_t i = 0; i < vcpus; ++i) s.vcpu_mpidrs.push_back(i);
  s.gic = gic;
  s.bootargs = "console=ttyS0 reboot=k panic=1";
  s.initrd = std::make_pair(uint64_t{0x8f000000}, uint64_t{0x8f100000});
  s.rng_seed = {1, 2, 3, 4, 5, 6, 7, 8};
  s.serial = MmioDevice{L::kSerialBase, L::kSerialSize, L::kSerialSpi};
  s.rtc = MmioDevice{L::kRtcBase, L::kRtcSize, L::kRtcSpi};
  for (uint32_t i = 0; i < 3; ++i) {
    s.virtio.push_back({L::kVirtioMmioBase + i * L::kVirtioMmioSize, L::kVirtioMmioSize, L::kFirstVirtioSpi + i});
  }
  return s;
}

// A parsed tree: property lookups by node path.
struct Tree {
  std::vector<uint8_t> blob;
  int node(const std::string& path) const { return fdt_path_offset(blob.data(), path.c_str()); }
  std::string str(const std::string& path, const char* name) const {
    int len = 0;
    const void* p = fdt_getprop(blob.data(), node(path), name, &len);
    return p == nullptr ? "<none>" : std::string(static_cast<const char*>(p), static_cast<size_t>(len));
  }
  bool has(const std::string& path, const char* name) const {
    return fdt_getprop(blob.data(), node(path), name, nullptr) != nullptr;
  }
  std::vector<uint32_t> cells(const std::string& path, const char* name) const {
    int len = 0;
    const auto* p = static_cast<const fdt32_t*>(fdt_getprop(blob.data(), node(path), name, &len));
    std::vector<uint32_t> v;
    for (int i = 0; p != nullptr && i < len / 4; ++i) v.push_back(fdt32_to_cpu(p[i]));
    return v;
  }
  uint64_t u64(const std::string& path, const char* name) const {
    auto c = cells(path, name);
    return c.size() == 2 ? (uint64_t{c[0]} << 32) | c[1] : ~0ull;
  }
};

Tree build(const FdtSpec& s) {
  auto blob = build_fdt(s);
  EXPECT_TRUE(blob.ok()) << blob.error().message;
  Tree t;
  if (blob.ok()) t.blob = *blob;
  EXPECT_EQ(fdt_check_header(t.blob.data()), 0);
  EXPECT_EQ(fdt_totalsize(t.blob.data()), t.blob.size());
  return t;
}

using std::string_literals::operator""s;

class FdtShapes : public ::testing::TestWithParam<std::tuple<uint32_t, GicVersion>> {};

TEST_P(FdtShapes, EveryNodeSaysWhatTheSpecSays) {
  const auto [vcpus, gic] = GetParam();
  const Tree t = build(spec_for(vcpus, gic));
  EXPECT_EQ(t.str("/", "compatible"), "linux,dummy-virt"s + '\0');
  EXPECT_EQ(t.cells("/", "#address-cells"), std::vector<uint32_t>{2});
  EXPECT_EQ(t.cells("/", "interrupt-parent"), t.cells("/intc@8000000", "phandle"));

  // cpus: one node per vCPU, reg = MPIDR, PSCI brings the secondaries up.
  int count = 0;
  for (int n = fdt_first_subnode(t.blob.data(), t.node("/cpus")); n >= 0; n = fdt_next_subnode(t.blob.data(), n)) ++count;
  EXPECT_EQ(count, static_cast<int>(vcpus));
  for (uint32_t i = 0; i < vcpus; ++i) {
    const std::string cpu = "/cpus/cpu@" + std::to_string(i);
    EXPECT_EQ(t.str(cpu, "device_type"), "cpu"s + '\0') << cpu;
    EXPECT_EQ(t.str(cpu, "enable-method"), "psci"s + '\0');
    EXPECT_EQ(t.cells(cpu, "reg"), (std::vector<uint32_t>{0, i}));
  }
  EXPECT_EQ(t.cells("/memory@80000000", "reg"), (std::vector<uint32_t>{0, 0x80000000, 0, 256u << 20}));

  EXPECT_EQ(t.str("/chosen", "bootargs"), "console=ttyS0 reboot=k panic=1"s + '\0');
  EXPECT_EQ(t.u64("/chosen", "linux,initrd-start"), 0x8f000000u);
  EXPECT_EQ(t.u64("/chosen", "linux,initrd-end"), 0x8f100000u);
  EXPECT_EQ(t.str("/chosen", "rng-seed"), std::string("\1\2\3\4\5\6\7\10", 8));
  EXPECT_EQ(t.str("/chosen", "stdout-path"), "/uart@9000000"s + '\0');

  const std::string intc = "/intc@8000000";
  EXPECT_TRUE(t.has(intc, "interrupt-controller"));
  EXPECT_EQ(t.cells(intc, "#interrupt-cells"), std::vector<uint32_t>{3});
  const uint32_t ppi_flags = gic == GicVersion::kV2 ? (((1u << vcpus) - 1) << 8) | 4 : 4;
  if (gic == GicVersion::kV3) {
    EXPECT_EQ(t.str(intc, "compatible"), "arm,gic-v3"s + '\0');
    EXPECT_EQ(t.cells(intc, "reg"), (std::vector<uint32_t>{0, 0x08000000, 0, 0x10000, 0, 0x080a0000, 0, 0x20000 * vcpus}));
  } else {
    EXPECT_EQ(t.str(intc, "compatible"), "arm,cortex-a15-gic"s + '\0');
    EXPECT_EQ(t.cells(intc, "reg"), (std::vector<uint32_t>{0, 0x08000000, 0, 0x10000, 0, 0x08010000, 0, 0x10000}));
  }
  EXPECT_EQ(t.cells(intc, "interrupts"), (std::vector<uint32_t>{1, 9, ppi_flags}));

  EXPECT_EQ(t.str("/timer", "compatible"), "arm,armv8-timer"s + '\0');
  EXPECT_EQ(t.cells("/timer", "interrupts"),
            (std::vector<uint32_t>{1, 13, ppi_flags, 1, 14, ppi_flags, 1, 11, ppi_flags, 1, 10, ppi_flags}));
  EXPECT_EQ(t.str("/psci", "compatible"), "arm,psci-0.2\0arm,psci\0"s);
  EXPECT_EQ(t.str("/psci", "method"), "hvc"s + '\0');

  EXPECT_EQ(t.str("/uart@9000000", "compatible"), "ns16550a"s + '\0');
  EXPECT_EQ(t.cells("/uart@9000000", "interrupts"), (std::vector<uint32_t>{0, 1, 1}));
  EXPECT_EQ(t.cells("/uart@9000000", "clocks"), t.cells("/apb-pclk", "phandle"));
  EXPECT_EQ(t.str("/rtc@9010000", "compatible"), "arm,pl031\0arm,primecell\0"s);
  for (uint32_t i = 0; i < 3; ++i) {
    const uint32_t base = 0x0a000000 + i * 0x1000;
    char path[64];
    std::snprintf(path, sizeof path, "/virtio_mmio@%x", base);
    EXPECT_EQ(t.str(path, "compatible"), "virtio,mmio"s + '\0') << path;
    EXPECT_EQ(t.cells(path, "reg"), (std::vector<uint32_t>{0, base, 0, 0x1000}));
    EXPECT_EQ(t.cells(path, "interrupts"), (std::vector<uint32_t>{0, 16 + i, 1}));
    EXPECT_TRUE(t.has(path, "dma-coherent"));
  }
}

INSTANTIATE_TEST_SUITE_P(VcpusAndGic, FdtShapes,
                         ::testing::Combine(::testing::Values(1u, 2u, 4u), ::testing::Values(GicVersion::kV3, GicVersion::kV2)));

TEST(Fdt, OptionalPiecesAreLeftOutAndALongCommandLineGrowsTheBuffer) {
  FdtSpec s = spec_for(1, GicVersion::kV3);
  s.initrd.reset();
  s.rng_seed.clear();
  s.serial.reset();
  s.rtc.reset();
  s.virtio.clear();
  s.bootargs = std::string(200 * 1024, 'x');  // past the writer's first 64 KiB buffer
  const Tree t = build(s);
  EXPECT_FALSE(t.has("/chosen", "linux,initrd-start"));
  EXPECT_FALSE(t.has("/chosen", "rng-seed"));
  EXPECT_FALSE(t.has("/chosen", "stdout-path"));
  EXPECT_LT(t.node("/apb-pclk"), 0);
  EXPECT_EQ(t.str("/chosen", "bootargs").size(), 200u * 1024 + 1);
}

TEST(Fdt, RefusesWhatNoGuestCouldUse) {
  auto refused = [](const FdtSpec& s, const std::string& part) {
    auto blob = build_fdt(s);
    ASSERT_FALSE(blob.ok());
    EXPECT_NE(blob.error().message.find(part), std::string::npos) << blob.error().message;
  };
  FdtSpec s = spec_for(1, GicVersion::kV3);
  s.vcpu_mpidrs.clear();
  refused(s, "no vCPUs");
  s = spec_for(1, GicVersion::kV3);
  s.vcpu_mpidrs.assign(L::kMaxVcpus + 1, 0);
  refused(s, "33 vCPUs");
  s = spec_for(1, GicVersion::kV3);
  s.mem_base = 0x1000;
  refused(s, "not in DRAM");
  s = spec_for(1, GicVersion::kV3);
  s.initrd = std::make_pair(uint64_t{0x80000000 + (300ull << 20)}, uint64_t{0x80000000 + (301ull << 20)});
  refused(s, "initrd");
  s = spec_for(1, GicVersion::kV3);
  s.virtio[1].spi = s.virtio[0].spi;
  refused(s, "used twice");
  s = spec_for(1, GicVersion::kV3);
  s.virtio[1].base = s.virtio[0].base + 0x800;
  refused(s, "overlap");
  s = spec_for(1, GicVersion::kV3);
  s.virtio[0].spi = L::kLastSpi + 1;
  refused(s, "out of range");
  s = spec_for(1, GicVersion::kV3);
  s.virtio[0].base = L::kGicDistBase;  // on the GIC
  refused(s, "outside the device region");
  s = spec_for(1, GicVersion::kV3);
  s.bootargs = std::string(3 << 20, 'x');
  refused(s, "over 2 MiB");
}

TEST(Fdt, GoesInTheTopTwoMebibyteBlock) {
  auto a = fdt_address(L::kDramBase, 128ull << 20);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, L::kDramBase + (126ull << 20));
  auto odd = fdt_address(L::kDramBase, (128ull << 20) + 4096);  // a partial block at the top is skipped
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(*odd, L::kDramBase + (126ull << 20));
  EXPECT_FALSE(fdt_address(L::kDramBase, 4ull << 20).ok());
}

}  // namespace
}  // namespace kiln::vmm::aarch64

// CPUID adjustments: the TSC-deadline bit a VMM announces itself, and the per-vCPU topology.
#include <gtest/gtest.h>

#include "vmm/arch/vcpu_setup.h"

namespace kiln::vmm::arch {
namespace {

CpuidTable table() {
  CpuidTable t(3);
  t.entry(0).function = 0x0;
  t.entry(1).function = 0x1;
  t.entry(1).ecx = 0x80000001;
  t.entry(2).function = 0x7;
  t.entry(2).ecx = 0x5;
  return t;
}

TEST(VcpuSetup, AnnouncesTheTscDeadlineTimerInLeafOneOnly) {
  CpuidTable t = table();
  announce_tsc_deadline(t);
  EXPECT_EQ(t.entry(1).ecx, 0x80000001u | (1u << 24));
  EXPECT_EQ(t.entry(2).ecx, 0x5u);
  EXPECT_EQ(t.entry(0).ecx, 0u);
}

TEST(VcpuSetup, PerVcpuTableKeepsTheAnnouncedBitAndSetsTheApicId) {
  CpuidTable t = table();
  announce_tsc_deadline(t);
  CpuidTable v = cpuid_for_vcpu(t, 1, 2);
  EXPECT_TRUE(v.entry(1).ecx & (1u << 24));
  EXPECT_EQ((v.entry(1).ebx >> 24) & 0xff, 1u);
  EXPECT_TRUE(v.entry(1).ecx & (1u << 31));  // hypervisor present
}

}  // namespace
}  // namespace kiln::vmm::arch

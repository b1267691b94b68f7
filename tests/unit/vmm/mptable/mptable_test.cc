// MP table: parse back what write_mptable() wrote (signatures, checksums, entry counts, APIC
// ids, routing) and check that bad vCPU counts and missing memory are refused.
#include "vmm/arch/mptable/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "vmm/arch/layout.h"

namespace kiln::vmm::arch {
namespace {

GuestMemory low_memory() {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0), 0x100000}});
  EXPECT_TRUE(mem.ok());
  return std::move(mem).value();
}

std::vector<uint8_t> read(const GuestMemory& mem, uint64_t addr, size_t len) {
  std::vector<uint8_t> v(len);
  EXPECT_TRUE(mem.read(GuestAddress(addr), v).ok());
  return v;
}

uint8_t sum(const std::vector<uint8_t>& v, size_t from, size_t len) {
  uint8_t s = 0;
  for (size_t i = from; i < from + len; ++i) s = static_cast<uint8_t>(s + v.at(i));
  return s;
}

uint16_t u16(const std::vector<uint8_t>& v, size_t at) { return static_cast<uint16_t>(v.at(at) | (v.at(at + 1) << 8)); }
uint32_t u32(const std::vector<uint8_t>& v, size_t at) {
  return static_cast<uint32_t>(u16(v, at)) | (static_cast<uint32_t>(u16(v, at + 2)) << 16);
}

struct Parsed {
  int processors = 0, buses = 0, ioapics = 0, io_ints = 0, local_ints = 0;
  std::vector<uint8_t> apic_ids;
  std::vector<uint8_t> cpu_flags;
  uint8_t ioapic_id = 0, ioapic_version = 0;
  uint32_t ioapic_address = 0;
  std::vector<std::pair<uint8_t, uint8_t>> irq_to_pin;
  std::vector<uint8_t> io_int_dst;
  std::vector<std::vector<uint8_t>> local;  // int_type, dst_apic, dst_pin
};

// Parses the tables as a guest kernel would (Linux's mpparse.c: find "_MP_", check
// checksums, follow the pointer, walk entries by type), failing the test on any mismatch.
Parsed parse(const GuestMemory& mem) {
  Parsed p;
  const auto ebda = read(mem, layout::kEbdaStart, layout::kEbdaEnd - layout::kEbdaStart);
  EXPECT_EQ(std::memcmp(ebda.data(), "_MP_", 4), 0);
  EXPECT_EQ(ebda[8], 1);  // length in paragraphs
  EXPECT_EQ(ebda[9], 4);  // spec 1.4
  EXPECT_EQ(sum(ebda, 0, 16), 0);
  EXPECT_EQ(ebda[11], 0);  // feature1: config table present (no default configuration)
  const uint32_t table = u32(ebda, 4);
  EXPECT_GE(table, layout::kEbdaStart);
  EXPECT_LT(table, layout::kEbdaEnd);
  const size_t h = table - layout::kEbdaStart;
  EXPECT_EQ(std::memcmp(ebda.data() + h, "PCMP", 4), 0);
  const uint16_t length = u16(ebda, h + 4);
  EXPECT_LE(h + length, ebda.size());
  EXPECT_EQ(ebda[h + 6], 4);
  EXPECT_EQ(sum(ebda, h, length), 0);
  EXPECT_EQ(u32(ebda, h + 36), layout::kLapicBase);
  EXPECT_EQ(u16(ebda, h + 40), 0);  // no extended table
  const uint16_t count = u16(ebda, h + 34);
  size_t at = h + 44;
  int last_type = -1;
  for (uint16_t i = 0; i < count; ++i) {
    const uint8_t type = ebda.at(at);
    EXPECT_GE(type, last_type) << "entries must be sorted by type";
    last_type = type;
    switch (type) {
      case 0:
        ++p.processors;
        p.apic_ids.push_back(ebda[at + 1]);
        EXPECT_EQ(ebda[at + 2], 0x14);
        p.cpu_flags.push_back(ebda[at + 3]);
        at += 20;
        break;
      case 1:
        ++p.buses;
        EXPECT_EQ(ebda[at + 1], 0);
        EXPECT_EQ(std::memcmp(ebda.data() + at + 2, "ISA   ", 6), 0);
        at += 8;
        break;
      case 2:
        ++p.ioapics;
        p.ioapic_id = ebda[at + 1];
        p.ioapic_version = ebda[at + 2];
        EXPECT_EQ(ebda[at + 3] & 1, 1);
        p.ioapic_address = u32(ebda, at + 4);
        at += 8;
        break;
      case 3:
        ++p.io_ints;
        EXPECT_EQ(ebda[at + 1], 0);  // INT
        EXPECT_EQ(ebda[at + 4], 0);  // ISA bus
        p.irq_to_pin.emplace_back(ebda[at + 5], ebda[at + 7]);
        p.io_int_dst.push_back(ebda[at + 6]);
        at += 8;
        break;
      case 4:
        ++p.local_ints;
        p.local.push_back({ebda[at + 1], ebda[at + 6], ebda[at + 7]});
        at += 8;
        break;
      default:
        ADD_FAILURE() << "unknown entry type " << int(type);
        return p;
    }
  }
  EXPECT_EQ(at, h + length);
  // Nothing stale after the table.
  for (size_t i = at; i < ebda.size(); ++i) EXPECT_EQ(ebda[i], 0) << i;
  return p;
}

void check(uint32_t n) {
  SCOPED_TRACE(n);
  auto mem = low_memory();
  // Pre-fill the EBDA with garbage: the writer must leave nothing of it behind.
  std::vector<uint8_t> junk(layout::kEbdaEnd - layout::kEbdaStart, 0xa5);
  ASSERT_TRUE(mem.write(GuestAddress(layout::kEbdaStart), junk).ok());
  ASSERT_TRUE(write_mptable(mem, n).ok());
  Parsed p = parse(mem);
  EXPECT_EQ(p.processors, static_cast<int>(n));
  for (uint32_t i = 0; i < n; ++i) {
    EXPECT_EQ(p.apic_ids.at(i), i);
    EXPECT_EQ(p.cpu_flags.at(i), i == 0 ? 0x03 : 0x01);
  }
  EXPECT_EQ(p.buses, 1);
  EXPECT_EQ(p.ioapics, 1);
  EXPECT_EQ(p.ioapic_id, n);
  EXPECT_EQ(p.ioapic_version, 0x11);
  EXPECT_EQ(p.ioapic_address, layout::kIoapicBase);
  EXPECT_EQ(p.io_ints, static_cast<int>(layout::kLastIrq + 1));
  for (uint32_t irq = 0; irq <= layout::kLastIrq; ++irq) {
    EXPECT_EQ(p.irq_to_pin.at(irq).first, irq);
    EXPECT_EQ(p.irq_to_pin.at(irq).second, irq);
    EXPECT_EQ(p.io_int_dst.at(irq), n);
  }
  ASSERT_EQ(p.local_ints, 2);
  EXPECT_EQ(p.local[0], (std::vector<uint8_t>{3, 0, 0}));     // ExtINT -> BSP LINT0
  EXPECT_EQ(p.local[1], (std::vector<uint8_t>{1, 0xff, 1}));  // NMI -> all LINT1
}

TEST(MpTable, OneVcpu) { check(1); }
TEST(MpTable, TwoVcpus) { check(2); }
TEST(MpTable, MaxVcpusFitsInEbda) {
  check(layout::kMaxVcpus);
  EXPECT_LE(mptable_size(layout::kMaxVcpus), layout::kEbdaEnd - layout::kEbdaStart);
}

TEST(MpTable, RefusesBadVcpuCounts) {
  auto mem = low_memory();
  EXPECT_FALSE(write_mptable(mem, 0).ok());
  EXPECT_FALSE(write_mptable(mem, layout::kMaxVcpus + 1).ok());
  EXPECT_FALSE(write_mptable(mem, UINT32_MAX).ok());
  // Nothing was written.
  auto ebda = read(mem, layout::kEbdaStart, 16);
  for (uint8_t b : ebda) EXPECT_EQ(b, 0);
}

TEST(MpTable, FailsWhenEbdaIsNotGuestMemory) {
  auto small = GuestMemory::create_anonymous({{GuestAddress(0), 0x9f000}});
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(write_mptable(*small, 1).ok());
  // EBDA only partly backed.
  auto partial = GuestMemory::create_anonymous({{GuestAddress(0), layout::kEbdaStart + 0x100}});
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(write_mptable(*partial, 1).ok());
}

}  // namespace
}  // namespace kiln::vmm::arch

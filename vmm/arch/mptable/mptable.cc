// MP table writer following the Intel MultiProcessor Specification 1.4, chapter 4 ("MP
// Configuration Table"), with the same choices as Firecracker's arch/x86_64/mptable.rs.
#include "vmm/arch/mptable/mptable.h"

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/arch/layout.h"

namespace kiln::vmm::arch {
namespace {

// MP spec 1.4 §4.1: MP Floating Pointer Structure (16 bytes, 16-byte aligned).
struct __attribute__((packed)) FloatingPointer {
  char signature[4];      // "_MP_"
  uint32_t config_table;  // physical address of the configuration table header
  uint8_t length;         // in 16-byte units: 1
  uint8_t spec_rev;       // 4 = version 1.4
  uint8_t checksum;       // all 16 bytes sum to 0
  uint8_t feature[5];     // feature1 = 0: a configuration table is present
};
static_assert(sizeof(FloatingPointer) == 16);

// §4.2: MP Configuration Table Header.
struct __attribute__((packed)) ConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t base_length;  // header + all base entries
  uint8_t spec_rev;
  uint8_t checksum;  // the base table sums to 0
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_address;
  uint16_t ext_length;
  uint8_t ext_checksum;
  uint8_t reserved;
};
static_assert(sizeof(ConfigHeader) == 44);

// §4.3.1: Processor entry.
struct __attribute__((packed)) ProcessorEntry {
  uint8_t type;  // 0
  uint8_t lapic_id;
  uint8_t lapic_version;
  uint8_t flags;  // bit 0 EN, bit 1 BP
  uint32_t signature;
  uint32_t features;
  uint32_t reserved[2];
};
static_assert(sizeof(ProcessorEntry) == 20);

// §4.3.2: Bus entry.
struct __attribute__((packed)) BusEntry {
  uint8_t type;  // 1
  uint8_t bus_id;
  char bus_type[6];
};
static_assert(sizeof(BusEntry) == 8);

// §4.3.3: I/O APIC entry.
struct __attribute__((packed)) IoApicEntry {
  uint8_t type;  // 2
  uint8_t id;
  uint8_t version;
  uint8_t flags;  // bit 0 EN
  uint32_t address;
};
static_assert(sizeof(IoApicEntry) == 8);

// §4.3.4 / §4.3.5: I/O and local interrupt assignment entries share one layout.
struct __attribute__((packed)) InterruptEntry {
  uint8_t type;  // 3 = I/O interrupt, 4 = local interrupt
  uint8_t int_type;
  uint16_t flags;  // polarity/trigger: 0 = conforms to the bus
  uint8_t src_bus;
  uint8_t src_irq;
  uint8_t dst_apic;
  uint8_t dst_pin;  // I/O APIC INTIN# or local APIC LINTIN#
};
static_assert(sizeof(InterruptEntry) == 8);

constexpr uint8_t kSpecRev = 4;
constexpr uint8_t kEntryProcessor = 0;
constexpr uint8_t kEntryBus = 1;
constexpr uint8_t kEntryIoApic = 2;
constexpr uint8_t kEntryIoInterrupt = 3;
constexpr uint8_t kEntryLocalInterrupt = 4;
constexpr uint8_t kLapicVersion = 0x14;   // integrated local APIC
constexpr uint8_t kIoApicVersion = 0x11;  // 82093AA
constexpr uint8_t kCpuEnabled = 0x01;
constexpr uint8_t kCpuBootstrap = 0x02;
constexpr uint32_t kCpuSignature = 0x600;     // family 6
constexpr uint32_t kCpuFeatures = 0x201;      // CPUID.1:EDX FPU | APIC
constexpr uint8_t kIoApicEnabled = 0x01;
constexpr uint8_t kIntTypeInt = 0;     // vectored by the I/O APIC
constexpr uint8_t kIntTypeNmi = 1;
constexpr uint8_t kIntTypeExtInt = 3;  // from an 8259A-compatible PIC
constexpr uint8_t kAllLocalApics = 0xff;
constexpr uint8_t kIsaBusId = 0;

constexpr size_t kFixedSize = sizeof(FloatingPointer) + sizeof(ConfigHeader) + sizeof(BusEntry) +
                              sizeof(IoApicEntry) + sizeof(InterruptEntry) * (layout::kLastIrq + 1) +
                              sizeof(InterruptEntry) * 2;

uint8_t checksum_of(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + p[i]);
  return static_cast<uint8_t>(-sum);
}

template <typename T>
void append(std::vector<uint8_t>& buf, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  buf.insert(buf.end(), p, p + sizeof(T));
}

}  // namespace

size_t mptable_size(uint32_t vcpu_count) {
  return kFixedSize + sizeof(ProcessorEntry) * static_cast<size_t>(vcpu_count);
}

Status write_mptable(const GuestMemory& mem, uint32_t vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > layout::kMaxVcpus) {
    return make_error("mptable: vcpu_count " + std::to_string(vcpu_count) + " outside 1.." +
                      std::to_string(layout::kMaxVcpus));
  }
  constexpr uint64_t kRegion = layout::kEbdaEnd - layout::kEbdaStart;
  const size_t total = mptable_size(vcpu_count);
  if (total > kRegion) {
    return make_error("mptable: " + std::to_string(total) + " bytes do not fit in the EBDA (" +
                      std::to_string(kRegion) + " bytes)");
  }
  static_assert(layout::kEbdaEnd <= UINT32_MAX, "MP tables use 32-bit physical addresses");
  static_assert(layout::kEbdaStart % 16 == 0, "the floating pointer must be 16-byte aligned");
  static_assert(layout::kLastIrq < 0xff);

  std::vector<uint8_t> buf;
  buf.reserve(kRegion);

  FloatingPointer fp{};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.config_table = static_cast<uint32_t>(layout::kEbdaStart + sizeof(FloatingPointer));
  fp.length = 1;
  fp.spec_rev = kSpecRev;
  append(buf, fp);
  buf[offsetof(FloatingPointer, checksum)] = checksum_of(buf.data(), sizeof(FloatingPointer));

  const size_t header_at = buf.size();
  append(buf, ConfigHeader{});  // filled in once the entries are known
  uint16_t entries = 0;

  for (uint32_t i = 0; i < vcpu_count; ++i) {
    ProcessorEntry cpu{};
    cpu.type = kEntryProcessor;
    cpu.lapic_id = static_cast<uint8_t>(i);
    cpu.lapic_version = kLapicVersion;
    cpu.flags = static_cast<uint8_t>(kCpuEnabled | (i == 0 ? kCpuBootstrap : 0));
    cpu.signature = kCpuSignature;
    cpu.features = kCpuFeatures;
    append(buf, cpu);
    ++entries;
  }

  BusEntry bus{};
  bus.type = kEntryBus;
  bus.bus_id = kIsaBusId;
  std::memcpy(bus.bus_type, "ISA   ", 6);
  append(buf, bus);
  ++entries;

  const auto ioapic_id = static_cast<uint8_t>(vcpu_count);
  IoApicEntry ioapic{};
  ioapic.type = kEntryIoApic;
  ioapic.id = ioapic_id;
  ioapic.version = kIoApicVersion;
  ioapic.flags = kIoApicEnabled;
  ioapic.address = static_cast<uint32_t>(layout::kIoapicBase);
  append(buf, ioapic);
  ++entries;

  for (uint32_t irq = 0; irq <= layout::kLastIrq; ++irq) {
    InterruptEntry e{};
    e.type = kEntryIoInterrupt;
    e.int_type = kIntTypeInt;
    e.src_bus = kIsaBusId;
    e.src_irq = static_cast<uint8_t>(irq);
    e.dst_apic = ioapic_id;
    e.dst_pin = static_cast<uint8_t>(irq);
    append(buf, e);
    ++entries;
  }

  InterruptEntry extint{};
  extint.type = kEntryLocalInterrupt;
  extint.int_type = kIntTypeExtInt;
  extint.src_bus = kIsaBusId;
  extint.dst_apic = 0;  // the BSP's LINT0 takes the PIC (virtual wire mode)
  extint.dst_pin = 0;
  append(buf, extint);
  ++entries;

  InterruptEntry nmi{};
  nmi.type = kEntryLocalInterrupt;
  nmi.int_type = kIntTypeNmi;
  nmi.src_bus = kIsaBusId;
  nmi.dst_apic = kAllLocalApics;
  nmi.dst_pin = 1;
  append(buf, nmi);
  ++entries;

  ConfigHeader header{};
  std::memcpy(header.signature, "PCMP", 4);
  header.base_length = static_cast<uint16_t>(buf.size() - header_at);
  header.spec_rev = kSpecRev;
  std::memcpy(header.oem_id, "KILN    ", 8);
  std::memcpy(header.product_id, "KILN-VMM    ", 12);
  header.entry_count = entries;
  header.lapic_address = static_cast<uint32_t>(layout::kLapicBase);
  std::memcpy(buf.data() + header_at, &header, sizeof(header));
  buf[header_at + offsetof(ConfigHeader, checksum)] =
      checksum_of(buf.data() + header_at, header.base_length);

  if (buf.size() != total) return make_error("mptable: internal size mismatch");
  buf.resize(kRegion, 0);  // no stale bytes left in the EBDA
  auto st = mem.write(GuestAddress(layout::kEbdaStart), buf);
  if (!st.ok()) return st.error().wrap("mptable: writing the EBDA");
  return ok_status();
}

}  // namespace kiln::vmm::arch

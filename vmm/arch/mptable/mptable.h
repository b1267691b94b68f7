// MP table: the Intel MultiProcessor Specification 1.4 tables that tell a guest kernel about
// its CPUs, the I/O APIC and the ISA interrupt routing (needed for SMP without ACPI).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"

namespace kiln::vmm::arch {

// Bytes the floating pointer plus the configuration table take for vcpu_count CPUs.
size_t mptable_size(uint32_t vcpu_count);

// Writes the floating pointer structure at layout::kEbdaStart, directly followed by the
// configuration table (processors 0..vcpu_count-1 with the BSP on APIC id 0, one ISA bus,
// one I/O APIC with id vcpu_count at layout::kIoapicBase, ISA IRQs 0..layout::kLastIrq mapped
// 1:1 to its pins, ExtINT on LINT0 and NMI on LINT1), and zeroes the rest of the EBDA.
// Fails for vcpu_count outside 1..layout::kMaxVcpus, when the tables do not fit in
// [kEbdaStart, kEbdaEnd), or when that range is not backed by guest memory.
Status write_mptable(const GuestMemory& mem, uint32_t vcpu_count);

}  // namespace kiln::vmm::arch

// Puts vCPUs in the state the Linux 64-bit boot protocol expects: long mode, identity-mapped
// first 1 GiB, boot GDT (__BOOT_CS 0x10, __BOOT_DS 0x18), RSI -> zero page; plus CPUID
// normalised per vCPU, boot MSRs, FPU and the local APIC's LINT0/LINT1.
#pragma once

#include "common/result.h"
#include "vmm/kvm/kvm.h"
#include "vmm/memory/guest_memory.h"

namespace kiln::vmm::arch {

// Writes the boot GDT, IDT and identity page tables into guest memory (once per VM).
Status write_boot_tables(const GuestMemory& mem);

// A copy of `supported` adjusted for vCPU `index` of `count`: APIC ids, topology, hypervisor bit.
CpuidTable cpuid_for_vcpu(const CpuidTable& supported, uint32_t index, uint32_t count);

// Sets CPUID.1:ECX.TSC_Deadline (bit 24) in `t`: KVM's in-kernel LAPIC emulates the
// TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER) without listing it as supported, so a VMM
// announces it itself (as QEMU and Firecracker do).
void announce_tsc_deadline(CpuidTable& t);

// Every vCPU: CPUID, MSRs, FPU, LAPIC. The boot vCPU (index 0) also gets registers pointing
// at `entry`; the others wait for INIT/SIPI from the guest.
Status setup_vcpu(Vcpu& vcpu, const CpuidTable& supported, uint32_t count, uint64_t entry);

}  // namespace kiln::vmm::arch

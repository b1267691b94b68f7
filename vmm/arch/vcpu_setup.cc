// vCPU boot state.
#include "vmm/arch/vcpu_setup.h"

#include <cstring>

#include "vmm/arch/layout.h"

namespace kiln::vmm::arch {
namespace {

constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Et = 1ull << 4, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;

// GDT: null, null, code (0x10), data (0x18), TSS (0x20).
constexpr uint64_t kGdt[] = {0, 0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0x00808b000000ffff};

kvm_segment seg_from_gdt(uint64_t entry, uint16_t index) {
  kvm_segment s{};
  s.base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | (((entry >> 48) & 0xf) << 16));
  s.g = (entry >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = static_cast<uint16_t>(index * 8);
  s.type = (entry >> 40) & 0xf;
  s.s = (entry >> 44) & 1;
  s.dpl = (entry >> 45) & 3;
  s.present = (entry >> 47) & 1;
  s.avl = (entry >> 52) & 1;
  s.l = (entry >> 53) & 1;
  s.db = (entry >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

void set_field(uint32_t& reg, int lo, int bits, uint32_t v) {
  uint32_t mask = ((bits == 32) ? ~0u : ((1u << bits) - 1)) << lo;
  reg = (reg & ~mask) | ((v << lo) & mask);
}

}  // namespace

Status write_boot_tables(const GuestMemory& mem) {
  for (size_t i = 0; i < std::size(kGdt); ++i) {
    KILN_TRY(mem.write_obj(GuestAddress(layout::kBootGdt + i * 8), kGdt[i]));
  }
  KILN_TRY(mem.write_obj(GuestAddress(layout::kBootIdt), uint64_t{0}));
  KILN_TRY(mem.write_obj(GuestAddress(layout::kPml4), layout::kPdpt | 0x3));
  KILN_TRY(mem.write_obj(GuestAddress(layout::kPdpt), layout::kPd | 0x3));
  for (uint64_t i = 0; i < 512; ++i) {
    KILN_TRY(mem.write_obj(GuestAddress(layout::kPd + i * 8), (i << 21) | 0x83));  // 2 MiB, RW, P
  }
  return ok_status();
}

CpuidTable cpuid_for_vcpu(const CpuidTable& supported, uint32_t index, uint32_t count) {
  CpuidTable t = supported;
  for (uint32_t i = 0; i < t.size(); ++i) {
    kvm_cpuid_entry2& e = t.entry(i);
    switch (e.function) {
      case 0x1:
        set_field(e.ebx, 24, 8, index);          // initial APIC id
        set_field(e.ebx, 16, 8, count);          // logical processors per package
        set_field(e.ebx, 8, 8, 8);               // CLFLUSH line size (in 8-byte units)
        e.ecx |= 1u << 31;                        // hypervisor present
        if (count > 1) e.edx |= 1u << 28; else e.edx &= ~(1u << 28);  // HTT
        break;
      case 0x4:
        set_field(e.eax, 26, 6, count - 1);      // cores per package - 1
        set_field(e.eax, 14, 12, 0);             // one thread shares each cache
        break;
      case 0xb:
      case 0x1f:
        e.edx = index;                            // x2APIC id
        if (e.index == 0) { e.ebx = 1; set_field(e.ecx, 8, 8, 1); }          // SMT level
        else if (e.index == 1) { e.ebx = count; set_field(e.ecx, 8, 8, 2); }  // core level
        else { e.eax = 0; e.ebx = 0; set_field(e.ecx, 8, 8, 0); }
        if (e.index <= 1) set_field(e.eax, 0, 5, e.index == 0 ? 0 : 5);
        break;
      case 0x6:
        e.ecx &= ~1u;                             // no APERF/MPERF
        break;
      default:
        break;
    }
  }
  return t;
}

void announce_tsc_deadline(CpuidTable& t) {
  for (uint32_t i = 0; i < t.size(); ++i) {
    if (t.entry(i).function == 0x1) t.entry(i).ecx |= 1u << 24;
  }
}

Status setup_vcpu(Vcpu& vcpu, const CpuidTable& supported, uint32_t count, uint64_t entry) {
  KILN_TRY(vcpu.set_cpuid(cpuid_for_vcpu(supported, vcpu.id(), count)));
  KILN_TRY(vcpu.set_msrs({
      {0x174, 0}, {0x175, 0}, {0x176, 0},           // SYSENTER_CS/ESP/EIP
      {0xc0000081, 0}, {0xc0000082, 0}, {0xc0000083, 0}, {0xc0000084, 0},  // STAR..SFMASK
      {0xc0000102, 0},                              // KERNEL_GS_BASE
      {0x10, 0},                                    // TSC
      {0x1a0, 1},                                   // MISC_ENABLE: fast strings
      {0x2ff, (1u << 11) | 6},                      // MTRRdefType: enabled, write-back
  }));
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  KILN_TRY(vcpu.set_fpu(fpu));

  KILN_ASSIGN_OR_RETURN(kvm_lapic_state lapic, vcpu.get_lapic());
  auto set_lvt = [&lapic](size_t off, uint32_t mode) {
    uint32_t v = 0;
    std::memcpy(&v, lapic.regs + off, 4);
    v = (v & ~0x700u) | (mode << 8);
    std::memcpy(lapic.regs + off, &v, 4);
  };
  set_lvt(0x350, 7);  // LINT0: ExtINT (the PIC)
  set_lvt(0x360, 4);  // LINT1: NMI
  KILN_TRY(vcpu.set_lapic(lapic));

  if (vcpu.id() != 0) return ok_status();  // APs start on INIT/SIPI from the BSP

  KILN_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.get_sregs());
  sregs.gdt.base = layout::kBootGdt;
  sregs.gdt.limit = static_cast<uint16_t>(sizeof kGdt - 1);
  sregs.idt.base = layout::kBootIdt;
  sregs.idt.limit = 7;
  sregs.cs = seg_from_gdt(kGdt[2], 2);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg_from_gdt(kGdt[3], 3);
  sregs.tr = seg_from_gdt(kGdt[4], 4);
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
  sregs.cr3 = layout::kPml4;
  sregs.cr4 = kCr4Pae;
  sregs.efer = kEferLme | kEferLma;
  KILN_TRY(vcpu.set_sregs(sregs));

  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = entry;
  regs.rsp = layout::kBootStack;
  regs.rbp = layout::kBootStack;
  regs.rsi = layout::kZeroPage;
  return vcpu.set_regs(regs);
}

}  // namespace kiln::vmm::arch

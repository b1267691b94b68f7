// The x86_64 guest memory and interrupt map: every fixed guest address kiln-vmm uses is here.
// Low memory follows the Linux x86 boot protocol (Documentation/x86/boot.rst, zero-page.rst).
#pragma once

#include <cstdint>

namespace kiln::vmm::layout {

// --- low memory (below 1 MiB) -------------------------------------------------------------
inline constexpr uint64_t kBootGdt = 0x500;         // boot GDT (null, -, code 0x10, data 0x18, tss 0x20)
inline constexpr uint64_t kBootIdt = 0x520;         // empty IDT
inline constexpr uint64_t kZeroPage = 0x7000;       // struct boot_params
inline constexpr uint64_t kBootStack = 0x8ff0;      // initial RSP/RBP
inline constexpr uint64_t kPml4 = 0x9000;           // identity page tables for the first 1 GiB
inline constexpr uint64_t kPdpt = 0xa000;
inline constexpr uint64_t kPd = 0xb000;
inline constexpr uint64_t kCmdline = 0x20000;       // kernel command line
inline constexpr uint64_t kCmdlineMax = 2048;       // COMMAND_LINE_SIZE on x86
inline constexpr uint64_t kEbdaStart = 0x9fc00;     // MP table (floating pointer + config table)
inline constexpr uint64_t kEbdaEnd = 0xa0000;
inline constexpr uint64_t kHimemStart = 0x100000;   // 1 MiB: bzImage protected-mode kernel

// --- memory map ---------------------------------------------------------------------------
// RAM is [0, kEbdaStart) + [kHimemStart, min(size, kMmioGapStart)) + [4 GiB, ...) for the rest.
inline constexpr uint64_t kMmioGapStart = 0xc0000000;  // 3 GiB .. 4 GiB: devices, no RAM
inline constexpr uint64_t kMmioGapEnd = 0x100000000;
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;  // virtio-mmio windows, one per device
inline constexpr uint64_t kVirtioMmioSize = 0x1000;
inline constexpr uint64_t kIoapicBase = 0xfec00000;
inline constexpr uint64_t kLapicBase = 0xfee00000;
inline constexpr uint64_t kTssAddr = 0xfffbd000;       // KVM_SET_TSS_ADDR (3 pages, Intel only)
inline constexpr uint64_t kIdentityMapAddr = 0xfffbc000;

// --- interrupts (GSIs on the in-kernel IOAPIC) ----------------------------------------------
inline constexpr uint32_t kKeyboardIrq = 1;      // i8042
inline constexpr uint32_t kSerialIrq = 4;        // COM1
inline constexpr uint32_t kFirstVirtioIrq = 5;   // virtio-mmio device i uses kFirstVirtioIrq + i
inline constexpr uint32_t kLastIrq = 23;         // IOAPIC pins 0..23

// --- port I/O -------------------------------------------------------------------------------
inline constexpr uint16_t kSerialPort = 0x3f8;   // COM1, 8 registers
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;

inline constexpr uint32_t kMaxVcpus = 32;

}  // namespace kiln::vmm::layout

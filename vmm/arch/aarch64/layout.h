// The aarch64 guest memory and interrupt map: every fixed guest address kiln-vmm uses on arm64
// is here (the x86_64 map is ../layout.h). Devices sit below DRAM, which starts at 2 GiB as on
// Firecracker; the kernel Image goes at DRAM + text_offset (2 MiB aligned base), the FDT at the
// top of DRAM and the initrd below it (Documentation/arch/arm64/booting.rst).
#pragma once

#include <cstdint>

namespace kiln::vmm::aarch64::layout {

// --- devices (below DRAM) -------------------------------------------------------------------
inline constexpr uint64_t kGicDistBase = 0x08000000;     // GICv3/v2 distributor
inline constexpr uint64_t kGicDistSize = 0x10000;
inline constexpr uint64_t kGicCpuIfBase = 0x08010000;    // GICv2 CPU interface
inline constexpr uint64_t kGicCpuIfSize = 0x10000;
inline constexpr uint64_t kGicRedistBase = 0x080a0000;   // GICv3 redistributors, one per vCPU
inline constexpr uint64_t kGicRedistSizePerCpu = 0x20000;  // RD_base + SGI_base frames
inline constexpr uint64_t kSerialBase = 0x09000000;      // ns16550a, 8 byte-wide registers
inline constexpr uint64_t kSerialSize = 0x1000;
inline constexpr uint64_t kRtcBase = 0x09010000;         // PL031
inline constexpr uint64_t kRtcSize = 0x1000;
inline constexpr uint64_t kVirtioMmioBase = 0x0a000000;  // virtio-mmio windows, one per device
inline constexpr uint64_t kVirtioMmioSize = 0x1000;
inline constexpr uint64_t kDevicesEnd = 0x40000000;

// --- DRAM -----------------------------------------------------------------------------------
inline constexpr uint64_t kDramBase = 0x80000000;
inline constexpr uint64_t kKernelAlign = 2 << 20;        // the Image's base is 2 MiB aligned
inline constexpr uint64_t kFdtMaxSize = 2 << 20;         // booting.rst: at most 2 MiB, one 2 MiB block

// --- interrupts (GIC INTIDs: SGI 0-15, PPI 16-31, SPI 32-1019) --------------------------------
inline constexpr uint32_t kSpiBase = 32;
inline constexpr uint32_t kSerialSpi = 1;                // INTID 33
inline constexpr uint32_t kRtcSpi = 2;                   // INTID 34
inline constexpr uint32_t kFirstVirtioSpi = 16;          // device i: SPI kFirstVirtioSpi + i
inline constexpr uint32_t kLastSpi = 95;                 // 96 SPIs: the distributor's 128 INTIDs
// Architected timer PPIs (INTID - 16), as the arm64 kernel and KVM expect them.
inline constexpr uint32_t kTimerSecurePhysPpi = 13;
inline constexpr uint32_t kTimerPhysPpi = 14;
inline constexpr uint32_t kTimerVirtPpi = 11;
inline constexpr uint32_t kTimerHypPpi = 10;
inline constexpr uint32_t kGicMaintenancePpi = 9;

inline constexpr uint32_t kMaxVcpus = 32;  // the redistributor region's room (below kSerialBase)

}  // namespace kiln::vmm::aarch64::layout

// The aarch64 guest's boot description: a flattened device tree built with libfdt (the arm64
// kernel takes its address in X0). Pure: the caller supplies everything the tree says (memory,
// vCPU MPIDRs, the interrupt controller, devices, command line, initrd, RNG seed) and writes the
// blob into guest memory at fdt_address().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::vmm::aarch64 {

enum class GicVersion { kV2, kV3 };

struct MmioDevice {
  uint64_t base = 0;
  uint64_t size = 0;
  uint32_t spi = 0;  // SPI number (INTID - 32)
};

struct FdtSpec {
  uint64_t mem_base = 0;
  uint64_t mem_size = 0;
  std::vector<uint64_t> vcpu_mpidrs;  // one per vCPU, its MPIDR_EL1 affinity bits (the cpu node's reg)
  GicVersion gic = GicVersion::kV3;
  std::string bootargs;
  std::optional<std::pair<uint64_t, uint64_t>> initrd;  // [start, end) in guest memory
  std::vector<uint8_t> rng_seed;                         // /chosen/rng-seed, may be empty
  std::optional<MmioDevice> serial;                      // ns16550a
  std::optional<MmioDevice> rtc;                         // PL031
  std::vector<MmioDevice> virtio;                        // virtio,mmio nodes, in this order
};

// The tree: / (linux,dummy-virt), cpus (psci enable-method, MPIDR reg), memory, chosen
// (bootargs, initrd, rng-seed, stdout-path when a serial port exists), the GIC (arm,gic-v3 with
// one redistributor region sized for the vCPUs, or arm,cortex-a15-gic with its CPU interface),
// the architected timer's four PPIs, psci (arm,psci-0.2 over hvc), a fixed 24 MHz APB clock for
// the PL031, and each device with its edge-rising SPI (virtio-mmio nodes dma-coherent).
// Errors: no vCPUs or more than the layout's room, memory not in DRAM, an SPI out of range or
// used twice, overlapping device windows, an initrd outside memory, a blob over 2 MiB, or any
// libfdt error (named).
Result<std::vector<uint8_t>> build_fdt(const FdtSpec& spec);

// Where the blob goes: the top 2 MiB-aligned block of DRAM that holds it (booting.rst: 8-byte
// aligned, within one 2 MiB block). Fails when memory is smaller than a few blocks.
Result<uint64_t> fdt_address(uint64_t mem_base, uint64_t mem_size);

}  // namespace kiln::vmm::aarch64

// Everything a snapshot holds besides guest memory, as plain structs (Firecracker-style State
// structs): the VM's configuration, each vCPU's registers/FPU/XSAVE/XCRs/MSRs/LAPIC/events,
// the irqchip, PIT and kvmclock, and each device's transport and device state.
#pragma once

#include <linux/kvm.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vmm/kvm/kvm_abi.h"
#include "vmm/legacy/i8042.h"
#include "vmm/legacy/serial8250.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm::snapshot {

struct VcpuState {
  std::vector<kvm_cpuid_entry2> cpuid;
  kvm_regs regs{};
  kvm_sregs sregs{};
  abi::Xsave xsave{};
  kvm_xcrs xcrs{};
  std::vector<std::pair<uint32_t, uint64_t>> msrs;
  kvm_lapic_state lapic{};
  kvm_mp_state mp_state{};
  kvm_vcpu_events events{};
  bool operator==(const VcpuState& o) const;
};

struct DeviceState {
  std::string name;
  virtio::MmioTransportState transport;
};

struct VmState {
  std::string config_json;  // the VmConfig the VM was built from (host paths can be overridden)
  uint64_t mem_bytes = 0;
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
  std::vector<VcpuState> vcpus;
  legacy::Serial8250State serial;
  legacy::I8042State i8042;
  std::vector<DeviceState> devices;
};

inline constexpr uint32_t kMaxSnapshotVcpus = 32;
inline constexpr uint32_t kMaxMsrs = 1024;
inline constexpr uint32_t kMaxCpuidEntries = 256;
inline constexpr uint32_t kMaxDevices = 32;
inline constexpr uint32_t kMaxQueues = 16;

std::string encode_vm_state(const VmState& state);
Result<VmState> decode_vm_state(std::string_view bytes);

}  // namespace kiln::vmm::snapshot

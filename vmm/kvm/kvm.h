// RAII wrappers over the KVM API: the system fd (/dev/kvm), a VM fd and vCPU fds.
// Every ioctl result is returned as a value; nothing here knows about devices or boot.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/mapped_region.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/kvm/kvm_abi.h"

namespace kiln::vmm {

// Owns a kvm_cpuid2 with room for `entries` (variable-length struct).
class CpuidTable {
 public:
  explicit CpuidTable(uint32_t capacity = 256);
  abi::Cpuid2* raw() { return reinterpret_cast<abi::Cpuid2*>(buf_.data()); }
  const abi::Cpuid2* raw() const { return reinterpret_cast<const abi::Cpuid2*>(buf_.data()); }
  uint32_t size() const { return raw()->nent; }
  kvm_cpuid_entry2& entry(uint32_t i) { return raw()->entries[i]; }
  const kvm_cpuid_entry2& entry(uint32_t i) const { return raw()->entries[i]; }
  // First entry for (function, index), or nullptr.
  kvm_cpuid_entry2* find(uint32_t function, uint32_t index = 0);

 private:
  std::vector<uint64_t> buf_;  // uint64_t for alignment
};

class Vcpu;

class Vm {
 public:
  Vm(UniqueFd fd, int kvm_fd, size_t run_size) : fd_(std::move(fd)), kvm_fd_(kvm_fd), run_size_(run_size) {}
  int fd() const { return fd_.get(); }

  Status set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                                uint32_t flags = 0);
  Status set_tss_addr(uint64_t addr);
  Status set_identity_map_addr(uint64_t addr);
  Status create_irqchip();
  Status create_pit2();
  Status set_irq_line(uint32_t irq, bool level);
  // ioeventfd: a guest write of `datamatch` (if has_datamatch) to MMIO `addr` signals `event_fd`.
  Status register_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool has_datamatch,
                            uint64_t datamatch);
  // irqfd: signalling `event_fd` raises GSI `gsi`.
  Status register_irqfd(int event_fd, uint32_t gsi);
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id);

  // Snapshot state of the in-kernel devices. chip_id: KVM_IRQCHIP_PIC_MASTER/SLAVE/IOAPIC.
  Result<kvm_irqchip> get_irqchip(uint32_t chip_id) const;
  Status set_irqchip(const kvm_irqchip& chip);
  Result<kvm_pit_state2> get_pit2() const;
  Status set_pit2(const kvm_pit_state2& pit);
  Result<kvm_clock_data> get_clock() const;
  Status set_clock(const kvm_clock_data& clock);

 private:
  UniqueFd fd_;
  int kvm_fd_;  // borrowed from KvmSystem, which outlives every Vm
  size_t run_size_;
};

class Vcpu {
 public:
  Vcpu(UniqueFd fd, MappedRegion run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  int fd() const { return fd_.get(); }
  uint32_t id() const { return id_; }
  kvm_run* run_struct() const { return reinterpret_cast<kvm_run*>(run_.data()); }

  // One KVM_RUN. Returns the exit reason; EINTR is returned as an Error with sys_errno EINTR.
  Result<uint32_t> run();

  Result<kvm_regs> get_regs() const;
  Status set_regs(const kvm_regs& regs);
  Result<kvm_sregs> get_sregs() const;
  Status set_sregs(const kvm_sregs& sregs);
  Result<kvm_fpu> get_fpu() const;
  Status set_fpu(const kvm_fpu& fpu);
  Status set_cpuid(const CpuidTable& cpuid);
  // Writes (index, value) MSR pairs; every one must be accepted.
  Status set_msrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs);
  Result<std::vector<std::pair<uint32_t, uint64_t>>> get_msrs(const std::vector<uint32_t>& indices) const;
  Result<kvm_lapic_state> get_lapic() const;
  Status set_lapic(const kvm_lapic_state& lapic);
  Result<kvm_mp_state> get_mp_state() const;
  Status set_mp_state(const kvm_mp_state& state);
  Result<abi::Xsave> get_xsave() const;
  Status set_xsave(const abi::Xsave& xsave);
  Result<kvm_xcrs> get_xcrs() const;
  Status set_xcrs(const kvm_xcrs& xcrs);
  Result<kvm_vcpu_events> get_vcpu_events() const;
  Status set_vcpu_events(const kvm_vcpu_events& events);

 private:
  UniqueFd fd_;
  MappedRegion run_;
  uint32_t id_;
};

class KvmSystem {
 public:
  // Opens /dev/kvm (or `path`) and checks the API version and required capabilities.
  static Result<KvmSystem> open(const char* path = "/dev/kvm");
  int fd() const { return fd_.get(); }
  int check_extension(long cap) const;
  Result<CpuidTable> supported_cpuid() const;
  // Every MSR index KVM can save and restore (KVM_GET_MSR_INDEX_LIST).
  Result<std::vector<uint32_t>> msr_index_list() const;
  Result<Vm> create_vm() const;

 private:
  KvmSystem(UniqueFd fd, size_t run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  UniqueFd fd_;
  size_t run_size_;
};

}  // namespace kiln::vmm

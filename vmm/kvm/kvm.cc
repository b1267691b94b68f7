// KVM ioctl wrappers.
#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include <cstring>

namespace kiln::vmm {
namespace {

template <typename... Args>
Status ioctl_status(int fd, unsigned long req, const char* name, Args... args) {
  if (::ioctl(fd, req, args...) < 0) return errno_error(name);
  return ok_status();
}

}  // namespace

CpuidTable::CpuidTable(uint32_t capacity)
    : buf_((sizeof(abi::Cpuid2) + capacity * sizeof(kvm_cpuid_entry2) + 7) / 8, 0) {
  raw()->nent = capacity;
}

kvm_cpuid_entry2* CpuidTable::find(uint32_t function, uint32_t index) {
  for (uint32_t i = 0; i < size(); ++i) {
    kvm_cpuid_entry2& e = entry(i);
    if (e.function != function) continue;
    if ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e.index != index) continue;
    return &e;
  }
  return nullptr;
}

Result<KvmSystem> KvmSystem::open(const char* path) {
  int raw = ::open(path, O_RDWR | O_CLOEXEC);
  if (raw < 0) return errno_error(std::string("open ") + path);
  UniqueFd fd(raw);
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return make_error("KVM API version " + std::to_string(version) + ", expected " +
                      std::to_string(KVM_API_VERSION));
  }
  for (long cap : {KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP, KVM_CAP_IOEVENTFD, KVM_CAP_IRQFD,
                   KVM_CAP_EXT_CPUID, KVM_CAP_PIT2}) {
    if (::ioctl(fd.get(), KVM_CHECK_EXTENSION, cap) <= 0) {
      return make_error("KVM lacks required capability " + std::to_string(cap));
    }
  }
  int run_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < static_cast<int>(sizeof(kvm_run))) return errno_error("KVM_GET_VCPU_MMAP_SIZE");
  return KvmSystem(std::move(fd), static_cast<size_t>(run_size));
}

int KvmSystem::check_extension(long cap) const { return ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap); }

Result<CpuidTable> KvmSystem::supported_cpuid() const {
  CpuidTable table(256);
  if (::ioctl(fd_.get(), abi::kGetSupportedCpuid, table.raw()) < 0) {
    return errno_error("KVM_GET_SUPPORTED_CPUID");
  }
  return table;
}

Result<std::vector<uint32_t>> KvmSystem::msr_index_list() const {
  std::vector<uint32_t> buf(1 + 1024, 0);
  auto* list = reinterpret_cast<abi::MsrList*>(buf.data());
  list->nmsrs = 1024;
  if (::ioctl(fd_.get(), abi::kGetMsrIndexList, list) < 0) return errno_error("KVM_GET_MSR_INDEX_LIST");
  return std::vector<uint32_t>(list->indices, list->indices + list->nmsrs);
}

Result<Vm> KvmSystem::create_vm() const {
  int raw = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
  if (raw < 0) return errno_error("KVM_CREATE_VM");
  ::fcntl(raw, F_SETFD, FD_CLOEXEC);
  return Vm(UniqueFd(raw), fd_.get(), run_size_);
}

Status Vm::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                                  uint32_t flags) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = flags;
  r.guest_phys_addr = guest_phys;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  return ioctl_status(fd_.get(), KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &r);
}

Status Vm::set_tss_addr(uint64_t addr) {
  return ioctl_status(fd_.get(), KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", static_cast<unsigned long>(addr));
}

Status Vm::set_identity_map_addr(uint64_t addr) {
  return ioctl_status(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &addr);
}

Status Vm::create_irqchip() { return ioctl_status(fd_.get(), KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", 0); }

Status Vm::create_pit2() {
  kvm_pit_config cfg{};
  cfg.flags = KVM_PIT_SPEAKER_DUMMY;
  return ioctl_status(fd_.get(), KVM_CREATE_PIT2, "KVM_CREATE_PIT2", &cfg);
}

Status Vm::set_irq_line(uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  return ioctl_status(fd_.get(), KVM_IRQ_LINE, "KVM_IRQ_LINE", &l);
}

Status Vm::register_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool has_datamatch,
                              uint64_t datamatch) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = len;
  io.fd = event_fd;
  io.datamatch = datamatch;
  io.flags = has_datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0;
  return ioctl_status(fd_.get(), KVM_IOEVENTFD, "KVM_IOEVENTFD", &io);
}

Status Vm::register_irqfd(int event_fd, uint32_t gsi) {
  kvm_irqfd irq{};
  irq.fd = static_cast<uint32_t>(event_fd);
  irq.gsi = gsi;
  return ioctl_status(fd_.get(), KVM_IRQFD, "KVM_IRQFD", &irq);
}

Result<std::unique_ptr<Vcpu>> Vm::create_vcpu(uint32_t id) {
  int raw = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (raw < 0) return errno_error("KVM_CREATE_VCPU");
  ::fcntl(raw, F_SETFD, FD_CLOEXEC);
  UniqueFd fd(raw);
  KILN_ASSIGN_OR_RETURN(MappedRegion run,
                        MappedRegion::of_fd(fd.get(), run_size_, PROT_READ | PROT_WRITE, MAP_SHARED));
  return std::make_unique<Vcpu>(std::move(fd), std::move(run), id);
}

Result<uint32_t> Vcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) return errno_error("KVM_RUN");
  return run_struct()->exit_reason;
}

Result<kvm_regs> Vcpu::get_regs() const {
  kvm_regs r{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &r) < 0) return errno_error("KVM_GET_REGS");
  return r;
}
Status Vcpu::set_regs(const kvm_regs& regs) { return ioctl_status(fd_.get(), KVM_SET_REGS, "KVM_SET_REGS", &regs); }

Result<kvm_sregs> Vcpu::get_sregs() const {
  kvm_sregs s{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) return errno_error("KVM_GET_SREGS");
  return s;
}
Status Vcpu::set_sregs(const kvm_sregs& s) { return ioctl_status(fd_.get(), KVM_SET_SREGS, "KVM_SET_SREGS", &s); }

Result<kvm_fpu> Vcpu::get_fpu() const {
  kvm_fpu f{};
  if (::ioctl(fd_.get(), KVM_GET_FPU, &f) < 0) return errno_error("KVM_GET_FPU");
  return f;
}
Status Vcpu::set_fpu(const kvm_fpu& f) { return ioctl_status(fd_.get(), KVM_SET_FPU, "KVM_SET_FPU", &f); }

Status Vcpu::set_cpuid(const CpuidTable& cpuid) {
  return ioctl_status(fd_.get(), abi::kSetCpuid2, "KVM_SET_CPUID2", cpuid.raw());
}

namespace {
struct MsrBuffer {
  explicit MsrBuffer(size_t n) : buf((sizeof(abi::Msrs) + n * sizeof(kvm_msr_entry) + 7) / 8, 0) {
    msrs()->nmsrs = static_cast<uint32_t>(n);
  }
  abi::Msrs* msrs() { return reinterpret_cast<abi::Msrs*>(buf.data()); }
  std::vector<uint64_t> buf;
};
}  // namespace

Status Vcpu::set_msrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs) {
  MsrBuffer b(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    b.msrs()->entries[i].index = msrs[i].first;
    b.msrs()->entries[i].data = msrs[i].second;
  }
  int n = ::ioctl(fd_.get(), abi::kSetMsrs, b.msrs());
  if (n < 0) return errno_error("KVM_SET_MSRS");
  if (static_cast<size_t>(n) != msrs.size()) {
    char idx[16];
    std::snprintf(idx, sizeof idx, "%#x", msrs[static_cast<size_t>(n)].first);
    return make_error(std::string("KVM_SET_MSRS: MSR ") + idx + " refused");
  }
  return ok_status();
}

Result<std::vector<std::pair<uint32_t, uint64_t>>> Vcpu::get_msrs(const std::vector<uint32_t>& indices) const {
  MsrBuffer b(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) b.msrs()->entries[i].index = indices[i];
  int n = ::ioctl(fd_.get(), abi::kGetMsrs, b.msrs());
  if (n < 0) return errno_error("KVM_GET_MSRS");
  std::vector<std::pair<uint32_t, uint64_t>> out;
  for (int i = 0; i < n; ++i) out.emplace_back(b.msrs()->entries[i].index, b.msrs()->entries[i].data);
  return out;
}

Result<kvm_lapic_state> Vcpu::get_lapic() const {
  kvm_lapic_state l{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &l) < 0) return errno_error("KVM_GET_LAPIC");
  return l;
}
Status Vcpu::set_lapic(const kvm_lapic_state& l) { return ioctl_status(fd_.get(), KVM_SET_LAPIC, "KVM_SET_LAPIC", &l); }

Result<kvm_mp_state> Vcpu::get_mp_state() const {
  kvm_mp_state m{};
  if (::ioctl(fd_.get(), KVM_GET_MP_STATE, &m) < 0) return errno_error("KVM_GET_MP_STATE");
  return m;
}
Status Vcpu::set_mp_state(const kvm_mp_state& m) {
  return ioctl_status(fd_.get(), KVM_SET_MP_STATE, "KVM_SET_MP_STATE", &m);
}

Result<kvm_irqchip> Vm::get_irqchip(uint32_t chip_id) const {
  kvm_irqchip c{};
  c.chip_id = chip_id;
  if (::ioctl(fd_.get(), KVM_GET_IRQCHIP, &c) < 0) return errno_error("KVM_GET_IRQCHIP");
  return c;
}
Status Vm::set_irqchip(const kvm_irqchip& c) { return ioctl_status(fd_.get(), KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP", &c); }

Result<kvm_pit_state2> Vm::get_pit2() const {
  kvm_pit_state2 p{};
  if (::ioctl(fd_.get(), KVM_GET_PIT2, &p) < 0) return errno_error("KVM_GET_PIT2");
  return p;
}
Status Vm::set_pit2(const kvm_pit_state2& p) { return ioctl_status(fd_.get(), KVM_SET_PIT2, "KVM_SET_PIT2", &p); }

Result<kvm_clock_data> Vm::get_clock() const {
  kvm_clock_data c{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &c) < 0) return errno_error("KVM_GET_CLOCK");
  return c;
}
Status Vm::set_clock(const kvm_clock_data& c) {
  kvm_clock_data in{};
  in.clock = c.clock;  // only the clock value; KVM rejects most flags on SET
  return ioctl_status(fd_.get(), KVM_SET_CLOCK, "KVM_SET_CLOCK", &in);
}

Result<abi::Xsave> Vcpu::get_xsave() const {
  abi::Xsave x{};
  if (::ioctl(fd_.get(), abi::kGetXsave, &x) < 0) return errno_error("KVM_GET_XSAVE");
  return x;
}
Status Vcpu::set_xsave(const abi::Xsave& x) { return ioctl_status(fd_.get(), abi::kSetXsave, "KVM_SET_XSAVE", &x); }

Result<kvm_xcrs> Vcpu::get_xcrs() const {
  kvm_xcrs x{};
  if (::ioctl(fd_.get(), KVM_GET_XCRS, &x) < 0) return errno_error("KVM_GET_XCRS");
  return x;
}
Status Vcpu::set_xcrs(const kvm_xcrs& x) { return ioctl_status(fd_.get(), KVM_SET_XCRS, "KVM_SET_XCRS", &x); }

Result<kvm_vcpu_events> Vcpu::get_vcpu_events() const {
  kvm_vcpu_events e{};
  if (::ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &e) < 0) return errno_error("KVM_GET_VCPU_EVENTS");
  return e;
}
Status Vcpu::set_vcpu_events(const kvm_vcpu_events& e) {
  return ioctl_status(fd_.get(), KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &e);
}

}  // namespace kiln::vmm

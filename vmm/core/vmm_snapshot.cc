// Vmm pause/resume, snapshot creation and building a VM from a snapshot (Firecracker's
// snapshot model: a state file plus a memory file mapped MAP_PRIVATE on restore).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>

#include "common/io.h"
#include "vmm/arch/boot_params.h"
#include "vmm/arch/vcpu_setup.h"
#include "vmm/core/vmm.h"
#include "vmm/snapshot/snapshot_file.h"
#include "vmm/snapshot/vm_state.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm {
namespace {

constexpr auto kPauseDeadline = std::chrono::seconds(10);
constexpr auto kDrainDeadline = std::chrono::milliseconds(10000);  // drive requests at NBD servers
constexpr uint32_t kMsrTsc = 0x10;           // IA32_TIME_STAMP_COUNTER (SDM vol. 4, table 2-2)
constexpr uint32_t kMsrTscDeadline = 0x6e0;  // IA32_TSC_DEADLINE: absolute, so after the TSC
constexpr size_t kPage = 4096;

// Reads every MSR in `indices` that this vCPU can read (KVM_GET_MSRS stops at the first one
// it cannot; that one is dropped and the rest retried).
Result<std::vector<std::pair<uint32_t, uint64_t>>> read_msrs(const Vcpu& vcpu, std::vector<uint32_t> indices) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  while (!indices.empty()) {
    KILN_ASSIGN_OR_RETURN(auto got, vcpu.get_msrs(indices));
    out.insert(out.end(), got.begin(), got.end());
    if (got.size() == indices.size()) break;
    indices.erase(indices.begin(), indices.begin() + static_cast<long>(got.size()) + 1);
  }
  return out;
}

// Runs on the event loop, whose seccomp filter lets it create this file but open no directory:
// the caller syncs the directory (io::sync_parent_dir) on the API thread.
Status write_memory_file(const GuestMemory& mem, const std::string& path) {
  constexpr io::AtomicWriteOptions kNoDirSync{.mode = 0600, .sync_dir = false};
  return io::write_file_atomic(path, [&](int fd) -> Status {
    static const uint8_t zero[kPage] = {};
    uint64_t offset = 0;
    for (const GuestRegionInfo& r : mem.regions()) {
      // Sparse: all-zero pages stay holes, so a mostly idle guest's file stays small on disk.
      for (uint64_t off = 0; off < r.size; off += kPage) {
        if (std::memcmp(r.host + off, zero, kPage) == 0) continue;
        KILN_TRY(io::pwrite_all(fd, r.host + off, kPage, offset + off, path));
      }
      offset += r.size;
    }
    if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) return errno_error("truncate " + path);
    return ok_status();
  }, kNoDirSync);
}

Result<GuestMemory> map_memory_file(const std::string& path, uint64_t mem_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open memory file " + path);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat memory file " + path);
  if (static_cast<uint64_t>(st.st_size) != mem_bytes) {
    return make_error("memory file " + path + " is " + std::to_string(st.st_size) + " bytes; the snapshot needs " +
                      std::to_string(mem_bytes));
  }
  std::vector<GuestMemory::Adopted> regions;
  uint64_t offset = 0;
  for (const GuestRegionSpec& r : arch::ram_regions(mem_bytes)) {
    // MAP_PRIVATE: pages load lazily from the page cache (shared by every instance restored from
    // this file) and guest writes stay private copies.
    KILN_ASSIGN_OR_RETURN(MappedRegion m, MappedRegion::of_fd(fd.get(), r.size, PROT_READ | PROT_WRITE,
                                                              MAP_PRIVATE | MAP_NORESERVE, static_cast<off_t>(offset)));
    regions.push_back({r.base, std::move(m)});
    offset += r.size;
  }
  return GuestMemory::from_mappings(std::move(regions));
}

}  // namespace

void Vmm::park() {
  std::unique_lock lock(pause_mu_);
  ++parked_;
  pause_cv_.notify_all();
  pause_cv_.wait(lock, [this] { return !pause_requested_.load() || stopping_.load(); });
  --parked_;
}

Status Vmm::pause() {
  if (!running()) return make_error("the VM is not running");
  std::unique_lock lock(pause_mu_);
  if (pause_requested_.load()) return ok_status();
  pause_requested_ = true;
  for (auto& v : vcpus_) v->run_struct()->immediate_exit = 1;
  for (auto& t : vcpu_threads_) ::pthread_kill(t.native_handle(), SIGUSR1);
  bool parked = pause_cv_.wait_for(lock, kPauseDeadline, [this] {
    return parked_ == vcpus_.size() || stopping_.load();
  });
  if (stopping_.load()) return make_error("the VM ended while pausing");
  if (!parked) return make_error("vCPUs did not stop within 10 s");
  // The guest's time stands still until the resume.
  if (!time_at_resume_) {
    auto now = capture_time();
    if (!now.ok()) {
      // Not paused after all: the vCPUs go on, so the answer (an error) matches the VM's state.
      for (auto& v : vcpus_) v->run_struct()->immediate_exit = 0;
      pause_requested_ = false;
      pause_cv_.notify_all();
      return now.error().wrap("saving the guest's time at the pause (the VM keeps running)");
    }
    time_at_resume_ = std::move(*now);
  }
  return ok_status();
}

Result<Vmm::TimeAtResume> Vmm::capture_time() const {
  TimeAtResume t;
  KILN_ASSIGN_OR_RETURN(t.clock, vm_.get_clock());
  KILN_ASSIGN_OR_RETURN(t.pit, vm_.get_pit2());
  for (const auto& v : vcpus_) {
    KILN_ASSIGN_OR_RETURN(auto tsc, read_msrs(*v, {kMsrTsc, kMsrTscDeadline}));
    t.tsc.push_back(std::move(tsc));
  }
  return t;
}

Status Vmm::resume() {
  if (!running()) return make_error("the VM is not running");
  std::lock_guard lock(pause_mu_);
  if (!pause_requested_.load()) return ok_status();
  // The guest's clocks and timers continue from where the pause (or a paused snapshot load)
  // left them: its PIT, KVM_SET_CLOCK for kvmclock, the TSC and then its deadline timer per
  // vCPU. After a paused load the vsock transport reset goes out as the guest starts to run.
  if (time_at_resume_) {
    const TimeAtResume& t = *time_at_resume_;
    KILN_TRY(vm_.set_pit2(t.pit));
    KILN_TRY(vm_.set_clock(t.clock));
    for (size_t i = 0; i < t.tsc.size() && i < vcpus_.size(); ++i) {
      for (const auto& msr : t.tsc[i]) KILN_TRY(vcpus_[i]->set_msrs({msr}));  // one by one: in order
    }
    time_at_resume_.reset();
  }
  if (reset_at_resume_) {
    reset_at_resume_ = false;
    if (auto s = vsock_->send_transport_reset(); !s.ok()) return s.error().wrap("vsock transport reset");
  }
  for (auto& v : vcpus_) v->run_struct()->immediate_exit = 0;
  pause_requested_ = false;
  pause_cv_.notify_all();
  return ok_status();
}

Status Vmm::create_snapshot(const config::SnapshotCreate& params) {
  if (!running() || !paused()) return make_error("the VM must be paused to create a snapshot");
  snapshot::VmState state;
  state.config_json = config::to_json(config_).dump();
  state.mem_bytes = config_.machine_config.mem_size_mib << 20;
  KILN_ASSIGN_OR_RETURN(state.pic_master, vm_.get_irqchip(KVM_IRQCHIP_PIC_MASTER));
  KILN_ASSIGN_OR_RETURN(state.pic_slave, vm_.get_irqchip(KVM_IRQCHIP_PIC_SLAVE));
  KILN_ASSIGN_OR_RETURN(state.ioapic, vm_.get_irqchip(KVM_IRQCHIP_IOAPIC));
  // Paused: the guest's time as the pause (or the paused load) left it.
  KILN_ASSIGN_OR_RETURN(state.pit, vm_.get_pit2());
  KILN_ASSIGN_OR_RETURN(state.clock, vm_.get_clock());
  if (time_at_resume_) {
    state.pit = time_at_resume_->pit;
    state.clock = time_at_resume_->clock;
  }
  KILN_ASSIGN_OR_RETURN(std::vector<uint32_t> msr_indices, kvm_.msr_index_list());
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    Vcpu& v = *vcpus_[i];
    snapshot::VcpuState vs;
    CpuidTable cpuid = arch::cpuid_for_vcpu(supported_cpuid_, v.id(), static_cast<uint32_t>(vcpus_.size()));
    vs.cpuid.assign(cpuid.raw()->entries, cpuid.raw()->entries + cpuid.size());
    KILN_ASSIGN_OR_RETURN(vs.regs, v.get_regs());
    KILN_ASSIGN_OR_RETURN(vs.sregs, v.get_sregs());
    KILN_ASSIGN_OR_RETURN(vs.xsave, v.get_xsave());
    KILN_ASSIGN_OR_RETURN(vs.xcrs, v.get_xcrs());
    KILN_ASSIGN_OR_RETURN(vs.msrs, read_msrs(v, msr_indices));
    if (time_at_resume_ && i < time_at_resume_->tsc.size()) {
      for (const auto& saved : time_at_resume_->tsc[i]) {
        for (auto& m : vs.msrs) {
          if (m.first == saved.first) m.second = saved.second;
        }
      }
    }
    KILN_ASSIGN_OR_RETURN(vs.lapic, v.get_lapic());
    KILN_ASSIGN_OR_RETURN(vs.mp_state, v.get_mp_state());
    KILN_ASSIGN_OR_RETURN(vs.events, v.get_vcpu_events());
    state.vcpus.push_back(std::move(vs));
  }
  state.serial = serial_->save();
  state.i8042 = i8042_->save();

  // A drive request popped from its queue but still at an NBD server would be in neither the
  // saved rings nor the guest's memory: the drives stop taking requests and drain first.
  auto resume_drives = [this] {
    for (auto& [id, blk] : blocks_) blk->resume_requests();
  };
  for (auto& [id, blk] : blocks_) {
    if (auto st = blk->quiesce(kDrainDeadline); !st.ok()) {
      resume_drives();
      Status resumed = resume();
      return st.error().wrap("snapshot not taken: drive " + id + " did not drain" +
                             (resumed.ok() ? " (the VM runs on)" : " (and resuming failed: " + resumed.error().message + ")"));
    }
  }

  // Device state and guest memory are captured on the event-loop thread, so no device work
  // (e.g. vsock data arriving from the host) changes either halfway through.
  std::promise<Status> done;
  loop_->post([&] {
    for (const VirtioSlot& s : virtio_) state.devices.push_back({s.name, s.transport->save_state()});
    done.set_value(write_memory_file(mem_, params.mem_file_path));
  });
  Status saved = done.get_future().get();
  resume_drives();
  KILN_TRY(saved);
  KILN_TRY(io::sync_parent_dir(params.mem_file_path));
  return snapshot::write_state_file(params.snapshot_path, snapshot::encode_vm_state(state));
}

Result<std::unique_ptr<Vmm>> Vmm::build_from_snapshot(const config::SnapshotLoad& load, Options options) {
  // Phase timings at info level (PUT /logger {"level": "Info"}): where a restore spends its time.
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto t_phase = t0;
  std::string phases;
  auto phase = [&](const char* name) {
    const auto now = Clock::now();
    phases += std::string(phases.empty() ? "" : ", ") + name + " " +
              std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now - t_phase).count() / 1000.0).substr(0, 6) + " ms";
    t_phase = now;
  };
  KILN_ASSIGN_OR_RETURN(std::string payload, snapshot::read_state_file(load.snapshot_path));
  KILN_ASSIGN_OR_RETURN(snapshot::VmState state, snapshot::decode_vm_state(payload));
  auto parsed = config::parse_vm_config_text(state.config_json);
  if (!parsed.ok()) return parsed.error().wrap("snapshot configuration");
  config::VmConfig config = std::move(*parsed);
  if (state.mem_bytes != config.machine_config.mem_size_mib << 20) return make_error("snapshot memory size disagrees with its configuration");
  if (state.vcpus.size() != config.machine_config.vcpu_count) return make_error("snapshot vCPU count disagrees with its configuration");
  // Host paths may differ between the machine that took the snapshot and this one.
  KILN_TRY(config::apply_load_overrides(config, load));

  phase("state file");
  KILN_ASSIGN_OR_RETURN(GuestMemory mem, map_memory_file(load.mem_backend.backend_path, state.mem_bytes));
  phase("memory map");
  KILN_ASSIGN_OR_RETURN(auto vmm, assemble(config, options, std::move(mem)));
  phase("VM and devices");
  if (state.devices.size() != vmm->virtio_.size()) return make_error("snapshot devices do not match its configuration");

  if (load.resume_vm) {
    KILN_TRY(vmm->vm_.set_pit2(state.pit));
    KILN_TRY(vmm->vm_.set_clock(state.clock));
  } else {
    vmm->time_at_resume_ = TimeAtResume{state.clock, state.pit, {}};
  }
  KILN_TRY(vmm->vm_.set_irqchip(state.pic_master));
  KILN_TRY(vmm->vm_.set_irqchip(state.pic_slave));
  KILN_TRY(vmm->vm_.set_irqchip(state.ioapic));
  for (uint32_t i = 0; i < state.vcpus.size(); ++i) {
    const snapshot::VcpuState& vs = state.vcpus[i];
    KILN_ASSIGN_OR_RETURN(auto vcpu, vmm->vm_.create_vcpu(i));
    CpuidTable cpuid(static_cast<uint32_t>(vs.cpuid.size()));
    std::memcpy(cpuid.raw()->entries, vs.cpuid.data(), vs.cpuid.size() * sizeof(kvm_cpuid_entry2));
    // Firecracker's order: CPUID, MP state, registers, XSAVE/XCRs, LAPIC, MSRs, events.
    KILN_TRY(vcpu->set_cpuid(cpuid));
    KILN_TRY(vcpu->set_mp_state(vs.mp_state));
    KILN_TRY(vcpu->set_regs(vs.regs));
    KILN_TRY(vcpu->set_sregs(vs.sregs));
    KILN_TRY(vcpu->set_xsave(vs.xsave));
    KILN_TRY(vcpu->set_xcrs(vs.xcrs));
    KILN_TRY(vcpu->set_lapic(vs.lapic));
    KILN_TRY(vcpu->set_msrs(vs.msrs));
    KILN_TRY(vcpu->set_vcpu_events(vs.events));
    if (!load.resume_vm) {
      std::vector<std::pair<uint32_t, uint64_t>> tsc;
      for (uint32_t index : {kMsrTsc, kMsrTscDeadline}) {
        for (const auto& m : vs.msrs) {
          if (m.first == index) tsc.push_back(m);
        }
      }
      vmm->time_at_resume_->tsc.push_back(std::move(tsc));
    }
    vmm->vcpus_.push_back(std::move(vcpu));
  }
  phase("vCPU state");
  KILN_TRY(vmm->serial_->restore(state.serial));
  KILN_TRY(vmm->i8042_->restore(state.i8042));
  for (size_t i = 0; i < state.devices.size(); ++i) {
    VirtioSlot& slot = vmm->virtio_[i];
    if (state.devices[i].name != slot.name) return make_error("snapshot device '" + state.devices[i].name + "' does not match '" + slot.name + "'");
    auto s = slot.transport->restore_state(state.devices[i].transport);
    if (!s.ok()) return s.error().wrap("restoring " + slot.name);
  }
  // Connections did not survive: tell the guest's vsock driver (virtio 1.2 §5.10.6.8), now or,
  // loaded paused, when the guest first runs.
  if (vmm->vsock_ != nullptr && load.resume_vm) {
    if (auto s = vmm->vsock_->send_transport_reset(); !s.ok()) return s.error().wrap("vsock transport reset");
  }
  vmm->reset_at_resume_ = vmm->vsock_ != nullptr && !load.resume_vm;
  phase("device state");
  KILN_LOG_INFO("snapshot load: %s; total %.1f ms", phases.c_str(),
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count() / 1000.0);
  if (!load.resume_vm) {
    vmm->pause_requested_ = true;  // vCPUs park before their first KVM_RUN
    for (auto& v : vmm->vcpus_) v->run_struct()->immediate_exit = 1;
  }
  return vmm;
}

}  // namespace kiln::vmm

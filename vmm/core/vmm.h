// Vmm: one microVM. build_for_boot() turns a VmConfig into a KVM VM with guest memory, the
// kernel and initrd loaded, devices attached and vCPUs in their boot state; start() runs the
// vCPU threads and the device event loop; wait() returns the VM's exit code.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/config/snapshot_config.h"
#include "vmm/config/vm_config.h"
#include "vmm/devices/block_device.h"
#include "vmm/devices/net_device.h"
#include "vmm/devices/vsock_device.h"
#include "common/event_loop/event_loop.h"
#include "vmm/kvm/kvm.h"
#include "vmm/legacy/i8042.h"
#include "vmm/legacy/serial8250.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/seccomp/seccomp_filter.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm {

// Process exit codes of kiln-vmm (documented in vmm/README.md).
enum class VmExit : int {
  kGuestShutdown = 0,   // the guest rebooted or powered off
  kVmmError = 1,        // kiln-vmm failed (bad config, KVM error)
  kGuestPanic = 2,      // the guest kernel panicked
  kGuestFault = 3,      // triple fault or KVM internal error without a reboot request
};

class Vmm {
 public:
  struct Options {
    Options() = default;
    explicit Options(int serial_out) : serial_out_fd(serial_out) {}

    int serial_out_fd = 1;  // borrowed; -1 discards guest console output
    // Per-thread seccomp filters (vmm/seccomp): the event-loop thread installs the kVmm filter
    // and each vCPU thread the kVcpu filter before its first KVM_RUN. On unless --no-seccomp.
    seccomp::Settings seccomp;
    // Test hook (--debug-seccomp-violation-after-ms): once this long has passed since start(),
    // vCPU 0 makes a forbidden syscall at its next exit to user space, so tests can see the
    // VMM end with SIGSYS. Never set in production.
    std::optional<std::chrono::milliseconds> debug_seccomp_violation_after;
  };

  // Two explicit ways to build a VM: for a fresh boot, and from a snapshot (vmm_snapshot.cc).
  // A VM built from a snapshot starts paused unless load.resume_vm; it gets the snapshot's
  // devices with host paths overridable (vsock uds_path, drive paths).
  static Result<std::unique_ptr<Vmm>> build_for_boot(const config::VmConfig& config, Options options);
  static Result<std::unique_ptr<Vmm>> build_from_snapshot(const config::SnapshotLoad& load, Options options);
  ~Vmm();
  Vmm(const Vmm&) = delete;
  Vmm& operator=(const Vmm&) = delete;

  Status start();
  // Blocks until the VM has ended and every thread is joined; returns the exit code.
  int wait();
  // Ends the VM from the host side (e.g. API or signal); `code` becomes wait()'s result.
  void stop(VmExit code);
  // Presses Ctrl+Alt+Del on the guest's keyboard controller.
  Status send_ctrl_alt_del();
  bool running() const { return started_ && !stopping_.load(); }

  // Parks every vCPU outside KVM_RUN (pending port/MMIO completions done) / lets them go on.
  Status pause();
  Status resume();
  bool paused() const { return pause_requested_.load(); }
  // "vCPU exits N M ..." (exits to user space per vCPU so far), for diagnostics.
  std::string vcpu_exit_text() const;
  // Full snapshot of a paused VM: state file (magic, format version, checksum) + memory file.
  // Drive requests still at an NBD server are completed first (within 10 s); if they are not,
  // no snapshot is written, the VM resumes and the error says which drive.
  Status create_snapshot(const config::SnapshotCreate& params);
  const config::VmConfig& config() const { return config_; }
  // PATCH /network-interfaces: new limiters for the interface's directions given (a limiter
  // with no bucket lifts the limit); config() shows them, so snapshots keep them.
  Status update_network_interface(const std::string& iface_id, const std::optional<config::RateLimiterConfig>& rx,
                                  const std::optional<config::RateLimiterConfig>& tx);
  nlohmann::json metrics() const;
  const std::string& kernel_cmdline() const { return cmdline_; }

 private:
  struct VirtioSlot {
    std::string name;
    uint64_t base = 0;
    uint32_t irq = 0;
    std::shared_ptr<virtio::VirtioDevice> device;
    std::unique_ptr<virtio::VirtioMmioTransport> transport;
    UniqueFd irq_fd;
    std::vector<UniqueFd> notify_fds;
  };

  Vmm(KvmSystem kvm, Vm vm, GuestMemory mem) : kvm_(std::move(kvm)), vm_(std::move(vm)), mem_(std::move(mem)) {}
  // KVM VM, memory slots, irqchip, PIT, event loop, legacy and virtio devices: what boot and
  // restore share. vCPUs and guest-visible boot data are the caller's.
  static Result<std::unique_ptr<Vmm>> assemble(const config::VmConfig& config, Options options, GuestMemory mem);
  void park();
  Status attach_virtio(std::string name, std::shared_ptr<virtio::VirtioDevice> device);
  Status attach_legacy(int serial_out_fd);
  void vcpu_thread(size_t index);
  void vcpu_loop(size_t index);
  void maybe_commit_debug_violation(size_t index);
  void handle_io(kvm_run* run);
  void handle_mmio(kvm_run* run);
  void finish(VmExit code);

  config::VmConfig config_;
  CpuidTable supported_cpuid_{1};
  devices::VsockDevice* vsock_ = nullptr;  // owned by its VirtioSlot
  std::vector<std::pair<std::string, devices::NetDevice*>> nets_;  // by iface_id; owned by VirtioSlots
  std::vector<std::pair<std::string, devices::BlockDevice*>> blocks_;  // by drive_id; owned by VirtioSlots
  KvmSystem kvm_;
  Vm vm_;
  GuestMemory mem_;
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  // Per vCPU: returns from KVM_RUN (exits to user space); shown in /metrics and in the vsock
  // device's unresponsive-guest warning (a count that stands still: stuck in the guest, or
  // halted with no interrupt coming).
  std::unique_ptr<std::atomic<uint64_t>[]> vcpu_exits_;
  std::vector<VirtioSlot> virtio_;
  std::unique_ptr<legacy::Serial8250> serial_;
  std::unique_ptr<legacy::I8042> i8042_;
  UniqueFd serial_irq_fd_;
  UniqueFd kbd_irq_fd_;
  std::string cmdline_;
  seccomp::Settings seccomp_;
  std::optional<std::chrono::steady_clock::time_point> debug_violation_at_;
  std::optional<std::chrono::milliseconds> debug_violation_after_;

  std::thread loop_thread_;
  std::vector<std::thread> vcpu_threads_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> reset_requested_{false};
  std::atomic<bool> pause_requested_{false};
  // The guest's time while the VM is paused (loaded paused, or paused after running): it
  // stands still and continues at the next resume from these values, so that the guest sees no
  // clock jump for the time it stayed paused (QEMU keeps kvmclock across a stop the same way).
  // Its kvmclock (KVM_SET_CLOCK); its PIT (a PIT left counting while paused gets every tick it
  // missed re-injected at the resume: a guest ticking from the PIT at 250 Hz got 3000 ticks after
  // 12 s loaded, a storm of timer interrupts and IPIs that held it seconds after the resume);
  // per vCPU its time stamp counter, then its TSC-deadline timer (the TSC is the guest's
  // clocksource when invariant, the deadline is absolute). API thread only (load, pause, resume
  // and snapshot creation run there, one at a time).
  struct TimeAtResume {
    kvm_clock_data clock{};
    kvm_pit_state2 pit{};
    std::vector<std::vector<std::pair<uint32_t, uint64_t>>> tsc;
  };
  std::optional<TimeAtResume> time_at_resume_;
  Result<TimeAtResume> capture_time() const;
  // A snapshot loaded without resume_vm: the vsock transport reset waits for the first resume,
  // so that the guest sees no host connection before its driver took in the reset.
  bool reset_at_resume_ = false;
  std::mutex pause_mu_;
  std::condition_variable pause_cv_;
  size_t parked_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  VmExit exit_ = VmExit::kGuestShutdown;
};

}  // namespace kiln::vmm

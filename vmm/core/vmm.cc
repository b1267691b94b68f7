// Vmm implementation: VM construction for boot, vCPU exit loop, bus dispatch, stop.
#include "vmm/core/vmm.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "vmm/arch/boot_params.h"
#include "vmm/arch/kernel_loader.h"
#include "vmm/arch/layout.h"
#include "vmm/arch/mptable/mptable.h"
#include "vmm/arch/vcpu_setup.h"
#include "vmm/devices/tap.h"
#include "vmm/devices/rng_device.h"
#include "vmm/devices/vsock_device.h"

namespace kiln::vmm {
namespace {

constexpr int kKickSignal = SIGUSR1;  // interrupts KVM_RUN so a vCPU sees the stop flag

void on_kick(int) {}

Result<UniqueFd> make_eventfd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return errno_error("eventfd");
  return UniqueFd(fd);
}

// Names show in /proc/<pid>/task/*/comm (15 characters at most), e.g. in the seccomp e2e test.
void name_this_thread(const std::string& name) { ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str()); }

void signal_eventfd(int fd) {
  uint64_t one = 1;
  ssize_t n = ::write(fd, &one, sizeof one);
  (void)n;  // EAGAIN means the counter is already non-zero: the edge is pending anyway
}

}  // namespace

Result<std::unique_ptr<Vmm>> Vmm::assemble(const config::VmConfig& config, Options options,
                                            GuestMemory mem) {
  KILN_ASSIGN_OR_RETURN(KvmSystem kvm, KvmSystem::open());
  // Asked before the VM exists: some KVM modules refuse it afterwards.
  KILN_ASSIGN_OR_RETURN(CpuidTable cpuid, kvm.supported_cpuid());
  // With the TSC-deadline timer the guest's clock events need no LAPIC timer calibration; under
  // emulation that calibration failed now and then and left the guest ticking from the PIT
  // (an exit and, with 2 vCPUs, a broadcast IPI on every tick).
  if (kvm.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0) arch::announce_tsc_deadline(cpuid);
  KILN_ASSIGN_OR_RETURN(Vm vm, kvm.create_vm());
  auto vmm = std::unique_ptr<Vmm>(new Vmm(std::move(kvm), std::move(vm), std::move(mem)));
  vmm->config_ = config;
  vmm->supported_cpuid_ = std::move(cpuid);
  vmm->seccomp_ = options.seccomp;
  vmm->debug_violation_after_ = options.debug_seccomp_violation_after;

  uint32_t slot = 0;
  for (const GuestRegionInfo& r : vmm->mem_.regions()) {
    KILN_TRY(vmm->vm_.set_user_memory_region(slot++, r.base.value(), r.size, r.host));
  }
  // Intel-only ioctls; AMD hosts accept and ignore them.
  KILN_TRY(vmm->vm_.set_tss_addr(layout::kTssAddr));
  KILN_TRY(vmm->vm_.set_identity_map_addr(layout::kIdentityMapAddr));
  KILN_TRY(vmm->vm_.create_irqchip());
  KILN_TRY(vmm->vm_.create_pit2());

  KILN_ASSIGN_OR_RETURN(vmm->loop_, EventLoop::create());
  KILN_TRY(vmm->attach_legacy(options.serial_out_fd));

  // Devices, in a fixed order so guest device names are stable: drives (root first), vsock, rng,
  // network interfaces.
  std::vector<const config::Drive*> drives;
  if (const config::Drive* root = config.root_drive()) drives.push_back(root);
  for (const config::Drive& d : config.drives) {
    if (!d.is_root_device) drives.push_back(&d);
  }
  for (const config::Drive* d : drives) {
    devices::BlockDeviceConfig bc{d->path_on_host, d->is_read_only, d->drive_id, d->rate_limiter.value_or(config::RateLimiterConfig{}), {}};
    auto blk = devices::BlockDevice::open(bc, vmm->loop_.get());
    if (!blk.ok()) return blk.error().wrap("drive " + d->drive_id);
    vmm->blocks_.emplace_back(d->drive_id, blk->get());
    KILN_TRY(vmm->attach_virtio("block_" + d->drive_id, std::move(*blk)));
  }
  if (config.vsock) {
    devices::VsockDeviceConfig vc;
    vc.guest_cid = config.vsock->guest_cid;
    vc.uds_path = config.vsock->uds_path;
    KILN_ASSIGN_OR_RETURN(auto vsock, devices::VsockDevice::create(vc, *vmm->loop_));
    vmm->vsock_ = vsock.get();
    Vmm* self = vmm.get();
    vsock->set_diagnostics([self] { return self->vcpu_exit_text(); });
    KILN_TRY(vmm->attach_virtio("vsock", std::move(vsock)));
  }
  if (config.entropy) {
    KILN_TRY(vmm->attach_virtio("entropy", std::make_shared<devices::RngDevice>()));
  }
  for (const config::NetworkInterface& n : config.network_interfaces) {
    KILN_ASSIGN_OR_RETURN(auto tap, devices::Tap::open(n.host_dev_name));
    devices::NetDeviceConfig nc;
    nc.mac = n.guest_mac;
    nc.mtu = n.mtu;
    nc.rx_limit = n.rx_rate_limiter.value_or(config::RateLimiterConfig{});
    nc.tx_limit = n.tx_rate_limiter.value_or(config::RateLimiterConfig{});
    KILN_ASSIGN_OR_RETURN(auto net, devices::NetDevice::create(nc, std::move(tap), *vmm->loop_));
    vmm->nets_.emplace_back(n.iface_id, net.get());
    KILN_TRY(vmm->attach_virtio("net_" + n.iface_id, std::move(net)));
  }
  return vmm;
}

Result<std::unique_ptr<Vmm>> Vmm::build_for_boot(const config::VmConfig& config, Options options) {
  KILN_TRY(config::validate_for_start(config));
  const config::BootSource& boot = *config.boot_source;
  const uint32_t vcpu_count = config.machine_config.vcpu_count;
  const uint64_t mem_bytes = config.machine_config.mem_size_mib << 20;

  KILN_ASSIGN_OR_RETURN(GuestMemory mem, GuestMemory::create_anonymous(arch::ram_regions(mem_bytes)));
  KILN_ASSIGN_OR_RETURN(auto vmm, assemble(config, options, std::move(mem)));

  // Command line: the user's arguments (or a default), the root device, then the devices.
  std::string cmdline = boot.boot_args.value_or("console=ttyS0 reboot=k panic=1");
  if (const config::Drive* root = config.root_drive()) {
    cmdline += std::string(" root=/dev/vda") + (root->is_read_only ? " ro" : " rw");
  }
  for (const VirtioSlot& s : vmm->virtio_) {
    char dev[96];
    std::snprintf(dev, sizeof dev, " virtio_mmio.device=4K@0x%llx:%u",
                  static_cast<unsigned long long>(s.base), s.irq);
    cmdline += dev;
  }
  vmm->cmdline_ = cmdline;

  KILN_ASSIGN_OR_RETURN(arch::LoadedKernel kernel, arch::load_kernel_file(vmm->mem_, boot.kernel_image_path));
  arch::BootParamsSpec spec;
  spec.mem_bytes = mem_bytes;
  spec.cmdline = cmdline;
  spec.bzimage_hdr = kernel.bzimage_hdr;
  if (boot.initrd_path) {
    KILN_ASSIGN_OR_RETURN(arch::LoadedInitrd initrd,
                          arch::load_initrd_file(vmm->mem_, *boot.initrd_path, kernel.end,
                                                 arch::initrd_limit(mem_bytes, kernel.bzimage_hdr)));
    spec.initrd = initrd;
  }
  KILN_TRY(arch::write_boot_params(vmm->mem_, spec));
  KILN_TRY(arch::write_boot_tables(vmm->mem_));
  KILN_TRY(arch::write_mptable(vmm->mem_, vcpu_count));

  for (uint32_t i = 0; i < vcpu_count; ++i) {
    KILN_ASSIGN_OR_RETURN(auto vcpu, vmm->vm_.create_vcpu(i));
    KILN_TRY(arch::setup_vcpu(*vcpu, vmm->supported_cpuid_, vcpu_count, kernel.entry.value()));
    vmm->vcpus_.push_back(std::move(vcpu));
  }
  return vmm;
}

Status Vmm::attach_legacy(int serial_out_fd) {
  KILN_ASSIGN_OR_RETURN(serial_irq_fd_, make_eventfd());
  KILN_TRY(vm_.register_irqfd(serial_irq_fd_.get(), layout::kSerialIrq));
  int irq_fd = serial_irq_fd_.get();
  serial_ = std::make_unique<legacy::Serial8250>(serial_out_fd, [irq_fd] { signal_eventfd(irq_fd); });
  KILN_ASSIGN_OR_RETURN(kbd_irq_fd_, make_eventfd());
  KILN_TRY(vm_.register_irqfd(kbd_irq_fd_.get(), layout::kKeyboardIrq));
  int kbd_fd = kbd_irq_fd_.get();
  i8042_ = std::make_unique<legacy::I8042>(
      [this] {
        // Linux reboots through the i8042 after a panic too (panic=N): the console tells them apart.
        reset_requested_ = true;
        finish(serial_->saw_panic() ? VmExit::kGuestPanic : VmExit::kGuestShutdown);
      },
      [kbd_fd] { signal_eventfd(kbd_fd); });
  return ok_status();
}

Status Vmm::attach_virtio(std::string name, std::shared_ptr<virtio::VirtioDevice> device) {
  size_t index = virtio_.size();
  if (layout::kFirstVirtioIrq + index > layout::kLastIrq) return make_error("too many virtio devices");
  VirtioSlot s;
  s.name = std::move(name);
  s.base = layout::kVirtioMmioBase + index * layout::kVirtioMmioSize;
  s.irq = static_cast<uint32_t>(layout::kFirstVirtioIrq + index);
  s.device = device;
  KILN_ASSIGN_OR_RETURN(s.irq_fd, make_eventfd());
  KILN_TRY(vm_.register_irqfd(s.irq_fd.get(), s.irq));
  int irq_fd = s.irq_fd.get();
  s.transport = std::make_unique<virtio::VirtioMmioTransport>(mem_, std::move(device),
                                                               [irq_fd] { signal_eventfd(irq_fd); });
  // QueueNotify writes become eventfd signals handled on the event-loop thread.
  virtio::VirtioMmioTransport* transport = s.transport.get();
  for (size_t q = 0; q < s.transport->queue_count(); ++q) {
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, make_eventfd());
    KILN_TRY(vm_.register_ioeventfd(fd.get(), s.base + virtio::mmio::kQueueNotify, 4, true, q));
    int raw = fd.get();
    KILN_TRY(loop_->add(raw, EPOLLIN, [raw, transport, q](uint32_t) {
      uint64_t count = 0;
      if (::read(raw, &count, sizeof count) == sizeof count) transport->notify_queue(static_cast<uint32_t>(q));
    }));
    s.notify_fds.push_back(std::move(fd));
  }
  virtio_.push_back(std::move(s));
  return ok_status();
}

Status Vmm::start() {
  if (started_) return make_error("the VM is already running");
  struct sigaction sa{};
  sa.sa_handler = on_kick;
  ::sigaction(kKickSignal, &sa, nullptr);
  started_ = true;
  vcpu_exits_ = std::make_unique<std::atomic<uint64_t>[]>(vcpus_.size());  // before any thread reads it
  if (debug_violation_after_) debug_violation_at_ = std::chrono::steady_clock::now() + *debug_violation_after_;
  loop_thread_ = std::thread([this] {
    // The device thread's filter goes on before it serves any guest request.
    name_this_thread("kiln_evloop");
    if (auto f = seccomp::install_thread_filter(seccomp::ThreadKind::kVmm, seccomp_); !f.ok()) {
      std::fprintf(stderr, "kiln-vmm: event loop: %s\n", f.error().message.c_str());
      finish(VmExit::kVmmError);
      return;
    }
    Status s = loop_->run();
    if (!s.ok()) {
      std::fprintf(stderr, "kiln-vmm: event loop failed: %s\n", s.error().message.c_str());
      finish(VmExit::kVmmError);
    }
  });
  for (size_t i = 0; i < vcpus_.size(); ++i) vcpu_threads_.emplace_back([this, i] { vcpu_thread(i); });
  return ok_status();
}

void Vmm::vcpu_thread(size_t index) {
  // The vCPU filter goes on before the first KVM_RUN: no guest instruction runs without it.
  name_this_thread("kiln_vcpu" + std::to_string(index));
  if (auto f = seccomp::install_thread_filter(seccomp::ThreadKind::kVcpu, seccomp_); !f.ok()) {
    std::fprintf(stderr, "kiln-vmm: vCPU %zu: %s\n", index, f.error().message.c_str());
    finish(VmExit::kVmmError);
    return;
  }
  vcpu_loop(index);
}

// Test hook only (Options::debug_seccomp_violation_after): checked at every exit to user space,
// which a guest writing to its serial console makes often.
void Vmm::maybe_commit_debug_violation(size_t index) {
  if (index != 0 || !debug_violation_at_ || std::chrono::steady_clock::now() < *debug_violation_at_) return;
  debug_violation_at_.reset();
  std::fprintf(stderr, "kiln-vmm: test hook: vCPU 0 opens a TCP socket, which its seccomp filter forbids\n");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) ::close(fd);
  std::fprintf(stderr, "kiln-vmm: test hook: the forbidden syscall returned (seccomp is off)\n");
}

void Vmm::vcpu_loop(size_t index) {
  Vcpu& vcpu = *vcpus_[index];
  kvm_run* run = vcpu.run_struct();
  std::atomic<uint64_t>& exits = vcpu_exits_[index];
  while (!stopping_.load()) {
    maybe_commit_debug_violation(index);
    auto reason = vcpu.run();
    exits.fetch_add(1, std::memory_order_relaxed);
    if (!reason.ok()) {
      if (reason.error().sys_errno == EINTR || reason.error().sys_errno == EAGAIN) {
        // With immediate_exit set, KVM finished any pending port/MMIO completion first.
        if (pause_requested_.load()) park();
        continue;
      }
      std::fprintf(stderr, "kiln-vmm: vCPU %zu: %s\n", index, reason.error().message.c_str());
      finish(VmExit::kVmmError);
      return;
    }
    switch (*reason) {
      case KVM_EXIT_IO:
        handle_io(run);
        break;
      case KVM_EXIT_MMIO:
        handle_mmio(run);
        break;
      case KVM_EXIT_SHUTDOWN:
        // Linux's last resort after a reboot request is a triple fault; otherwise it is a crash.
        finish(reset_requested_ ? VmExit::kGuestShutdown
                                : (serial_->saw_panic() ? VmExit::kGuestPanic : VmExit::kGuestFault));
        return;
      case KVM_EXIT_SYSTEM_EVENT:
        finish(serial_->saw_panic() ? VmExit::kGuestPanic : VmExit::kGuestShutdown);
        return;
      case KVM_EXIT_HLT:
        finish(VmExit::kGuestShutdown);
        return;
      case KVM_EXIT_INTR:
        break;
      case KVM_EXIT_FAIL_ENTRY:
      case KVM_EXIT_INTERNAL_ERROR:
      default:
        std::fprintf(stderr, "kiln-vmm: vCPU %zu: unexpected exit reason %u\n", index, *reason);
        finish(VmExit::kGuestFault);
        return;
    }
  }
}

void Vmm::handle_io(kvm_run* run) {
  auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const uint16_t port = run->io.port;
  for (uint32_t i = 0; i < run->io.count; ++i) {
    std::span<uint8_t> data(base + size_t{i} * run->io.size, run->io.size);
    const bool in = run->io.direction == KVM_EXIT_IO_IN;
    if (port >= layout::kSerialPort && port < layout::kSerialPort + 8) {
      uint16_t off = static_cast<uint16_t>(port - layout::kSerialPort);
      if (in) serial_->io_read(off, data); else serial_->io_write(off, data);
    } else if (port == layout::kI8042DataPort || port == layout::kI8042CommandPort) {
      if (in) i8042_->io_read(port, data); else i8042_->io_write(port, data);
    } else if (in) {
      std::memset(data.data(), 0xff, data.size());  // nothing there: floating bus
    }
  }
}

void Vmm::handle_mmio(kvm_run* run) {
  const uint64_t addr = run->mmio.phys_addr;
  const uint32_t len = std::min<uint32_t>(run->mmio.len, sizeof run->mmio.data);
  std::span<uint8_t> data(run->mmio.data, len);
  if (addr >= layout::kVirtioMmioBase) {
    uint64_t index = (addr - layout::kVirtioMmioBase) / layout::kVirtioMmioSize;
    if (index < virtio_.size()) {
      uint64_t off = addr - virtio_[index].base;
      if (run->mmio.is_write) virtio_[index].transport->mmio_write(off, data);
      else virtio_[index].transport->mmio_read(off, data);
      return;
    }
  }
  if (!run->mmio.is_write) std::memset(data.data(), 0xff, data.size());
}

void Vmm::finish(VmExit code) {
  {
    std::lock_guard lock(mu_);
    if (stopping_.exchange(true)) return;
    exit_ = code;
  }
  // Kick every vCPU out of KVM_RUN (or out of its pause) and stop the device loop; wait() joins.
  for (auto& v : vcpus_) v->run_struct()->immediate_exit = 1;
  {
    std::lock_guard lock(pause_mu_);
    pause_cv_.notify_all();
  }
  for (auto& t : vcpu_threads_) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) ::pthread_kill(t.native_handle(), kKickSignal);
  }
  if (loop_) loop_->stop();
  cv_.notify_all();
}

void Vmm::stop(VmExit code) { finish(code); }

int Vmm::wait() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stopping_.load(); });
  }
  // Late kicks: a vCPU may have entered KVM_RUN between the flag and the first signal.
  for (int i = 0; i < 100; ++i) {
    bool all_done = true;
    for (auto& t : vcpu_threads_) {
      if (t.joinable()) { ::pthread_kill(t.native_handle(), kKickSignal); all_done = false; }
    }
    if (all_done) break;
    for (auto& t : vcpu_threads_) if (t.joinable()) t.join();
  }
  if (loop_thread_.joinable()) loop_thread_.join();
  std::lock_guard lock(mu_);
  finished_ = true;
  return static_cast<int>(exit_);
}

Status Vmm::send_ctrl_alt_del() {
  if (!running()) return make_error("the VM is not running");
  return i8042_->trigger_ctrl_alt_del();
}

Status Vmm::update_network_interface(const std::string& iface_id, const std::optional<config::RateLimiterConfig>& rx,
                                     const std::optional<config::RateLimiterConfig>& tx) {
  for (auto& [id, dev] : nets_) {
    if (id != iface_id) continue;
    KILN_TRY(dev->update_rate_limiters(rx, tx));
    for (config::NetworkInterface& n : config_.network_interfaces) {
      if (n.iface_id != iface_id) continue;
      auto stored = [](const config::RateLimiterConfig& l) {
        return l.bandwidth || l.ops ? std::optional<config::RateLimiterConfig>(l) : std::nullopt;
      };
      if (rx) n.rx_rate_limiter = stored(*rx);
      if (tx) n.tx_rate_limiter = stored(*tx);
    }
    return ok_status();
  }
  return make_error("no network interface '" + iface_id + "'");
}

nlohmann::json Vmm::metrics() const {
  nlohmann::json j = nlohmann::json::object();
  for (const VirtioSlot& s : virtio_) {
    virtio::DeviceCounters c = s.device->counters();
    j[s.name] = {{"requests", c.requests}, {"bytes_from_guest", c.bytes_from_guest},
                 {"bytes_to_guest", c.bytes_to_guest}, {"errors", c.errors},
                 {"refused_register_writes", s.transport->refused_writes()}};
    for (const auto& [name, value] : s.device->extra_counters()) j[s.name][name] = value;
  }
  j["serial"] = {{"bytes_written", serial_->bytes_written()}, {"bytes_dropped", serial_->bytes_dropped()}};
  if (vcpu_exits_) {
    nlohmann::json exits = nlohmann::json::array();
    for (size_t i = 0; i < vcpus_.size(); ++i) exits.push_back(vcpu_exits_[i].load(std::memory_order_relaxed));
    j["vcpu_exits"] = exits;
  }
  return j;
}

std::string Vmm::vcpu_exit_text() const {
  if (!vcpu_exits_) return "vCPUs not started";
  std::string out = "vCPU exits";
  for (size_t i = 0; i < vcpus_.size(); ++i) out += " " + std::to_string(vcpu_exits_[i].load(std::memory_order_relaxed));
  return out + (pause_requested_.load() ? " (paused)" : "");
}

Vmm::~Vmm() {
  if (started_) {
    finish(VmExit::kVmmError);
    if (!finished_) wait();
  }
}

}  // namespace kiln::vmm

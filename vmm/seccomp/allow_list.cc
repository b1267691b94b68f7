// The per-thread allow-lists. Each entry says why the thread needs it; the sets were collected
// by running the unit, kvm and e2e tiers (boot, devices, snapshot, kilnd) with --seccomp-audit.
// Compare Firecracker's resources/seccomp/x86_64-unknown-linux-musl.json (vmm, api, vcpu).
#include "vmm/seccomp/allow_list.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "vmm/kvm/kvm_abi.h"

namespace kiln::vmm::seccomp {
namespace {

// int arguments (and ioctl numbers: the kernel takes an unsigned int) compare only the low half;
// the upper half of the register is undefined.
constexpr uint64_t kLow32 = 0xffffffffu;

ArgCheck eq32(unsigned index, uint64_t value) { return {index, kLow32, value}; }
ArgCheck bits_clear(unsigned index, uint64_t bits) { return {index, bits, 0}; }
ArgCheck bits_set(unsigned index, uint64_t bits) { return {index, bits, bits}; }

void allow(AllowList& l, std::initializer_list<int> syscalls) {
  for (int nr : syscalls) l.rules.push_back({nr, {}});
}
void allow_if(AllowList& l, int nr, std::vector<ArgCheck> checks) { l.rules.push_back({nr, std::move(checks)}); }
void allow_ioctls(AllowList& l, std::initializer_list<unsigned long> requests) {
  for (unsigned long r : requests) allow_if(l, SYS_ioctl, {eq32(1, r)});
}

// What glibc and libstdc++ do in any thread: memory, locks, signals for kicks, time, exit.
void add_common(AllowList& l) {
  allow(l, {SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_close,
            SYS_futex, SYS_sched_yield,                      // mutexes, condition variables
            SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_restart_syscall,
            SYS_exit, SYS_exit_group,
            SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise,    // malloc, thread stacks
            SYS_clock_gettime, SYS_gettimeofday,             // vDSO fallbacks (logging, deadlines)
            SYS_clock_nanosleep, SYS_nanosleep,
            SYS_gettid, SYS_getpid});
  // No executable memory anywhere in kiln-vmm: nothing is loaded or generated after start.
  allow_if(l, SYS_mmap, {bits_clear(2, PROT_EXEC)});
  allow_if(l, SYS_mprotect, {bits_clear(2, PROT_EXEC)});
  // pthread_kill (vCPU kicks, abort) within this process only.
  allow_if(l, SYS_tgkill, {eq32(0, static_cast<uint64_t>(::getpid()))});
}

// The vCPU loop: KVM_RUN, and the exits it completes in user space (serial, i8042, virtio-mmio
// registers). Interrupts go out through eventfd writes (irqfd), stop/pause through futexes.
void add_vcpu(AllowList& l) {
  allow_ioctls(l, {KVM_RUN});
  // Virtio status writes (driver OK, device reset) run device activate/reset on the vCPU: the
  // vsock device then drops or re-arms its existing connections (seen in the kilnd e2e when a
  // guest shuts down). No new sockets, files or connections from here.
  allow(l, {SYS_epoll_ctl, SYS_timerfd_settime, SYS_recvfrom, SYS_sendto, SYS_shutdown});
}

// Threads that never open files still see glibc try, e.g. free() shrinking a thread arena reads
// /proc/sys/vm/overcommit_memory once (and copes with failure): read-only opens fail with
// ENOENT there instead of killing the VMM (crosvm's policies answer openat the same way).
void answer_read_only_opens(AllowList& l) {
  l.errno_rules.push_back({SYS_openat, ENOENT, {{2, O_ACCMODE, O_RDONLY}}});
}

// The device event loop and the main thread once the VM is built: epoll, eventfds, timers,
// virtio-blk file I/O and NBD sockets, hybrid vsock over AF_UNIX, entropy, snapshot memory file writing
// (posted to the loop), teardown.
void add_vmm(AllowList& l) {
  allow(l, {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_ctl,
            SYS_rt_sigtimedwait,                             // the signal thread (sigwait)
            SYS_timerfd_settime, SYS_timerfd_gettime,        // vsock credit/handshake timer
            SYS_pread64, SYS_pwrite64, SYS_preadv, SYS_pwritev, SYS_lseek,  // virtio-blk
            SYS_fsync, SYS_fdatasync,                        // virtio-blk flush, snapshot files
            SYS_fstat, SYS_newfstatat,
            SYS_getrandom,                                   // virtio-rng
            SYS_connect, SYS_accept4, SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg,
            SYS_shutdown, SYS_getsockopt,                    // hybrid vsock, API socket teardown
            SYS_ftruncate, SYS_rename, SYS_unlink});         // snapshot memory file, socket files
  // Hybrid vsock: Unix sockets only (a guest-initiated connection dials <uds_path>_<port>).
  allow_if(l, SYS_socket, {eq32(0, AF_UNIX)});
  // The snapshot memory file's temp file, created on the event loop (io::write_file_atomic,
  // which syncs no directory there: the API thread does): a new file only, never an existing one.
  allow_if(l, SYS_openat, {eq32(2, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC)});
  allow(l, {SYS_fcntl});
  // virtio-net: the TAP's offloads follow the driver's features at each activation.
  allow_ioctls(l, {TUNSETOFFLOAD});
}

// The API thread: everything the threads it starts need, plus the HTTP server (Boost.Asio on
// a Unix socket), building VMs (files, every KVM ioctl kiln uses) and pause/snapshot paths.
void add_api(AllowList& l) {
  add_vmm(l);
  add_vcpu(l);
  allow(l, {SYS_openat, SYS_stat, SYS_lstat, SYS_statx, SYS_readlink, SYS_access, SYS_faccessat,
            SYS_epoll_create1, SYS_eventfd2, SYS_timerfd_create, SYS_pipe2, SYS_dup,
            SYS_bind, SYS_listen, SYS_getsockname, SYS_getpeername, SYS_setsockopt,
            SYS_chmod, SYS_fchmod, SYS_fchmodat, SYS_fallocate,
            SYS_rt_sigaction, SYS_sigaltstack,               // the vCPU kick handler
            SYS_set_robust_list, SYS_rseq,                   // a new thread's first steps
            SYS_sched_getaffinity,
            SYS_seccomp});                                   // a new thread adds its own filter
  // Threads only (pthread_create); never a new process.
  allow_if(l, SYS_clone, {bits_set(0, CLONE_THREAD)});
  l.errno_rules.push_back({SYS_clone3, ENOSYS, {}});
  // NBD drives (libnbd): the connect and handshake, bounded by a deadline, wait in poll(2) on
  // the one socket; afterwards the event loop serves it (recvfrom/sendto, already allowed).
  allow_if(l, SYS_poll, {eq32(1, 1)});
  allow_if(l, SYS_prctl, {eq32(0, PR_SET_NAME)});
  allow_if(l, SYS_prctl, {eq32(0, PR_SET_NO_NEW_PRIVS)});  // libseccomp, before loading a filter
  allow_if(l, SYS_prctl, {eq32(0, PR_GET_SECCOMP)});
  allow_ioctls(l, {FIONBIO, FIONREAD, FIOCLEX});
  // Building a VM with a network interface: the TAP (opened by name) and its virtio header.
  allow_ioctls(l, {TUNSETIFF, TUNSETVNETHDRSZ});
  // /dev/kvm: capabilities and the VM.
  allow_ioctls(l, {KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VM,
                   abi::kGetSupportedCpuid, abi::kGetMsrIndexList});
  // VM fd: memory, in-kernel devices, interrupts, vCPUs, snapshot state.
  allow_ioctls(l, {KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR,
                   KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_IRQ_LINE, KVM_IOEVENTFD, KVM_IRQFD,
                   abi::kSetGsiRouting, KVM_CREATE_VCPU, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP,
                   KVM_GET_PIT2, KVM_SET_PIT2, KVM_GET_CLOCK, KVM_SET_CLOCK});
  // vCPU fds: boot setup, snapshot save (paused vCPUs) and restore.
  allow_ioctls(l, {abi::kSetCpuid2, abi::kGetCpuid2, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS,
                   KVM_SET_SREGS, KVM_GET_FPU, KVM_SET_FPU, abi::kGetMsrs, abi::kSetMsrs,
                   KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_MP_STATE, KVM_SET_MP_STATE, abi::kGetXsave,
                   abi::kSetXsave, KVM_GET_XCRS, KVM_SET_XCRS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS});
}

}  // namespace

std::string_view thread_kind_name(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kVmm: return "vmm";
    case ThreadKind::kApi: return "api";
    case ThreadKind::kVcpu: return "vcpu";
  }
  return "?";
}

bool AllowList::mentions(int syscall) const {
  return std::any_of(rules.begin(), rules.end(), [syscall](const Rule& r) { return r.syscall == syscall; });
}

AllowList allow_list(ThreadKind kind) {
  AllowList l;
  add_common(l);
  switch (kind) {
    case ThreadKind::kVmm: add_vmm(l); answer_read_only_opens(l); break;
    case ThreadKind::kApi: add_api(l); break;
    case ThreadKind::kVcpu: add_vcpu(l); answer_read_only_opens(l); break;
  }
  return l;
}

}  // namespace kiln::vmm::seccomp

// The seccomp allow-list of each kiln-vmm thread kind (main/event loop, API, vCPU), as data:
// which syscalls a thread may make and, where practical, which arguments (ioctl numbers,
// socket families, mmap without PROT_EXEC, clone only for threads). x86_64 only.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::vmm::seccomp {

enum class ThreadKind {
  kVmm,   // the main thread after the VM is built, the device event loop, the signal thread
  kApi,   // the API server thread: HTTP, building VMs, pause, snapshot create/load
  kVcpu,  // one per vCPU: KVM_RUN and the port/MMIO exits it hands back
};

std::string_view thread_kind_name(ThreadKind kind);

// One condition on a syscall argument: (arg[index] & mask) == value.
struct ArgCheck {
  unsigned index = 0;
  uint64_t mask = ~uint64_t{0};
  uint64_t value = 0;
};

// The syscall is allowed when every check holds; several rules for one syscall are
// alternatives (any one may match).
struct Rule {
  int syscall = -1;
  std::vector<ArgCheck> checks;
};

// A syscall answered with an errno instead of running, when every check holds: clone3 gets
// ENOSYS so glibc falls back to clone(2), whose flags (in a register, unlike clone3's) a filter
// can check; read-only openat gets ENOENT where glibc probes files on its own (free() reads
// /proc/sys/vm/overcommit_memory once when a thread's heap shrinks).
struct ErrnoRule {
  int syscall = -1;
  int error = 0;
  std::vector<ArgCheck> checks;
};

struct AllowList {
  std::vector<Rule> rules;
  std::vector<ErrnoRule> errno_rules;

  // True if some rule names the syscall (whatever its argument checks).
  bool mentions(int syscall) const;
};

// Threads inherit their creator's filter and add their own, so a kind that creates threads
// (kApi creates the event loop and vCPU threads) allows a superset of what they need;
// allow_list(kApi) includes allow_list(kVmm) and allow_list(kVcpu).
AllowList allow_list(ThreadKind kind);

}  // namespace kiln::vmm::seccomp

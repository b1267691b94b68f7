// Platform boundary: the function's command runs under a small init of its own, as PID 1 of a
// new PID and mount namespace, with a fresh /proc, a minimal /dev and no way to reach kiln-init.
// The plan is prepared in the agent; the cloned child only makes system calls with it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::agent {

// What the child mounts, every string and fd ready before clone (no allocation in the child).
struct BoundaryPlan {
  // The /dev entries kept (bound from the agent's /dev): character devices and the pts/shm
  // directories. Everything else in /dev (block devices such as the image /dev/vda and the
  // config drive /dev/vdb, the console, kmsg, vsock, hwrng, ...) is absent for the function.
  struct Node {
    std::string target;  // "/dev/null"
    std::string source;  // "/proc/self/fd/N", valid once the child's /proc is mounted
    bool directory = false;
    // Reserves the fd number `source` names (the child reopens the node onto it in its own
    // mount namespace); O_CLOEXEC, so the command never has it.
    UniqueFd fd;
  };
  std::vector<Node> nodes;
  // Capabilities removed from the bounding set, so a root function cannot undo the mounts
  // (CAP_SYS_ADMIN), create device nodes (CAP_MKNOD) or reach the kernel directly.
  std::vector<int> dropped_caps;
  // The process's argv memory (what /proc/PID/cmdline shows), renamed by the namespace init.
  char* argv_area = nullptr;
  std::size_t argv_len = 0;
};

// The names kept in the function's /dev (those the agent's /dev has).
inline constexpr const char* kKeptDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
inline constexpr const char* kKeptDevDirs[] = {"pts", "shm"};

Result<BoundaryPlan> prepare_boundary();

// How kiln-init asks the namespace init to signal the command: this real-time signal, queued
// (sigqueue) with the signal to forward as its value. Real-time signals queue; a plain SIGTERM
// from kiln-init would merge with one the function had just sent to its init itself (pending
// standard signals coalesce, keeping the first sender), and be dropped with it.
int boundary_forward_signal();

// Child side, in the new namespaces and before the credentials change: mounts private, fresh
// /proc (/proc/sys and /proc/sysrq-trigger read-only), /sys read-only, a tmpfs /dev with the
// kept nodes and the usual symlinks, the capability bounding set reduced.
// Returns nullptr or the failed step's name (errno set). Async-signal-safe.
const char* enter_boundary(const BoundaryPlan& plan);

// The namespace's PID 1 once the command (pid `command`) runs: reaps every process of the
// namespace, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 sent from outside it (the
// agent) to the command's process group, ignores signals from inside it, and when the command
// exits writes its raw wait status (an int) to status_fd and exits. Async-signal-safe.
[[noreturn]] void run_namespace_init(const BoundaryPlan& plan, pid_t command, int status_fd);

}  // namespace kiln::agent

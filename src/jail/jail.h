// The jail: spawn() starts the VMM in new mount/pid/ipc/uts/net namespaces, pivot_root'ed into
// <chroot_base>/<exec-name>/<id>/root with only its files and device nodes, in its cgroups, as
// an unprivileged user without capabilities; cleanup() removes all of it after the VM ended.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "src/jail/jail_spec.h"

namespace kiln::jail {

struct JailedProcess {
  pid_t pid = -1;     // in the caller's pid namespace; reap it with waitpid()
  UniqueFd pidfd;     // pidfd_open(2)-style handle (pollable: readable once the VMM exited)
  std::string chroot_dir;  // the VMM's "/" on the host: its sockets appear here
};

// The VMM's stdin/stdout/stderr: a caller fd each (dup'ed, the caller keeps its own), or -1 to
// inherit the caller's (or /dev/null with spec.daemonize). Serial console output goes to stdout.
struct Stdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

// Validates the spec (nothing is created when it is refused), builds the jail, and execs
// `spec.exec_file` as "/<exec-name>" with `vmm_args` and an empty environment. Returns once
// the exec happened; a failure in any step before it comes back as an error naming the step
// (and the half-built jail is removed again).
Result<JailedProcess> spawn(const JailSpec& spec, const std::vector<std::string>& vmm_args, Stdio stdio = {});

// Removes the per-VM directory (unmounting anything mounted below it in the caller's mount
// namespace first, never crossing into a mount) and the per-VM cgroups. Call it after the
// VMM exited; idempotent.
Status cleanup(const JailSpec& spec);

}  // namespace kiln::jail

// The boundary's mounts and the namespace init. Why a separate init rather than the command as
// the namespace's PID 1: a PID 1 ignores every signal it has no handler for, so a command
// without a SIGTERM handler would no longer stop on SIGTERM (only after the grace period, on
// SIGKILL), and its orphans would stay zombies; with this init the command keeps ordinary
// signal semantics, as under Docker's --init and Lambda's runtime.
#include "guest-agent/agent/boundary.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/io.h"

namespace kiln::agent {

Result<BoundaryPlan> prepare_boundary() {
  BoundaryPlan plan;
  auto add = [&](const char* name, bool directory) -> Status {
    std::string path = std::string("/dev/") + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ok_status();  // not in this /dev: not kept
    if (directory ? !S_ISDIR(st.st_mode) : !S_ISCHR(st.st_mode)) return ok_status();
    BoundaryPlan::Node n;
    n.fd = UniqueFd(::open(path.c_str(), O_PATH | O_CLOEXEC | (directory ? O_DIRECTORY : 0)));
    if (!n.fd) return errno_error("open " + path);
    n.target = path;
    n.source = "/proc/self/fd/" + std::to_string(n.fd.get());
    n.directory = directory;
    plan.nodes.push_back(std::move(n));
    return ok_status();
  };
  for (const char* n : kKeptDevNodes) KILN_TRY(add(n, false));
  for (const char* d : kKeptDevDirs) KILN_TRY(add(d, true));
  // This process's argv area, fields 48 and 49 of /proc/self/stat (after the comm's ')').
  auto stat_text = io::read_file("/proc/self/stat", 4096);
  if (stat_text.ok()) {
    std::istringstream fields(stat_text->substr(stat_text->rfind(')') + 1));
    std::string field;
    unsigned long start = 0, end = 0;
    for (int i = 3; i <= 49 && (fields >> field); ++i) {
      if (i == 48) start = std::strtoul(field.c_str(), nullptr, 10);
      if (i == 49) end = std::strtoul(field.c_str(), nullptr, 10);
    }
    if (start != 0 && end > start) {
      plan.argv_area = reinterpret_cast<char*>(start);
      plan.argv_len = end - start;
    }
  }
  plan.dropped_caps = {CAP_SYS_ADMIN, CAP_MKNOD, CAP_SYS_MODULE, CAP_SYS_RAWIO};
  return plan;
}

namespace {

constexpr unsigned long kProcFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

// Bind-mounts path onto itself read-only; a missing path is fine.
bool bind_read_only(const char* path) {
  if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0) return errno == ENOENT;
  return ::mount(nullptr, path, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kProcFlags, nullptr) == 0;
}

}  // namespace

const char* enter_boundary(const BoundaryPlan& plan) {
  // Nothing mounted here propagates back to the agent's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "making mounts private";
  // A /proc of this PID namespace: the agent's processes do not appear in it.
  (void)::umount2("/proc", MNT_DETACH);
  if (::mount("proc", "/proc", "proc", kProcFlags, nullptr) != 0) return "mounting /proc";
  if (!bind_read_only("/proc/sys")) return "making /proc/sys read-only";
  if (!bind_read_only("/proc/sysrq-trigger")) return "making /proc/sysrq-trigger read-only";
  // /sys read-only (no unbinding the vsock device); skipped where /sys is not a mount point.
  if (::mount(nullptr, "/sys", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kProcFlags, nullptr) != 0 &&
      errno != EINVAL && errno != ENOENT) {
    return "making /sys read-only";
  }
  // A fresh /dev holding only the kept nodes. A bind's source must be in this mount
  // namespace, so each node is opened again here, onto the fd number its source path names.
  for (const auto& n : plan.nodes) {
    int fd = ::open(n.target.c_str(), O_PATH | O_CLOEXEC | (n.directory ? O_DIRECTORY : 0));
    if (fd < 0 || ::dup3(fd, n.fd.get(), O_CLOEXEC) < 0) return "opening a kept /dev node";
    ::close(fd);
  }
  if (::mount("kiln-dev", "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") != 0) return "mounting /dev";
  for (const auto& n : plan.nodes) {
    if (n.directory) {
      if (::mkdir(n.target.c_str(), 0755) != 0) return "creating a /dev directory";
    } else {
      int fd = ::open(n.target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0) return "creating a /dev node";
      ::close(fd);
    }
    if (::mount(n.source.c_str(), n.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return "binding a /dev node";
  }
  struct Link {
    const char* target;
    const char* path;
  };
  static constexpr Link kLinks[] = {{"/proc/self/fd", "/dev/fd"},   {"/proc/self/fd/0", "/dev/stdin"},
                                    {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
                                    {"pts/ptmx", "/dev/ptmx"}};
  for (const auto& l : kLinks) {
    if (::symlink(l.target, l.path) != 0) return "creating a /dev symlink";
  }
  for (int cap : plan.dropped_caps) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return "dropping the capability bounding set";
  }
  return nullptr;
}

void run_namespace_init(const BoundaryPlan& plan, pid_t command, int status_fd) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // everything arrives through sigwaitinfo
  // This process is visible to the function (its PID 1): it keeps none of the agent's fds
  // (sockets included, so pidfd_getfd finds nothing) and no capability but CAP_KILL (to signal
  // a command running as another user), so a root function that ptraces it gains nothing.
  // Named fn-init in ps and /proc/1/{comm,cmdline}, not as the kiln-init it was forked from:
  // its argv area (this process's copy) is overwritten.
  static constexpr char kName[] = "fn-init";
  (void)::prctl(PR_SET_NAME, kName, 0, 0, 0);
  if (plan.argv_len >= sizeof kName) {
    std::memset(plan.argv_area, 0, plan.argv_len);
    std::memcpy(plan.argv_area, kName, sizeof kName);
  }
  for (int fd = 0; fd < status_fd; ++fd) ::close(fd);
  if (::close_range(static_cast<unsigned>(status_fd) + 1, ~0u, 0) != 0) {
    for (int fd = status_fd + 1; fd < 65536; ++fd) ::close(fd);
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].effective = data[0].permitted = 1u << CAP_KILL;
  (void)::syscall(SYS_capset, &hdr, data);
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  while (true) {
    siginfo_t si{};
    int sig = ::sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int status = 0;
      pid_t r;
      while ((r = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (r != command) continue;
        (void)!::write(status_fd, &status, sizeof status);
        // Leaving ends the namespace: the kernel kills whatever the command left behind.
        _exit(0);
      }
      continue;
    }
    // si_pid is 0 for a sender outside this PID namespace (the agent); signals from the
    // function itself (kill 1) are dropped.
    if (si.si_pid != 0) continue;
    if (sig == boundary_forward_signal()) sig = si.si_value.sival_int;  // the agent's request
    switch (sig) {
      case SIGTERM: case SIGINT: case SIGHUP: case SIGQUIT: case SIGUSR1: case SIGUSR2:
        if (::kill(-command, sig) != 0) ::kill(command, sig);
        break;
      default:
        break;
    }
  }
}

int boundary_forward_signal() { return SIGRTMIN + 1; }

}  // namespace kiln::agent

// Builds the jail and execs the VMM in it. The host side (validation, directories, cgroups,
// every string and fd the child needs) is prepared first; the cloned child then only makes
// system calls (no allocation: the caller may be multi-threaded) and reports a failing step
// through an O_CLOEXEC pipe that the successful execve closes. Sequence after Firecracker's
// jailer (docs/jailer.md "Jailer Operation") and pivot_root(2) "new_root and put_old may be the same".
#include "src/jail/jail.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/sched.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/io.h"
#include "src/jail/cgroups.h"
#include "src/jail/exec_libraries.h"
#include "src/jail/host_files.h"

namespace kiln::jail {
namespace {

// The steps of the child, reported back by number when one fails.
enum class Step : int32_t {
  kSignals, kCgroup, kSetns, kMountPrivate, kBindRoot, kBindFile, kRemountFile, kMountDev,
  kChdirRoot, kPivotRoot, kDetachOldRoot, kChroot, kRemountRoot, kMknodKvm, kMknodTun, kHostname,
  kRlimit, kDaemonize, kStdio, kCloseFds, kCapBound, kCapAmbient, kSetgroups, kSetgid, kSetuid, kCapClear,
  kNoNewPrivs, kParentDeath, kExec,
};

constexpr const char* kStepNames[] = {
    "resetting signals", "joining the cgroup", "joining the network namespace",
    "making mounts private", "bind-mounting the jail root onto itself", "bind-mounting a file",
    "remounting a file read-only/nosuid", "mounting /dev", "chdir to the jail root", "pivot_root",
    "detaching the old root", "chroot", "remounting / nosuid,nodev", "mknod /dev/kvm",
    "mknod /dev/net/tun", "sethostname", "setrlimit", "daemonizing (setsid)", "setting up stdio",
    "closing inherited fds", "dropping the capability bounding set", "clearing ambient capabilities", "setgroups", "setgid", "setuid", "clearing capabilities", "PR_SET_NO_NEW_PRIVS", "PR_SET_PDEATHSIG", "execve",
};

static_assert(std::size(kStepNames) == static_cast<size_t>(Step::kExec) + 1, "one name per step");

struct Report {
  int32_t step;
  int32_t err;
  int32_t mount = -1;  // index into ChildPlan::mounts for the bind steps
};

struct ChildMount {
  const char* source;
  const char* target;
  unsigned long flags;  // applied by the read-only/nosuid remount
};

// Everything the child uses, prepared before clone.
struct ChildPlan {
  const char* root = nullptr;
  const char* dev_dir = nullptr;
  std::vector<ChildMount> mounts;
  std::vector<int> cgroup_fds;
  int netns_fd = -1;
  int devnull_fd = -1;
  int stdio[3] = {-1, -1, -1};
  int report_fd = -1;
  bool kvm = false, tun = false;
  dev_t kvm_rdev = 0, tun_rdev = 0;
  const char* hostname = nullptr;
  size_t hostname_len = 0;
  rlimit nofile{};
  bool kill_with_parent = false;
  bool has_fsize = false;
  rlimit fsize{};
  int last_cap = 63;
  uid_t uid = 0;
  gid_t gid = 0;
  const char* exec_path = nullptr;
  std::vector<char*> argv;
};

[[noreturn]] void fail(const ChildPlan& p, Step step, int32_t mount = -1) {
  Report r{static_cast<int32_t>(step), errno, mount};
  ssize_t n = ::write(p.report_fd, &r, sizeof r);
  (void)n;
  ::_exit(127);
}

// Runs in the cloned child: system calls only.
[[noreturn]] void child_main(const ChildPlan& p) {
  // Handlers of the caller must not run here, and its signal mask must not reach the VMM.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP/internal: fine
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail(p, Step::kSignals);

  for (int fd : p.cgroup_fds)
    if (::write(fd, "0", 1) != 1) fail(p, Step::kCgroup);
  if (p.netns_fd >= 0 && ::setns(p.netns_fd, CLONE_NEWNET) != 0) fail(p, Step::kSetns);

  // Nothing mounted from here on propagates back to the host (and all of it vanishes with
  // the VMM's mount namespace, so cleanup never has to unmount anything).
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(p, Step::kMountPrivate);
  if (::mount(p.root, p.root, nullptr, MS_BIND, nullptr) != 0) fail(p, Step::kBindRoot);
  for (size_t i = 0; i < p.mounts.size(); ++i) {
    const ChildMount& m = p.mounts[i];
    if (::mount(m.source, m.target, nullptr, MS_BIND, nullptr) != 0) fail(p, Step::kBindFile, static_cast<int32_t>(i));
    if (::mount(nullptr, m.target, nullptr, MS_REMOUNT | MS_BIND | m.flags, nullptr) != 0)
      fail(p, Step::kRemountFile, static_cast<int32_t>(i));
  }
  if (::mount("tmpfs", p.dev_dir, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=16") != 0)
    fail(p, Step::kMountDev);

  if (::chdir(p.root) != 0) fail(p, Step::kChdirRoot);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) fail(p, Step::kPivotRoot);
  if (::umount2(".", MNT_DETACH) != 0) fail(p, Step::kDetachOldRoot);
  if (::chroot(".") != 0 || ::chdir("/") != 0) fail(p, Step::kChroot);
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, nullptr) != 0)
    fail(p, Step::kRemountRoot);

  if (p.kvm && (::mknod("/dev/kvm", S_IFCHR | 0600, p.kvm_rdev) != 0 || ::chown("/dev/kvm", p.uid, p.gid) != 0))
    fail(p, Step::kMknodKvm);
  if (p.tun && (::mkdir("/dev/net", 0755) != 0 || ::mknod("/dev/net/tun", S_IFCHR | 0600, p.tun_rdev) != 0 ||
                ::chown("/dev/net/tun", p.uid, p.gid) != 0))
    fail(p, Step::kMknodTun);
  if (::sethostname(p.hostname, p.hostname_len) != 0) fail(p, Step::kHostname);

  if (::setrlimit(RLIMIT_NOFILE, &p.nofile) != 0) fail(p, Step::kRlimit);
  if (p.has_fsize && ::setrlimit(RLIMIT_FSIZE, &p.fsize) != 0) fail(p, Step::kRlimit);

  if (p.devnull_fd >= 0 && ::setsid() < 0) fail(p, Step::kDaemonize);
  // Caller-given stdio first moves above 2, so e.g. out=2/err=1 cannot overwrite each other.
  int high[3];
  for (int fd = 0; fd < 3; ++fd) {
    high[fd] = p.stdio[fd] >= 0 ? p.stdio[fd] : p.devnull_fd;
    if (high[fd] >= 0 && (high[fd] = ::fcntl(high[fd], F_DUPFD_CLOEXEC, 3)) < 0) fail(p, Step::kStdio);
  }
  for (int fd = 0; fd < 3; ++fd)
    if (high[fd] >= 0 && ::dup2(high[fd], fd) < 0) fail(p, Step::kStdio);
  // Every fd above stdio closes at exec (the report pipe must stay open until then).
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) fail(p, Step::kCloseFds);

  for (int cap = 0; cap <= p.last_cap; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) fail(p, Step::kCapBound);
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) fail(p, Step::kCapAmbient);
  // Raw syscalls: glibc's set*id wrappers would try to signal threads that only exist in the caller.
  const gid_t groups[1] = {p.gid};
  if (::syscall(SYS_setgroups, 1, groups) != 0) fail(p, Step::kSetgroups);
  if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) fail(p, Step::kSetgid);
  if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) fail(p, Step::kSetuid);
  // setresuid cleared the permitted/effective sets; the inheritable set needs clearing by hand.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &hdr, data) != 0) fail(p, Step::kCapClear);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(p, Step::kNoNewPrivs);
  // After setresuid: a credential change clears the parent-death signal.
  if (p.kill_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail(p, Step::kParentDeath);

  char* envp[] = {nullptr};
  ::execve(p.exec_path, p.argv.data(), envp);
  fail(p, Step::kExec);
}

// An empty regular file to bind-mount onto (an existing plain file is reused).
Status make_mount_point(const std::string& root, const std::string& jail_path) {
  const size_t slash = jail_path.rfind('/');
  KILN_TRY(io::make_dirs_below(root, jail_path.substr(1, slash), 0755));
  const std::string target = root + jail_path;
  UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd) return ok_status();
  struct stat st {};
  if (errno == EEXIST && ::lstat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return ok_status();
  return errno_error("creating mount point " + target);
}

Result<dev_t> char_device(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return errno_error(std::string("host device ") + path);
  if (!S_ISCHR(st.st_mode)) return make_error(std::string("host device ") + path + " is not a character device");
  return st.st_rdev;
}

int last_capability() {
  auto text = read_text_file("/proc/sys/kernel/cap_last_cap");
  int v = text.ok() ? std::atoi(text->c_str()) : 0;
  return v > 0 && v < 256 ? v : 63;  // unknown: try up to 63, EINVAL past the end is ignored
}

struct Prepared {
  std::vector<JailFile> files;  // spec files + exec file + libraries
  std::vector<bool> executable;
};

Result<Prepared> files_to_bind(const JailSpec& spec) {
  Prepared p;
  for (const auto& f : spec.files) {
    p.files.push_back(f);
    p.executable.push_back(false);
  }
  p.files.push_back({spec.exec_file, "/" + exec_name(spec), true});
  p.executable.push_back(true);
  if (!spec.bind_exec_libraries) return p;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> libs, exec_libraries(spec.exec_file));
  for (const auto& lib : libs) {
    KILN_TRY(validate_path_string("shared library", lib));
    for (const auto& f : p.files)
      if (f.jail_path == lib || lib.rfind(f.jail_path + "/", 0) == 0 || f.jail_path.rfind(lib + "/", 0) == 0)
        return make_error("jail file " + f.jail_path + " collides with the exec file's library " + lib);
    p.files.push_back({lib, lib, true});
    p.executable.push_back(true);
  }
  return p;
}

// The host side of spawn once the jail directory may exist (failures roll back).
Result<JailedProcess> build_and_exec(const JailSpec& spec, const std::vector<std::string>& vmm_args, Stdio stdio,
                                     const CgroupPlan& cgroups, const Prepared& bind) {
  ChildPlan plan;
  const std::string root = chroot_dir(spec), dev = root + "/dev";
  if (spec.dev_kvm) {
    KILN_ASSIGN_OR_RETURN(plan.kvm_rdev, char_device("/dev/kvm"));
    plan.kvm = true;
  }
  if (spec.dev_net_tun) {
    KILN_ASSIGN_OR_RETURN(plan.tun_rdev, char_device("/dev/net/tun"));
    plan.tun = true;
  }
  UniqueFd netns, devnull;
  if (!spec.netns.empty()) {
    netns.reset(::open(spec.netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) return errno_error("netns: open " + spec.netns);
  }
  if (spec.daemonize) {
    devnull.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) return errno_error("open /dev/null");
  }

  // <chroot_base>/<exec-name>/<id>/root, root owned by the VMM's user so it can create its sockets.
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + root);
  if (::chown(root.c_str(), spec.uid, spec.gid) != 0) return errno_error("chown " + root);
  if (::chmod(root.c_str(), 0700) != 0) return errno_error("chmod " + root);
  KILN_TRY(io::make_dirs_below(root, "dev", 0755));
  for (const auto& f : bind.files)
    if (f.chown_to_vmm && ::chown(f.host_path.c_str(), spec.uid, spec.gid) != 0)
      return errno_error("chown " + f.host_path + " to the VMM's user");
  std::vector<std::string> targets;
  for (const auto& f : bind.files) {
    KILN_TRY(make_mount_point(root, f.jail_path));
    targets.push_back(root + f.jail_path);
  }
  for (size_t i = 0; i < bind.files.size(); ++i) {
    struct stat st {};
    const bool blockdev = ::stat(bind.files[i].host_path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    unsigned long flags = MS_NOSUID;
    if (!blockdev) flags |= MS_NODEV;
    if (!bind.executable[i]) flags |= MS_NOEXEC;
    if (bind.files[i].read_only) flags |= MS_RDONLY;
    plan.mounts.push_back({bind.files[i].host_path.c_str(), targets[i].c_str(), flags});
  }
  KILN_ASSIGN_OR_RETURN(std::vector<UniqueFd> cgroup_fds, apply_cgroups(cgroups));
  for (const auto& fd : cgroup_fds) plan.cgroup_fds.push_back(fd.get());

  plan.root = root.c_str();
  plan.dev_dir = dev.c_str();
  plan.netns_fd = netns.get();
  plan.devnull_fd = devnull.get();
  plan.stdio[0] = stdio.in;
  plan.stdio[1] = stdio.out;
  plan.stdio[2] = stdio.err;
  plan.hostname = spec.id.c_str();
  plan.hostname_len = spec.id.size();
  const rlim_t nofile = spec.rlimit_nofile.value_or(kDefaultNoFile);
  plan.nofile = {nofile, nofile};
  if (spec.rlimit_fsize) {
    plan.has_fsize = true;
    plan.fsize = {*spec.rlimit_fsize, *spec.rlimit_fsize};
  }
  plan.kill_with_parent = spec.kill_with_parent;
  plan.last_cap = last_capability();
  plan.uid = spec.uid;
  plan.gid = spec.gid;
  const std::string exec_path = "/" + exec_name(spec);
  plan.exec_path = exec_path.c_str();
  std::vector<std::string> argv_storage{exec_path};
  argv_storage.insert(argv_storage.end(), vmm_args.begin(), vmm_args.end());
  for (auto& a : argv_storage) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd report_rd(fds[0]), report_wr(fds[1]);
  plan.report_fd = report_wr.get();

  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
  if (!netns) flags |= CLONE_NEWNET;
  int pidfd = -1;
  clone_args args{};
  args.flags = flags;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  // Signals stay blocked across clone so no handler of the caller runs in the child.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  // clone3 can be filtered (ENOSYS) by container runtimes; clone(2) takes the same flags on
  // x86-64 as (flags | exit signal, stack, parent_tid = where the pidfd goes, child_tid, tls).
  if (pid < 0 && errno == ENOSYS) pid = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, &pidfd, nullptr, nullptr);
  if (pid == 0) child_main(plan);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return errno_error("clone3 into new namespaces", clone_errno);

  JailedProcess out;
  out.pid = static_cast<pid_t>(pid);
  out.pidfd.reset(pidfd);
  out.chroot_dir = root;
  report_wr.reset();
  Report r{};
  ssize_t n;
  do {
    n = ::read(report_rd.get(), &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return out;  // EOF: the execve closed the pipe
  ::waitpid(out.pid, nullptr, 0);
  if (n != static_cast<ssize_t>(sizeof r) || r.step < 0 ||
      static_cast<size_t>(r.step) >= std::size(kStepNames))
    return make_error("jail: the child failed without a readable report");
  std::string what = std::string("jail: ") + kStepNames[r.step];
  if (r.mount >= 0 && static_cast<size_t>(r.mount) < bind.files.size())
    what += " (" + bind.files[r.mount].host_path + " as " + bind.files[r.mount].jail_path + ")";
  return errno_error(what, r.err);
}

}  // namespace

Result<JailedProcess> spawn(const JailSpec& spec, const std::vector<std::string>& vmm_args, Stdio stdio) {
  KILN_TRY(validate_spec(spec));
  for (const auto& a : vmm_args)
    if (a.find('\0') != std::string::npos) return make_error("VMM argument contains NUL");
  KILN_ASSIGN_OR_RETURN(CgroupPlan cgroups, plan_cgroups(spec));
  KILN_ASSIGN_OR_RETURN(Prepared bind, files_to_bind(spec));
  // The per-VM directory is claimed atomically: of two spawns with one id, one gets an error
  // (and must not roll back the other's jail).
  KILN_TRY(io::make_dirs_below(spec.chroot_base_dir, exec_name(spec), 0755));
  const std::string dir = jail_dir(spec);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    struct stat st {};
    if (errno != EEXIST) return errno_error("mkdir " + dir);
    if (!spec.reuse_existing_dir)
      return make_error("jail: " + dir + " already exists (a stale jail with this id? clean it up first)");
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error("jail: " + dir + " is not a directory");
  }
  // From here a failure removes the per-VM directory and cgroups again.
  auto r = build_and_exec(spec, vmm_args, stdio, cgroups, bind);
  if (!r.ok()) {
    if (auto c = cleanup(spec); !c.ok())
      return Error{r.error().message + " (and removing the half-built jail failed: " + c.error().message + ")",
                   r.error().sys_errno};
  }
  return r;
}

Status cleanup(const JailSpec& spec) {
  KILN_TRY(validate_id(spec.id));
  KILN_TRY(validate_path_string("exec file", spec.exec_file));
  KILN_TRY(validate_path_string("chroot base dir", spec.chroot_base_dir));
  const std::string dir = jail_dir(spec);

  // spawn() mounts only inside the VMM's namespace, but someone may have mounted here.
  KILN_ASSIGN_OR_RETURN(std::string mounts_text, read_text_file("/proc/self/mounts"));
  std::vector<std::string> below;
  for (const auto& m : parse_mounts(mounts_text))
    if (m.target == dir || m.target.rfind(dir + "/", 0) == 0) below.push_back(m.target);
  std::sort(below.begin(), below.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& t : below)
    if (::umount2(t.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT)
      return errno_error("cleanup: unmounting " + t);
  KILN_ASSIGN_OR_RETURN(mounts_text, read_text_file("/proc/self/mounts"));
  for (const auto& m : parse_mounts(mounts_text))
    if (m.target == dir || m.target.rfind(dir + "/", 0) == 0)
      return make_error("cleanup: " + m.target + " is still mounted; not removing " + dir);

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // does not follow symlinks
  if (ec && ec != std::errc::not_a_directory) return make_error("cleanup: removing " + dir + ": " + ec.message());
  return remove_cgroups(spec);
}

}  // namespace kiln::jail

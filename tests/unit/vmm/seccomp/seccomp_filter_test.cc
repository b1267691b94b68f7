// Unit tests for kiln-vmm's seccomp filters: every thread kind builds; in a forked child with a
// filter installed, allowed syscalls work, and forbidden ones (or forbidden arguments: an ioctl
// number off the list, an AF_INET socket, PROT_EXEC, a fork) kill the child with SIGSYS.
#include "vmm/seccomp/seccomp_filter.h"

#include <sys/eventfd.h>

#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <linux/if_tun.h>

#include "common/event_loop/event_loop.h"
#include "common/io.h"
#include "vmm/seccomp/allow_list.h"

namespace kiln::vmm::seccomp {
namespace {

constexpr ThreadKind kAllKinds[] = {ThreadKind::kVmm, ThreadKind::kApi, ThreadKind::kVcpu};

// Runs `body` in a forked child after installing the filter for `kind`; returns the raw wait
// status. The child reports success with exit code 0 and a failed check with 1..99.
int run_filtered(ThreadKind kind, const std::function<int()>& body, Mode mode = Mode::kEnforce) {
  // Built in the parent so the child only installs it: fewer moving parts after fork.
  auto filter = SeccompFilter::build(kind, mode);
  if (!filter.ok()) {
    ADD_FAILURE() << filter.error().message;
    return -1;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    const rlimit no_core{0, 0};  // SIGSYS dumps core by default
    ::setrlimit(RLIMIT_CORE, &no_core);
    if (!filter->install().ok()) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) {
    ADD_FAILURE() << "fork/waitpid failed";
    return -1;
  }
  return status;
}

bool killed_by_sigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }
bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

TEST(SeccompFilter, EveryThreadKindBuildsAndExports) {
  for (ThreadKind kind : kAllKinds) {
    auto f = SeccompFilter::build(kind, Mode::kEnforce);
    ASSERT_TRUE(f.ok()) << thread_kind_name(kind) << ": " << f.error().message;
    auto pfc = f->pseudo_code();
    ASSERT_TRUE(pfc.ok()) << pfc.error().message;
    // Every filter checks ioctl numbers (the event loop: only the TAP's offloads).
    EXPECT_NE(pfc->find("ioctl"), std::string::npos) << thread_kind_name(kind) << "\n" << *pfc;
    EXPECT_TRUE(SeccompFilter::build(kind, Mode::kAuditOnly).ok());
  }
  EXPECT_FALSE(SeccompFilter::build(ThreadKind::kVcpu, Mode::kDisabled).ok());
}

TEST(SeccompFilter, TheEventLoopMayOnlySetTapOffloads) {
  std::vector<uint64_t> ioctls;
  for (const Rule& r : allow_list(ThreadKind::kVmm).rules) {
    if (r.syscall != SYS_ioctl) continue;
    ASSERT_EQ(r.checks.size(), 1u);
    ioctls.push_back(r.checks[0].value);
  }
  EXPECT_EQ(ioctls, std::vector<uint64_t>{TUNSETOFFLOAD});
}

TEST(SeccompFilter, ThreadCreatorsAllowWhatTheirThreadsNeed) {
  // The API thread creates the event loop and vCPU threads, which inherit its filter.
  AllowList api = allow_list(ThreadKind::kApi);
  for (ThreadKind child : {ThreadKind::kVmm, ThreadKind::kVcpu}) {
    for (const Rule& r : allow_list(child).rules) {
      EXPECT_TRUE(api.mentions(r.syscall)) << "syscall " << r.syscall << " of " << thread_kind_name(child);
    }
  }
  // vCPU threads never open files, make sockets or threads.
  AllowList vcpu = allow_list(ThreadKind::kVcpu);
  for (int nr : {SYS_openat, SYS_socket, SYS_clone, SYS_execve, SYS_connect}) EXPECT_FALSE(vcpu.mentions(nr)) << nr;
  // Only the thread that connects NBD drives (building the VM) waits in poll(2).
  EXPECT_TRUE(api.mentions(SYS_poll));
  EXPECT_FALSE(allow_list(ThreadKind::kVmm).mentions(SYS_poll));
  EXPECT_FALSE(vcpu.mentions(SYS_poll));
}

TEST(SeccompFilter, AllowedSyscallsWorkUnderEachFilter) {
  for (ThreadKind kind : kAllKinds) {
    int st = run_filtered(kind, [] {
      void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return 1;
      static_cast<char*>(p)[0] = 1;
      if (::munmap(p, 1 << 20) != 0) return 2;
      timespec ts{};
      if (::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) return 3;
      if (::syscall(SYS_gettid) <= 0) return 4;
      if (::write(STDERR_FILENO, "", 0) != 0) return 5;
      if (::close(-1) != -1 || errno != EBADF) return 6;
      return 0;
    });
    EXPECT_TRUE(exited_ok(st)) << thread_kind_name(kind) << ": " << describe(st);
  }
}

TEST(SeccompFilter, ForbiddenSyscallKillsWithSigsys) {
  for (ThreadKind kind : kAllKinds) {
    // Nothing in kiln-vmm runs programs.
    int st = run_filtered(kind, [] {
      ::syscall(SYS_execve, "/bin/true", nullptr, nullptr);
      return 1;
    });
    EXPECT_TRUE(killed_by_sigsys(st)) << thread_kind_name(kind) << ": " << describe(st);
  }
  // The vCPU's test hook (--debug-seccomp-violation-after-ms) opens a TCP socket.
  int st = run_filtered(ThreadKind::kVcpu, [] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 ? 1 : 2; });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
}

TEST(SeccompFilter, OpensOutsideTheApiThreadFailOrKill) {
  for (ThreadKind kind : {ThreadKind::kVmm, ThreadKind::kVcpu}) {
    // Read-only: ENOENT (glibc's own probes, e.g. free() reading overcommit_memory, cope).
    int st = run_filtered(kind, [] {
      int fd = ::open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
      return fd == -1 && errno == ENOENT ? 0 : 1;
    });
    EXPECT_TRUE(exited_ok(st)) << thread_kind_name(kind) << ": " << describe(st);
    // Read-write: killed.
    st = run_filtered(kind, [] { return ::open("/dev/null", O_RDWR | O_CLOEXEC) >= 0 ? 1 : 2; });
    EXPECT_TRUE(killed_by_sigsys(st)) << thread_kind_name(kind) << ": " << describe(st);
  }
  // The event loop may create the snapshot memory file's temp file with exactly these flags,
  // and nothing else: truncating an existing file is refused.
  std::string path = ::testing::TempDir() + "kiln-seccomp-test-file";
  ::unlink(path.c_str());
  int st = run_filtered(ThreadKind::kVmm, [&path] {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    return fd >= 0 && ::close(fd) == 0 ? 0 : 1;
  });
  EXPECT_TRUE(exited_ok(st)) << describe(st);
  st = run_filtered(ThreadKind::kVmm, [&path] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) >= 0 ? 1 : 2; });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
  ::unlink(path.c_str());
  // The API thread opens kernels, drives and snapshots.
  st = run_filtered(ThreadKind::kApi, [] { return ::open("/dev/null", O_RDWR | O_CLOEXEC) >= 0 ? 0 : 1; });
  EXPECT_TRUE(exited_ok(st)) << describe(st);
}

TEST(SeccompFilter, EventLoopWritesTheSnapshotMemoryFileThroughTheCommonHelper) {
  // What vmm/core/vmm_snapshot.cc's write_memory_file does on the event loop: every syscall of
  // io::write_file_atomic (without the directory sync) and of the fill is on the vmm list.
  char dir[] = "/tmp/kiln-seccomp-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/mem";
  for (int round = 0; round < 2; ++round) {  // the second replaces the first
    int st = run_filtered(ThreadKind::kVmm, [&path] {
      Status s = io::write_file_atomic(path, [&](int fd) -> Status {
        KILN_TRY(io::pwrite_all(fd, "page", 4, 4096, path));
        if (::ftruncate(fd, 8192) != 0) return errno_error("truncate");
        return ok_status();
      }, io::AtomicWriteOptions{.mode = 0600, .sync_dir = false});
      return s.ok() ? 0 : 1;
    });
    EXPECT_TRUE(exited_ok(st)) << describe(st);
  }
  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_size, 8192);
  EXPECT_TRUE(io::sync_parent_dir(path).ok());  // what the API thread then does
  ::unlink(path.c_str());
  EXPECT_EQ(::rmdir(dir), 0) << "a temp file was left behind";
}

TEST(SeccompFilter, IoctlNumbersAreChecked) {
  // KVM_RUN is on the vCPU list: on a bad fd it runs and fails with EBADF.
  int st = run_filtered(ThreadKind::kVcpu, [] { return ::ioctl(-1, KVM_RUN, 0) == -1 && errno == EBADF ? 0 : 1; });
  EXPECT_TRUE(exited_ok(st)) << describe(st);
  // KVM_CREATE_VM is not: the number alone kills.
  st = run_filtered(ThreadKind::kVcpu, [] { return ::ioctl(-1, KVM_CREATE_VM, 0) == -1 ? 1 : 2; });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
  // The API thread builds VMs (KVM_CREATE_VM allowed) but a terminal ioctl is not on its list.
  st = run_filtered(ThreadKind::kApi, [] { return ::ioctl(-1, KVM_CREATE_VM, 0) == -1 && errno == EBADF ? 0 : 1; });
  EXPECT_TRUE(exited_ok(st)) << describe(st);
  st = run_filtered(ThreadKind::kApi, [] { return ::ioctl(-1, TIOCSTI, 0) == -1 ? 1 : 2; });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
  // The event loop makes no ioctl at all.
  st = run_filtered(ThreadKind::kVmm, [] { return ::ioctl(-1, KVM_RUN, 0) == -1 ? 1 : 2; });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
}

TEST(SeccompFilter, SocketFamiliesAreChecked) {
  for (ThreadKind kind : {ThreadKind::kVmm, ThreadKind::kApi}) {
    int st = run_filtered(kind, [] {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      return fd >= 0 && ::close(fd) == 0 ? 0 : 1;
    });
    EXPECT_TRUE(exited_ok(st)) << thread_kind_name(kind) << ": " << describe(st);
    st = run_filtered(kind, [] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 ? 1 : 2; });
    EXPECT_TRUE(killed_by_sigsys(st)) << thread_kind_name(kind) << ": " << describe(st);
  }
}

TEST(SeccompFilter, NoExecutableMemory) {
  for (ThreadKind kind : kAllKinds) {
    int st = run_filtered(kind, [] {
      void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      return p == MAP_FAILED ? 1 : 2;
    });
    EXPECT_TRUE(killed_by_sigsys(st)) << thread_kind_name(kind) << ": " << describe(st);
    st = run_filtered(kind, [] {
      void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return 1;
      ::mprotect(p, 4096, PROT_READ | PROT_EXEC);
      return 2;
    });
    EXPECT_TRUE(killed_by_sigsys(st)) << thread_kind_name(kind) << ": " << describe(st);
  }
}

TEST(SeccompFilter, ApiThreadMayCreateThreadsButNotProcesses) {
  // clone3 answers ENOSYS (so glibc uses clone, whose flags the filter sees).
  int st = run_filtered(ThreadKind::kApi, [] { return ::syscall(SYS_clone3, nullptr, 0) == -1 && errno == ENOSYS ? 0 : 1; });
  EXPECT_TRUE(exited_ok(st)) << describe(st);
  // fork() is clone without CLONE_THREAD.
  st = run_filtered(ThreadKind::kApi, [] {
    pid_t p = static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0));
    if (p == 0) ::_exit(0);
    return 1;
  });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
}

TEST(SeccompFilter, SignalsStayInsideTheProcess) {
  int st = run_filtered(ThreadKind::kVcpu, [] {
    // tgkill to this process (a vCPU kick) works; to another process kills.
    if (::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), 0) != 0) return 1;
    ::syscall(SYS_tgkill, 1, 1, 0);
    return 2;
  });
  EXPECT_TRUE(killed_by_sigsys(st)) << describe(st);
}

TEST(SeccompFilter, AuditModeAllowsAndDisabledInstallsNothing) {
  int st = run_filtered(ThreadKind::kVcpu, [] {
    int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);  // would kill when enforced
    return fd >= 0 ? 0 : 1;
  }, Mode::kAuditOnly);
  EXPECT_TRUE(exited_ok(st)) << describe(st);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!install_thread_filter(ThreadKind::kVcpu, Settings{Mode::kDisabled}).ok()) ::_exit(1);
    ::_exit(::prctl(PR_GET_SECCOMP) == 0 ? 0 : 2);
  }
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(exited_ok(st)) << describe(st);
}

TEST(SeccompFilter, InstalledFilterShowsInProcStatus) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!install_thread_filter(ThreadKind::kApi, Settings{}).ok()) ::_exit(1);
    // PR_GET_SECCOMP is on the API list and answers 2 (SECCOMP_MODE_FILTER).
    ::_exit(::prctl(PR_GET_SECCOMP) == 2 ? 0 : 2);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(exited_ok(st)) << describe(st);
}

TEST(SeccompFilter, EventLoopRunsUnderTheEventLoopThreadFilter) {
  // As in kiln-vmm, the loop and its fds exist before the filter; under it the loop serves an
  // fd, a timer (a bounded epoll_wait, the clock) and posted work, then stops.
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok()) << loop.error().message;
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ASSERT_TRUE(efd.valid());
  int st = run_filtered(ThreadKind::kVmm, [&] {
    EventLoop& l = **loop;
    int fd_calls = 0, timer_calls = 0, posts = 0;
    if (!l.add(efd.get(), EPOLLIN, [&](std::uint32_t) {
           std::uint64_t v;
           if (::read(efd.get(), &v, sizeof v) == sizeof v) ++fd_calls;
           (void)l.remove(efd.get());
           l.add_timer_ms(1, [&] {
             ++timer_calls;
             l.post([&] {
               ++posts;
               l.stop();
             });
           });
         }).ok()) {
      return 1;
    }
    std::uint64_t one = 1;
    if (::write(efd.get(), &one, sizeof one) != sizeof one) return 2;
    if (!l.run().ok()) return 3;
    return fd_calls == 1 && timer_calls == 1 && posts == 1 ? 0 : 4;
  });
  EXPECT_TRUE(exited_ok(st)) << describe(st);
}

}  // namespace
}  // namespace kiln::vmm::seccomp

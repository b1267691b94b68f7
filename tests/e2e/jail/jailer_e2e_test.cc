// e2e (real guest kernel under KVM): kiln-jailer starts kiln-vmm jailed with --config-file;
// the guest reaches /init, and from the host the VMM's /proc/<pid>/status shows a non-zero
// uid, CapEff 0 and NoNewPrivs 1, its mount namespace holds only the jail's files, its fd
// table only what it needs; SIGTERM to kiln-jailer ends the VM and removes the jail.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/unique_fd.h"
#include "src/jail/exec_libraries.h"
#include "src/jail/host_files.h"
#include "tests/support/test_paths.h"

namespace kiln::jail {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uid_t kVmmUid = 50001;
constexpr gid_t kVmmGid = 50002;

int ms_left(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms > 0 ? static_cast<int>(ms) : 0;
}

// Appends what `fd` yields to `out` until `marker` shows up, EOF, or the deadline.
bool read_until(int fd, const std::string& marker, std::string& out, Clock::time_point deadline) {
  while (out.find(marker) == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) != 1) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
  }
  return true;
}

std::string proc_status(pid_t pid, const char* key) {
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/status");
  std::istringstream in(text.ok() ? *text : "");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(std::string(key) + ":", 0) == 0) return line;
  return std::string(key) + ": (missing)";
}

// The child of `parent` (kiln-jailer's only child is the VMM).
pid_t child_of(pid_t parent) {
  DIR* d = ::opendir("/proc");
  pid_t found = -1;
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    auto stat = read_text_file("/proc/" + std::to_string(pid) + "/stat");
    if (!stat.ok()) continue;
    std::istringstream in(stat->substr(stat->rfind(')') + 2));
    std::string state;
    pid_t ppid = -1;
    in >> state >> ppid;
    if (ppid == parent) found = pid;
  }
  if (d) ::closedir(d);
  return found;
}

// Every path below `root` (not following symlinks), relative to it.
void walk(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
  DIR* d = ::opendir((root + rel).c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    out.push_back(rel + "/" + name);
    struct stat st {};
    if (::lstat((root + rel + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) walk(root, rel + "/" + name, out);
  }
  ::closedir(d);
}

// Which cgroup flags this host takes: v2 when /sys/fs/cgroup is cgroup2 with pids+memory.
std::vector<std::string> cgroup_flags() {
  auto mounts = read_text_file("/proc/self/mounts");
  if (!mounts.ok()) return {};
  for (const auto& m : parse_mounts(*mounts)) {
    if (m.fstype != "cgroup2") continue;
    auto ctrls = read_text_file(m.target + "/cgroup.controllers");
    if (ctrls.ok() && ctrls->find("memory") != std::string::npos && ctrls->find("pids") != std::string::npos)
      return {"--cgroup-version", "2", "--cgroup", "memory.max=536870912", "--cgroup", "pids.max=64"};
  }
  if (::access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0 && ::access("/sys/fs/cgroup/pids", F_OK) == 0)
    return {"--cgroup-version", "1", "--cgroup", "memory.limit_in_bytes=536870912", "--cgroup", "pids.max=64"};
  return {};
}

TEST(JailerE2e, JailedVmmBootsUnprivilegedWithOnlyItsFiles) {
  const std::string build = kiln::testing::build_dir();
  const char* kernel_env = std::getenv("KILN_GUEST_KERNEL");
  const std::string kernel = kernel_env ? kernel_env : build + "/guest-kernel/vmlinux";
  const std::string initrd = build + "/tests/e2e/jail/jail_initrd.cpio";
  const std::string vmm = build + "/vmm/kiln-vmm", jailer = build + "/src/kiln-jailer";
  for (const auto& f : {kernel, initrd, vmm, jailer}) ASSERT_EQ(::access(f.c_str(), R_OK), 0) << f << " missing";

  char tmpl[] = "/tmp/kiln-e2e-jail-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, base = dir + "/jails", id = "e2e-jail-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(base.c_str(), 0755), 0);
  // Paths as the jailed VMM sees them.
  std::ofstream(dir + "/vm.json") << R"({"boot-source": {"kernel_image_path": "/vmlinux", "initrd_path": "/initrd.cpio",
  "boot_args": "console=ttyS0 reboot=k panic=1 quiet"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}})";

  std::vector<std::string> args{jailer, "--id", id, "--exec-file", vmm, "--uid", std::to_string(kVmmUid), "--gid",
                                std::to_string(kVmmGid), "--chroot-base-dir", base, "--resource-limit", "no-file=256",
                                "--bind", kernel + ":/vmlinux", "--bind", initrd + ":/initrd.cpio",
                                "--bind", dir + "/vm.json:/vm.json"};
  const auto cg = cgroup_flags();
  args.insert(args.end(), cg.begin(), cg.end());
  for (const char* a : {"--", "--no-api", "--config-file", "/vm.json"}) args.push_back(a);

  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  UniqueFd serial(out[0]), serial_wr(out[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, serial_wr.get(), 1);
  posix_spawn_file_actions_addopen(&fa, 2, (dir + "/jailer.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t jailer_pid = -1;
  ASSERT_EQ(::posix_spawn(&jailer_pid, jailer.c_str(), &fa, nullptr, argv.data(), envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  serial_wr.reset();
  UniqueFd jailer_fd(static_cast<int>(::syscall(SYS_pidfd_open, jailer_pid, 0)));
  ASSERT_TRUE(jailer_fd.valid());

  const auto deadline = Clock::now() + std::chrono::seconds(240);
  std::string console;
  const std::string marker = "KILN-GUEST-INIT-OK jailed";  // the whole line jail_init.sh prints
  const bool booted = read_until(serial.get(), marker, console, deadline);
  auto errors = read_text_file(dir + "/jailer.err");
  ASSERT_TRUE(booted) << "no /init marker from the jailed guest\nserial:\n" << console << "\nstderr:\n"
                      << (errors.ok() ? *errors : "");
  std::printf("jail e2e: guest reached /init inside the jail: %s\n", marker.c_str());

  const pid_t pid = child_of(jailer_pid);
  ASSERT_GT(pid, 0) << "kiln-vmm is not kiln-jailer's child";
  const std::string proc = "/proc/" + std::to_string(pid);
  std::printf("jail e2e: /proc/<kiln-vmm pid %d>/status:\n", pid);
  for (const char* k : {"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"})
    std::printf("  %s\n", proc_status(pid, k).c_str());
  const std::string u = std::to_string(kVmmUid), g = std::to_string(kVmmGid);
  EXPECT_EQ(proc_status(pid, "Uid"), "Uid:\t" + u + "\t" + u + "\t" + u + "\t" + u);
  EXPECT_EQ(proc_status(pid, "Gid"), "Gid:\t" + g + "\t" + g + "\t" + g + "\t" + g);
  for (const char* k : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_EQ(proc_status(pid, k), std::string(k) + ":\t0000000000000000");
  EXPECT_EQ(proc_status(pid, "NoNewPrivs"), "NoNewPrivs:\t1");

  // Its mount namespace: only the jail's files (its own files, kiln-vmm and its libraries, /dev nodes).
  auto libs = exec_libraries(vmm);
  ASSERT_TRUE(libs.ok()) << libs.error().message;
  std::set<std::string> allowed{"/vmlinux", "/initrd.cpio", "/vm.json", "/kiln-vmm", "/dev/kvm", "/dev/net/tun"};
  allowed.insert(libs->begin(), libs->end());
  std::vector<std::string> seen;
  walk(proc + "/root", "", seen);
  std::printf("jail e2e: the VMM's / holds %zu entries:", seen.size());
  for (const auto& p : seen) {
    std::printf(" %s", p.c_str());
    struct stat st {};
    ASSERT_EQ(::lstat((proc + "/root" + p).c_str(), &st), 0) << p;
    if (!S_ISDIR(st.st_mode)) {
      EXPECT_TRUE(allowed.count(p)) << p << " is visible in the jail but was never placed there";
    }
  }
  std::printf("\n");
  EXPECT_TRUE(std::find(seen.begin(), seen.end(), "/dev/kvm") != seen.end());
  auto mountinfo = read_text_file(proc + "/mountinfo");
  ASSERT_TRUE(mountinfo.ok());
  std::printf("jail e2e: the VMM's mount table:\n%s", mountinfo->c_str());
  EXPECT_EQ(mountinfo->find(" /proc "), std::string::npos);
  EXPECT_EQ(mountinfo->find(" /sys "), std::string::npos);

  // Its fd table: stdio, KVM handles, eventfds/epoll, the files it opened inside the jail.
  struct stat kvm {};
  ASSERT_EQ(::stat("/dev/kvm", &kvm), 0);
  std::set<std::pair<dev_t, ino_t>> jail_files;
  for (const auto& f : {kernel, initrd, dir + "/vm.json"}) {
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0) jail_files.insert({st.st_dev, st.st_ino});
  }
  std::vector<std::string> fds;
  walk(proc + "/fd", "", fds);
  std::printf("jail e2e: the VMM's %zu open fds:", fds.size());
  for (const auto& f : fds) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(proc + "/fd" + f, ec).string();
    std::printf(" %s->%s", f.substr(1).c_str(), target.c_str());
    struct stat st {};
    // 0-2 are the stdio kiln-jailer was given; everything else the VMM opened itself.
    if (std::atoi(f.c_str() + 1) <= 2 || target.rfind("anon_inode:", 0) == 0 || target.rfind("pipe:", 0) == 0 ||
        target.rfind("socket:", 0) == 0 || ::stat((proc + "/fd" + f).c_str(), &st) != 0)
      continue;
    if (S_ISREG(st.st_mode)) {
      EXPECT_TRUE(jail_files.count({st.st_dev, st.st_ino})) << "fd " << f << " -> " << target;
    } else if (S_ISCHR(st.st_mode)) {
      EXPECT_EQ(st.st_rdev, kvm.st_rdev) << "fd " << f << " -> " << target;
    } else if (S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
      ADD_FAILURE() << "fd " << f << " -> " << target;
    }
  }
  std::printf("\n");
  EXPECT_LT(fds.size(), 64u);

  auto cgroup = read_text_file(proc + "/cgroup");
  if (!cg.empty()) {
    ASSERT_TRUE(cgroup.ok());
    EXPECT_NE(cgroup->find("/kiln-vmm/" + id), std::string::npos) << *cgroup;
    std::printf("jail e2e: cgroup (%s %s): %s", cg[0].c_str(), cg[1].c_str(), cgroup->c_str());
  }

  // SIGTERM to kiln-jailer is forwarded; the VMM ends, the jailer removes the jail and exits 0.
  ASSERT_EQ(::kill(jailer_pid, SIGTERM), 0);
  pollfd p{jailer_fd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, ms_left(Clock::now() + std::chrono::seconds(60))), 1) << "kiln-jailer did not end";
  int status = 0;
  ASSERT_EQ(::waitpid(jailer_pid, &status, 0), jailer_pid);
  errors = read_text_file(dir + "/jailer.err");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << (errors.ok() ? *errors : "");
  EXPECT_FALSE(std::filesystem::exists(base + "/kiln-vmm/" + id)) << "the jail was not removed";
  std::printf("jail e2e: SIGTERM -> kiln-jailer exit %d, jail removed: %s\n", WEXITSTATUS(status),
              std::filesystem::exists(base + "/kiln-vmm/" + id) ? "no" : "yes");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::jail

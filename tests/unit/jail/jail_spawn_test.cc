// Real jails (root + namespaces; skipped with the reason elsewhere): a static probe runs
// jailed and reports a non-zero uid, no capabilities, no_new_privs, an empty environment,
// only fds 0-2, only the jail's files under "/", pid 1 in its own pid namespace; the cgroup
// limits are read back; cleanup() leaves neither the per-VM directory nor the cgroups.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"
#include "src/jail/cgroups.h"
#include "src/jail/host_files.h"
#include "src/jail/jail.h"
#include "tests/support/test_paths.h"

namespace kiln::jail {
namespace {

using Clock = std::chrono::steady_clock;

// Why real jails cannot be made here, or "" when they can.
std::string unsupported_reason() {
  if (::geteuid() != 0) return "needs root (namespaces, pivot_root, mknod, cgroups)";
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(::unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) == 0 ? 0 : 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "cannot unshare mount/pid/ipc/uts/net namespaces here";
  if (::access("/dev/kvm", F_OK) != 0) return "no /dev/kvm to mknod from (scripts/test runs this tier in the test host)";
  return "";
}

// Reads lines until "ready" (or EOF/deadline); returns "key: value" pairs.
std::map<std::string, std::string> read_report(int fd, std::string& raw) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (raw.find("\nready\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) break;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  std::map<std::string, std::string> kv;
  std::istringstream in(raw);
  for (std::string line; std::getline(in, line);) {
    size_t c = line.find(':');
    if (c == std::string::npos) continue;
    std::string key = line.substr(0, c), value = line.substr(c + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    kv[key] += kv.count(key) && key == "argv" ? "|" + value : value;
  }
  return kv;
}

std::string status_line(pid_t pid, const std::string& key) {
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return "";
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return line;
  return "";
}

class JailSpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = unsupported_reason(); !why.empty()) GTEST_SKIP() << why;
    char tmpl[] = "/tmp/kiln-jail-spawn-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    data_ = base_ + "/hello.txt";
    std::ofstream(data_) << "hello";
    spec_.id = "unit-" + std::to_string(::getpid());
    spec_.exec_file = kiln::testing::build_path("tests/unit/jail/jail_probe");
    spec_.uid = 64123;
    spec_.gid = 64124;
    spec_.chroot_base_dir = base_;
    spec_.files = {{data_, "/data/hello.txt", true}};
    spec_.rlimit_fsize = 1 << 20;
    // Nest below this process's own cgroups (v1 on hybrid hosts) so the probe stays inside
    // whatever limits the test itself runs under.
    spec_.parent_cgroup = "kiln-jail-test-" + std::to_string(::getpid());  // tests run in parallel
    spec_.nest_under_caller_cgroup = true;
  }
  void TearDown() override {
    if (!base_.empty()) {
      (void)cleanup(spec_);
      std::filesystem::remove_all(base_);
      // The parent cgroup stays after cleanup() by design; drop it here.
      JailSpec any = spec_;
      any.limits.memory_bytes = 1 << 20;
      any.limits.pids_max = 1;
      for (auto version : {CgroupVersion::kV1, CgroupVersion::kV2}) {
        any.cgroup_version = version;
        if (auto plan = plan_cgroups(any); plan.ok())
          for (const auto& d : plan->dirs) ::rmdir((d.base + "/" + spec_.parent_cgroup).c_str());
      }
    }
  }

  // Spawns the probe with pipes on stdin/stdout; fills report_ once it printed "ready".
  JailedProcess start(const std::vector<std::string>& args = {}) {
    int in[2], out[2];
    EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    UniqueFd in_rd(in[0]), out_wr(out[1]);
    stdin_.reset(in[1]);
    stdout_.reset(out[0]);
    auto p = spawn(spec_, args, Stdio{in_rd.get(), out_wr.get(), -1});
    EXPECT_TRUE(p.ok()) << p.error().message;
    if (!p.ok()) return {};
    out_wr.reset();
    report_ = read_report(stdout_.get(), raw_);
    return std::move(*p);
  }

  int finish(const JailedProcess& p) {
    stdin_.reset();  // EOF: the probe exits
    int status = 0;
    EXPECT_EQ(::waitpid(p.pid, &status, 0), p.pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string base_, data_, raw_;
  JailSpec spec_;
  UniqueFd stdin_, stdout_;
  std::map<std::string, std::string> report_;
};

TEST_F(JailSpawnTest, ProbeSeesOnlyTheJailAsUnprivilegedUser) {
  ::setenv("KILN_JAIL_TEST_SECRET", "must-not-leak", 1);
  UniqueFd leaked(::open("/dev/null", O_RDONLY));  // no O_CLOEXEC on purpose: must still not leak
  ASSERT_GT(leaked.get(), 2);
  JailedProcess p = start({"--flag", "value"});
  ASSERT_GT(p.pid, 0);
  ASSERT_NE(raw_.find("\nready\n"), std::string::npos) << raw_;
  std::printf("%s", raw_.c_str());

  // Seen from inside.
  EXPECT_EQ(report_["uid"], "64123 64123 64123");
  EXPECT_EQ(report_["gid"], "64124 64124 64124");
  EXPECT_EQ(report_["groups"], "64124");
  EXPECT_EQ(report_["cap_effective"], "0 0");
  EXPECT_EQ(report_["cap_permitted"], "0 0");
  EXPECT_EQ(report_["cap_inheritable"], "0 0");
  EXPECT_EQ(report_["cap_bounding_count"], "0");
  EXPECT_EQ(report_["no_new_privs"], "1");
  EXPECT_EQ(report_["env_count"], "0");
  EXPECT_EQ(report_["argv"], "/jail_probe|--flag|value");
  EXPECT_EQ(report_["fds"], "0 1 2");
  std::vector<std::string> tree;
  std::istringstream t(report_["tree"]);
  for (std::string e; t >> e;) tree.push_back(e);
  std::sort(tree.begin(), tree.end());
  EXPECT_EQ(tree, (std::vector<std::string>{"/data", "/data/hello.txt", "/dev", "/dev/kvm", "/jail_probe"}))
      << report_["tree"];
  EXPECT_EQ(report_["pid"], "1");
  EXPECT_EQ(report_["hostname"], spec_.id);
  EXPECT_EQ(report_["rlimit_nofile"], "2048");
  EXPECT_EQ(report_["rlimit_fsize"], "1048576");
  EXPECT_EQ(report_["root_writable"], "1");  // its own root: where its API socket goes

  // Seen from the host, as the acceptance reads them.
  const std::string uid = status_line(p.pid, "Uid"), cap = status_line(p.pid, "CapEff"),
                    nnp = status_line(p.pid, "NoNewPrivs");
  std::printf("jailed probe /proc/%d/status: %s | %s | %s\n", p.pid, uid.c_str(), cap.c_str(), nnp.c_str());
  EXPECT_EQ(uid, "Uid:\t64123\t64123\t64123\t64123");
  EXPECT_EQ(cap, "CapEff:\t0000000000000000");
  EXPECT_EQ(status_line(p.pid, "CapBnd"), "CapBnd:\t0000000000000000");
  EXPECT_EQ(status_line(p.pid, "CapAmb"), "CapAmb:\t0000000000000000");
  EXPECT_EQ(nnp, "NoNewPrivs:\t1");
  const std::string ns = "/proc/" + std::to_string(p.pid) + "/ns/";
  for (const char* kind : {"mnt", "pid", "ipc", "uts", "net"}) {
    std::error_code ec;
    EXPECT_NE(std::filesystem::read_symlink(ns + kind, ec), std::filesystem::read_symlink(std::string("/proc/self/ns/") + kind, ec))
        << kind << " namespace is shared with the caller";
  }
  // The bind mounts live only in the probe's mount namespace.
  auto host_mounts = read_text_file("/proc/self/mounts");
  ASSERT_TRUE(host_mounts.ok());
  EXPECT_EQ(host_mounts->find(base_), std::string::npos) << "a jail mount leaked into the host namespace";

  EXPECT_EQ(finish(p), 0);
  ASSERT_TRUE(cleanup(spec_).ok());
  EXPECT_FALSE(std::filesystem::exists(jail_dir(spec_)));
}

TEST_F(JailSpawnTest, CgroupLimitsAppliedAndRemoved) {
  spec_.limits.memory_bytes = 96ull << 20;
  spec_.limits.pids_max = 16;
  auto plan = plan_cgroups(spec_);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  if (plan->dirs.empty() || (plan->version == CgroupVersion::kV2 && spec_.nest_under_caller_cgroup)) {
    spec_.nest_under_caller_cgroup = false;  // v2 forbids controllers below a cgroup with processes
    plan = plan_cgroups(spec_);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
  }
  JailedProcess p = start();
  ASSERT_GT(p.pid, 0);
  const bool v2 = plan->version == CgroupVersion::kV2;
  std::map<std::string, std::string> read_back;
  for (const auto& d : plan->dirs) {
    for (const char* f : {"memory.limit_in_bytes", "memory.max", "pids.max"}) {
      auto v = read_text_file(d.path() + "/" + f);
      if (v.ok()) read_back[f] = v->substr(0, v->find('\n'));
    }
    auto procs = read_text_file(d.path() + "/cgroup.procs");
    ASSERT_TRUE(procs.ok()) << procs.error().message;
    EXPECT_EQ(*procs, std::to_string(p.pid) + "\n") << d.path();
  }
  std::printf("cgroup %s: memory %s, pids.max %s\n", v2 ? "v2" : "v1",
              read_back[v2 ? "memory.max" : "memory.limit_in_bytes"].c_str(), read_back["pids.max"].c_str());
  EXPECT_EQ(read_back[v2 ? "memory.max" : "memory.limit_in_bytes"], "100663296");
  EXPECT_EQ(read_back["pids.max"], "16");
  EXPECT_EQ(finish(p), 0);
  ASSERT_TRUE(cleanup(spec_).ok());
  for (const auto& d : plan->dirs) EXPECT_FALSE(std::filesystem::exists(d.path())) << d.path();
  EXPECT_FALSE(std::filesystem::exists(jail_dir(spec_)));
}

TEST_F(JailSpawnTest, ExecFailureIsReportedAndRolledBack) {
  // A script whose interpreter is not in the jail: the execve inside fails with ENOENT.
  ASSERT_EQ(::mkdir((base_ + "/bin").c_str(), 0755), 0);
  const std::string script = base_ + "/bin/not-elf";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  spec_.exec_file = script;
  spec_.bind_exec_libraries = false;
  spec_.limits.pids_max = 4;
  auto r = spawn(spec_, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("jail: execve"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().sys_errno, ENOENT);
  EXPECT_FALSE(std::filesystem::exists(jail_dir(spec_))) << "the failed jail was not removed";
}

TEST_F(JailSpawnTest, DaemonizedProbeGetsDevNullAndNewSession) {
  spec_.daemonize = true;
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  UniqueFd rd(out[0]), wr(out[1]);
  // stdout is given, stdin comes from /dev/null: the probe reads EOF at once and exits.
  auto p = spawn(spec_, {}, Stdio{-1, wr.get(), -1});
  ASSERT_TRUE(p.ok()) << p.error().message;
  wr.reset();
  std::string raw;
  auto kv = read_report(rd.get(), raw);
  EXPECT_EQ(kv["fds"], "0 1 2");
  int status = 0;
  ASSERT_EQ(::waitpid(p->pid, &status, 0), p->pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(cleanup(spec_).ok());
}

TEST_F(JailSpawnTest, StaleJailRefusedUnlessReuseIsAsked) {
  ASSERT_TRUE(std::filesystem::create_directories(chroot_dir(spec_)));
  std::ofstream(chroot_dir(spec_) + "/left-over") << "old VM's file";
  auto r = spawn(spec_, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("already exists"), std::string::npos) << r.error().message;
  EXPECT_TRUE(std::filesystem::exists(chroot_dir(spec_) + "/left-over")) << "a refused spawn touched the stale jail";
  // Firecracker's way (kiln-jailer): files placed beforehand are part of the jail.
  spec_.reuse_existing_dir = true;
  JailedProcess p = start();
  ASSERT_GT(p.pid, 0);
  EXPECT_NE(report_["tree"].find("/left-over"), std::string::npos) << report_["tree"];
  EXPECT_EQ(finish(p), 0);
  EXPECT_TRUE(cleanup(spec_).ok());
  EXPECT_FALSE(std::filesystem::exists(jail_dir(spec_)));
}

TEST_F(JailSpawnTest, JoinsTheGivenNetworkNamespace) {
  // A helper process makes a fresh network namespace, says so, and holds it until told to end;
  // the probe must join exactly that one.
  int hold[2], ready[2];
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  UniqueFd hold_rd(hold[0]), hold_wr(hold[1]), ready_rd(ready[0]), ready_wr(ready[1]);
  pid_t holder = ::fork();
  if (holder == 0) {
    char c = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    if (::write(ready_wr.get(), &c, 1) != 1) ::_exit(1);
    hold_wr.reset();
    ::_exit(::read(hold_rd.get(), &c, 1) >= 0 ? 0 : 1);
  }
  ASSERT_GT(holder, 0);
  hold_rd.reset();
  ready_wr.reset();
  pollfd p_ready{ready_rd.get(), POLLIN, 0};
  char ok = 0;
  ASSERT_EQ(::poll(&p_ready, 1, 30'000), 1);
  ASSERT_EQ(::read(ready_rd.get(), &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  const std::string holder_ns = "/proc/" + std::to_string(holder) + "/ns/net";
  std::error_code ec;
  ASSERT_NE(std::filesystem::read_symlink(holder_ns, ec), std::filesystem::read_symlink("/proc/self/ns/net", ec));
  spec_.netns = holder_ns;
  JailedProcess p = start();
  ASSERT_GT(p.pid, 0);
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(p.pid) + "/ns/net", ec),
            std::filesystem::read_symlink(holder_ns, ec));
  EXPECT_EQ(finish(p), 0);
  hold_wr.reset();
  ::waitpid(holder, nullptr, 0);
}

TEST_F(JailSpawnTest, ReadOnlyFilesStayReadOnlyAndWritableOnesNeedTheVmmsUser) {
  // Host modes would allow writing ro.img; the read-only bind mount must still refuse it.
  for (const char* f : {"/ro.img", "/rw.img", "/rw-root.img"}) std::ofstream(base_ + f) << "disk";
  ASSERT_EQ(::chmod((base_ + "/ro.img").c_str(), 0666), 0);
  ASSERT_EQ(::chmod((base_ + "/rw.img").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((base_ + "/rw-root.img").c_str(), 0600), 0);
  spec_.files.push_back({base_ + "/ro.img", "/ro.img", true});
  spec_.files.push_back({base_ + "/rw.img", "/rw.img", false, true});
  spec_.files.push_back({base_ + "/rw-root.img", "/rw-root.img", false});
  JailedProcess p = start({"--write=/ro.img", "--write=/rw.img", "--write=/rw-root.img"});
  ASSERT_GT(p.pid, 0);
  EXPECT_EQ(report_["write /ro.img"], "Read-only file system");
  EXPECT_EQ(report_["write /rw.img"], "ok");
  EXPECT_EQ(report_["write /rw-root.img"], "Permission denied");
  EXPECT_EQ(finish(p), 0);
  struct stat st {};
  ASSERT_EQ(::stat((base_ + "/rw.img").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, spec_.uid);
  ASSERT_TRUE(cleanup(spec_).ok());
  EXPECT_TRUE(std::filesystem::exists(base_ + "/rw.img")) << "cleanup removed a bind-mounted host file";
}

TEST_F(JailSpawnTest, KillWithParentEndsTheVmmWhenTheSpawningThreadExits) {
  spec_.kill_with_parent = true;
  JailedProcess p;
  std::thread spawner([&] { p = start(); });
  spawner.join();  // the spawning thread is gone: its PR_SET_PDEATHSIG fires
  ASSERT_GT(p.pid, 0);
  pollfd exited{p.pidfd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&exited, 1, 30'000), 1) << "the VMM outlived the thread that spawned it";
  int status = 0;
  ASSERT_EQ(::waitpid(p.pid, &status, 0), p.pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST_F(JailSpawnTest, CleanupIsIdempotent) {
  EXPECT_TRUE(cleanup(spec_).ok());
  EXPECT_TRUE(cleanup(spec_).ok());
}

}  // namespace
}  // namespace kiln::jail

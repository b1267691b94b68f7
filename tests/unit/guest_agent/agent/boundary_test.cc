// The platform boundary (agent/boundary.h) through the supervisor: the command's /proc shows
// only its own namespace, `kill -9 1` from it changes nothing, the block devices and the
// console are gone from its /dev and cannot be recreated, stop and exit reporting unchanged.
#include "guest-agent/agent/boundary.h"

#include <gtest/gtest.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "guest-agent/agent/supervisor.h"

namespace kiln::agent {
namespace {

using namespace std::chrono_literals;

// Why new PID + mount namespaces cannot be made here ("" when they can).
std::string namespaces_unavailable() {
  if (geteuid() != 0) return "needs root (CAP_SYS_ADMIN for CLONE_NEWPID | CLONE_NEWNS)";
  pid_t pid = fork();
  if (pid == 0) _exit(unshare(CLONE_NEWPID | CLONE_NEWNS) == 0 ? 0 : errno);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return std::string("unshare(CLONE_NEWPID | CLONE_NEWNS) fails here: ") + strerror(WEXITSTATUS(status));
}

// The plan the agent would build for `sh -c script` (PATH search included), inside the boundary.
ExecPlan shell(const std::string& script) {
  protocol::LaunchSpec spec;
  spec.argv = {"sh", "-c", script};
  spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  auto plan = build_exec_plan(spec, Credentials{}, is_executable_file);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  plan->isolation = Isolation::kOn;
  return *plan;
}

class BoundaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = namespaces_unavailable(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(loop_.init().ok());
    sup_ = std::make_unique<Supervisor>(
        loop_, Supervisor::Callbacks{[this](protocol::LogStream, std::uint64_t, std::string_view d, bool) {
                                       lines_.emplace_back(d);
                                     },
                                     [this](const ExitInfo& e) { exit_ = e; }});
  }
  void TearDown() override {
    if (sup_ && sup_->running()) sup_->signal_group(SIGKILL);
    if (sup_) wait_until([&] { return sup_->reported(); });
  }
  // Drives the supervisor without the loop (drain + reap) until want() or 10 s.
  template <typename F>
  bool wait_until(F want) {
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;
         std::this_thread::sleep_for(5ms)) {
      sup_->drain();
      sup_->reap();
      if (want()) return true;
    }
    return false;
  }
  bool has_line(const std::string& l) const {
    for (const auto& x : lines_) {
      if (x == l) return true;
    }
    return false;
  }
  ExitInfo run(const ExecPlan& plan) {
    auto pid = sup_->start(plan);
    EXPECT_TRUE(pid.ok()) << pid.error().message;
    EXPECT_TRUE(wait_until([&] { return sup_->reported(); }));
    return exit_;
  }
  EventLoop loop_;
  std::unique_ptr<Supervisor> sup_;
  std::vector<std::string> lines_;
  ExitInfo exit_;
};

TEST_F(BoundaryTest, ProcShowsOnlyTheFunctionsProcesses) {
  // pid 1 = the namespace init, pid 2 = this shell (the for loop forks nothing).
  auto e = run(shell("for p in /proc/[0-9]*; do echo \"pid ${p#/proc/}\"; done; "
                     "echo \"self $$\"; echo \"init $(cat /proc/1/comm) $(tr -d '\\0' </proc/1/cmdline)\"; exit 0"));
  EXPECT_FALSE(e.signaled);
  EXPECT_EQ(e.code, 0);
  std::vector<std::string> pids;
  for (const auto& l : lines_) {
    if (l.rfind("pid ", 0) == 0) pids.push_back(l.substr(4));
  }
  EXPECT_EQ(pids, (std::vector<std::string>{"1", "2"})) << "the test process is pid " << getpid();
  EXPECT_TRUE(has_line("self 2"));
  EXPECT_TRUE(has_line("init fn-init fn-init")) << testing::PrintToString(lines_);
}

TEST_F(BoundaryTest, KillNineOneFromTheFunctionChangesNothing) {
  auto e = run(shell("kill -9 1; kill -TERM 1; kill -INT 1; kill -0 1 && echo init-alive; exit 7"));
  EXPECT_TRUE(has_line("init-alive"));
  EXPECT_FALSE(e.signaled);  // had the init died, the command would have been killed with it
  EXPECT_EQ(e.code, 7);
}

TEST_F(BoundaryTest, BlockDevicesAndConsoleAreGoneAndCannotBeMade) {
  // Any block device of this machine stands for the image (/dev/vda) and config drive (/dev/vdb).
  std::string blockdev;
  unsigned major_no = 0, minor_no = 0;
  if (DIR* d = opendir("/dev")) {
    while (dirent* de = readdir(d)) {
      struct stat st {};
      std::string p = std::string("/dev/") + de->d_name;
      if (lstat(p.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
        blockdev = p;
        major_no = major(st.st_rdev);
        minor_no = minor(st.st_rdev);
        break;
      }
    }
    closedir(d);
  }
  ASSERT_FALSE(blockdev.empty()) << "no block device in /dev to hide";
  char dir_template[] = "/tmp/kiln-boundary-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  auto e = run(shell("id -u; head -c1 " + blockdev + " >/dev/null 2>&1 && echo opened-block; "
                     "[ -e /dev/console ] && echo console; [ -e /dev/kmsg ] && echo kmsg; "
                     "mknod " + dir + "/b b " + std::to_string(major_no) + " " + std::to_string(minor_no) +
                     " 2>/dev/null && echo mknod-ok; umount -l /dev 2>/dev/null && echo umount-ok; "
                     "mount -t devtmpfs none " + dir + " 2>/dev/null && echo mount-ok; "
                     "echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-ok; "
                     "echo hi > /dev/null && head -c4 /dev/zero | wc -c; ls /dev | tr '\\n' ' '; echo"));
  rmdir((dir + "/b").c_str());
  unlink((dir + "/b").c_str());
  rmdir(dir.c_str());
  EXPECT_EQ(e.code, 0);
  ASSERT_FALSE(lines_.empty());
  EXPECT_EQ(lines_[0], "0");  // root inside
  for (const char* bad : {"opened-block", "console", "kmsg", "mknod-ok", "umount-ok", "mount-ok", "sysrq-ok"}) {
    EXPECT_FALSE(has_line(bad)) << bad;
  }
  EXPECT_TRUE(has_line("4"));  // /dev/zero and /dev/null still work
  EXPECT_TRUE(has_line("fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "));
}

TEST_F(BoundaryTest, SigtermReachesTheCommandThroughTheInit) {
  // No handler: the command is not a PID 1, so SIGTERM's default action ends it.
  ASSERT_TRUE(sup_->start(shell("echo up; exec sleep 30")).ok());
  ASSERT_TRUE(wait_until([&] { return has_line("up"); }));
  sup_->signal_group(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return sup_->reported(); }));
  EXPECT_TRUE(exit_.signaled);
  EXPECT_EQ(exit_.code, SIGTERM);
}

TEST_F(BoundaryTest, SigtermHandlerRunsAndItsExitCodeIsReported) {
  ASSERT_TRUE(sup_->start(shell("trap 'echo term; exit 3' TERM; echo up; while :; do sleep 0.02; done")).ok());
  ASSERT_TRUE(wait_until([&] { return has_line("up"); }));
  sup_->signal_group(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return sup_->reported(); }));
  EXPECT_TRUE(has_line("term"));
  EXPECT_FALSE(exit_.signaled);
  EXPECT_EQ(exit_.code, 3);
}

TEST_F(BoundaryTest, SigkillAfterTheGraceEndsACommandIgnoringSigterm) {
  ASSERT_TRUE(sup_->start(shell("trap '' TERM; echo up; while :; do sleep 0.02; done")).ok());
  ASSERT_TRUE(wait_until([&] { return has_line("up"); }));
  sup_->signal_group(SIGTERM);
  // The grace period: still running a while after SIGTERM (an absence, so a fixed wait).
  std::this_thread::sleep_for(200ms);
  sup_->drain();
  sup_->reap();
  EXPECT_TRUE(sup_->running());
  sup_->signal_group(SIGKILL);
  ASSERT_TRUE(wait_until([&] { return sup_->reported(); }));
  EXPECT_TRUE(exit_.signaled);
  EXPECT_EQ(exit_.code, SIGKILL);
}

TEST_F(BoundaryTest, ExitCodesAndCredentialsAsWithoutTheBoundary) {
  auto plan = shell("id -u; id -g; id -G; exit 42");
  plan.creds.uid = 65534;
  plan.creds.gid = 65533;
  plan.creds.groups = {65533, 100};
  auto e = run(plan);
  EXPECT_FALSE(e.signaled);
  EXPECT_EQ(e.code, 42);
  EXPECT_EQ(lines_, (std::vector<std::string>{"65534", "65533", "65533 100"}));
}

TEST_F(BoundaryTest, MissingProgramIs127) {
  ExecPlan plan = shell("");
  plan.program = "/nonexistent/cmd";
  plan.argv = {"cmd"};
  auto e = run(plan);
  EXPECT_FALSE(e.signaled);
  EXPECT_EQ(e.code, 127);
  ASSERT_FALSE(lines_.empty());
  EXPECT_NE(lines_.back().find("/nonexistent/cmd"), std::string::npos);
}

}  // namespace
}  // namespace kiln::agent

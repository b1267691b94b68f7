// common/spawn.h: a child gets the fds, process group and signal mask the plan gives it, and a
// program that cannot start is an error naming it with its errno.
#include "common/spawn.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/unique_fd.h"
#include "tests/support/temp_dir.h"

namespace kiln {
namespace {

// Runs `program` with stdin from /dev/null and stdout+stderr into a pipe, then whatever
// `configure` adds to the plan; returns what it wrote and its exit code (-1: it did not exit).
struct Ran {
  std::string output;
  int code = -1;
  pid_t pid = -1;
};
using Configure = std::function<void(SpawnPlan&)>;
Ran run_argv(const std::string& program, const std::vector<std::string>& argv, const Configure& configure = {},
             char* const* envp = nullptr) {
  Ran r;
  SpawnPlan plan;
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  plan.open(0, "/dev/null", O_RDONLY).dup2(wr.get(), 1).dup2(wr.get(), 2);
  if (configure) configure(plan);
  auto pid = plan.spawn(program, argv, envp);
  wr.reset();
  EXPECT_TRUE(pid.ok()) << pid.error().message;
  if (!pid.ok()) return r;
  r.pid = *pid;
  auto out = io::read_fd(rd.get(), 1 << 20, "child output");
  EXPECT_TRUE(out.ok()) << out.error().message;
  if (out.ok()) r.output = *out;
  int status = 0;
  EXPECT_EQ(::waitpid(*pid, &status, 0), *pid);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}
Ran run(const std::string& script, const Configure& configure = {}) {
  return run_argv("/bin/sh", {"sh", "-c", script}, configure);
}

TEST(Spawn, RedirectsStdioAndPassesArgvAndEnvironment) {
  ::setenv("KILN_SPAWN_TEST", "inherited", 1);
  Ran r = run("read x || echo no-stdin; echo out $0 $KILN_SPAWN_TEST; echo err >&2; exit 3");
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.output, "no-stdin\nout sh inherited\nerr\n");

  char* empty_env[] = {nullptr};
  r = run_argv("/bin/sh", {"sh", "-c", "echo \"[$KILN_SPAWN_TEST]\""}, {}, empty_env);
  EXPECT_EQ(r.output, "[]\n");
  // A file as stdout, opened by the child (the plan's `open`).
  char tmpl[] = "/tmp/kiln-spawn-XXXXXX";
  UniqueFd file_fd(::mkstemp(tmpl));
  ASSERT_TRUE(file_fd.valid());
  SpawnPlan to_file;
  auto pid = to_file.open(1, tmpl, O_WRONLY | O_APPEND).spawn("/bin/sh", {"sh", "-c", "echo appended"});
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  EXPECT_EQ(io::read_file(tmpl, 100).ok() ? *io::read_file(tmpl, 100) : "", "appended\n");
  ::unlink(tmpl);
}

TEST(Spawn, ProcessGroupSignalMaskAndClosedFds) {
  // An fd the child must not inherit (not close-on-exec, at a number nothing else uses), and a
  // blocked signal.
  UniqueFd null_fd(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(null_fd.valid());
  UniqueFd leak(::fcntl(null_fd.get(), F_DUPFD, 77));
  ASSERT_EQ(leak.get(), 77);
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);

  // sh is the spawned process itself ($$): its process group and fds.
  Ran sh = run("cut -d' ' -f5 /proc/$$/stat; ls /proc/$$/fd",
               [](SpawnPlan& plan) { plan.close_from(3).new_process_group().clear_signal_mask(); });
  // grep, not sh: a shell clears its signal mask itself.
  Ran sigblk = run_argv("/bin/grep", {"grep", "SigBlk", "/proc/self/status"},
                        [](SpawnPlan& plan) { plan.clear_signal_mask(); });
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(sh.code, 0);
  EXPECT_EQ(sigblk.code, 0);
  EXPECT_EQ(sigblk.output, "SigBlk:\t0000000000000000\n");
  std::istringstream lines(sh.output);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, std::to_string(sh.pid));  // it leads its own group
  std::string fds;
  for (std::string fd; lines >> fd;) fds += fd + " ";
  EXPECT_EQ(fds.find("77 "), std::string::npos) << fds;
}

TEST(Spawn, WithoutAttributesTheChildInheritsGroupAndMask) {
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
  Ran r = run_argv("/bin/grep", {"grep", "SigBlk", "/proc/self/status"});
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output, "SigBlk:\t0000000000000200\n");  // SIGUSR1 (10) still blocked
  r = run("cut -d' ' -f5 /proc/$$/stat");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output, std::to_string(::getpgrp()) + "\n");
}

TEST(Spawn, AProgramThatCannotStartIsAnErrorWithErrno) {
  SpawnPlan plan;
  auto missing = plan.spawn("/nonexistent/program", {"program"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  EXPECT_EQ(missing.error().message.rfind("spawn /nonexistent/program: ", 0), 0u) << missing.error().message;

  SpawnPlan bad_fd;
  auto dup = bad_fd.dup2(-1, 1).spawn("/bin/true", {"true"});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().sys_errno, EBADF);
}

TEST(FindInPath, FirstExecutableInPathOrder) {
  kiln::testing::TempDir dir("kiln-path");
  ASSERT_FALSE(dir.path().empty());
  dir.write("a/tool", "");  // not executable: skipped
  const std::string exe = dir.write("b/tool", "#!/bin/sh\n");
  ASSERT_EQ(::chmod(exe.c_str(), 0755), 0);
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", (dir / "a" + ":" + dir / "b").c_str(), 1);
  EXPECT_EQ(kiln::find_in_path("tool"), exe);
  EXPECT_EQ(kiln::find_in_path("missing"), "");
  ::setenv("PATH", saved.c_str(), 1);
}

}  // namespace
}  // namespace kiln

// The kiln-jailer binary: usage errors exit 2; a jailed probe gets "--id=<id>" and its jail is
// removed when it ends; --daemonize leaves it running with a pid file, --cleanup removes it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "common/unique_fd.h"
#include "src/jail/host_files.h"
#include "tests/support/test_paths.h"

namespace kiln::jail {
namespace {

const std::string kBuild = kiln::testing::build_dir();

// Runs kiln-jailer with stdin from /dev/null and stdout+stderr into `out_file`; returns its exit code.
int run_jailer(std::vector<std::string> args, const std::string& out_file) {
  args.insert(args.begin(), kBuild + "/src/kiln-jailer");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char* envp[] = {nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class JailerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-jailer-bin-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    out_ = dir_ + "/out";
    ASSERT_EQ(::mkdir((dir_ + "/base").c_str(), 0755), 0);
    id_ = "bin-" + std::to_string(::getpid());
    probe_ = kBuild + "/tests/unit/jail/jail_probe";
    jail_ = dir_ + "/base/jail_probe/" + id_;
  }
  void TearDown() override {
    (void)run_jailer({"--cleanup", "--id", id_, "--exec-file", probe_, "--chroot-base-dir", dir_ + "/base"}, out_);
    std::filesystem::remove_all(dir_);
  }
  std::string output() {
    auto t = read_text_file(out_);
    return t.ok() ? *t : "";
  }
  std::vector<std::string> jail_args() {
    return {"--id", id_, "--exec-file", probe_, "--uid", "64300", "--gid", "64300", "--chroot-base-dir", dir_ + "/base"};
  }
  std::string dir_, out_, id_, probe_, jail_;
};

TEST_F(JailerBinaryTest, UsageErrorsExit2) {
  EXPECT_EQ(run_jailer({"--frobnicate"}, out_), 2);
  EXPECT_NE(output().find("unknown flag --frobnicate"), std::string::npos) << output();
  EXPECT_NE(output().find("usage: kiln-jailer"), std::string::npos);
  EXPECT_EQ(run_jailer({"--id", "../x", "--exec-file", probe_, "--uid", "1", "--gid", "1"}, out_), 2);
  EXPECT_EQ(run_jailer({"--id", "a", "--exec-file", probe_, "--uid", "x", "--gid", "1"}, out_), 2);
  EXPECT_EQ(run_jailer({"--help"}, out_), 0);
}

TEST_F(JailerBinaryTest, RuntimeErrorsExit1WithTheReason) {
  auto args = jail_args();
  args[3] = dir_ + "/missing-vmm";
  EXPECT_EQ(run_jailer(args, out_), 1);
  EXPECT_NE(output().find("missing-vmm"), std::string::npos) << output();
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/base"));
}

TEST_F(JailerBinaryTest, RunsTheProbeJailedAndRemovesTheJail) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto args = jail_args();
  for (const char* a : {"--resource-limit", "no-file=64", "--", "extra"}) args.push_back(a);
  ASSERT_EQ(run_jailer(args, out_), 0) << output();
  const std::string out = output();
  EXPECT_NE(out.find("argv: --id=" + id_ + "\nargv: extra\n"), std::string::npos) << out;
  EXPECT_NE(out.find("uid: 64300 64300 64300"), std::string::npos) << out;
  EXPECT_NE(out.find("rlimit_nofile: 64\n"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(jail_)) << "kiln-jailer left the jail behind";
}

TEST_F(JailerBinaryTest, DaemonizeWritesPidFileAndCleanupRemovesTheJail) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto args = jail_args();
  args.push_back("--daemonize");
  ASSERT_EQ(run_jailer(args, out_), 0) << output();
  auto pid_text = read_text_file(jail_ + "/root/jail_probe.pid");
  ASSERT_TRUE(pid_text.ok()) << pid_text.error().message;
  const pid_t pid = std::atoi(pid_text->c_str());
  ASSERT_GT(pid, 0);
  // Its stdin is /dev/null, so the probe ends on its own; wait for that through a pidfd.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 30'000), 1);
  }
  EXPECT_TRUE(output().empty()) << "a daemonized VMM's output must not reach the jailer's stdout: " << output();
  EXPECT_TRUE(std::filesystem::exists(jail_));
  EXPECT_EQ(run_jailer({"--cleanup", "--id", id_, "--exec-file", probe_, "--chroot-base-dir", dir_ + "/base"}, out_), 0)
      << output();
  EXPECT_FALSE(std::filesystem::exists(jail_));
}

}  // namespace
}  // namespace kiln::jail

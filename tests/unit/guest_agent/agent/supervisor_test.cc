// Supervisor::drain() hands what the command wrote to the line callback at once, without the
// event loop running (what the agent relies on before it passes a request head on).
#include "guest-agent/agent/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace kiln::agent {
namespace {

using namespace std::chrono_literals;

// Polls `want()` for up to 5 s.
template <typename F>
bool eventually(F want) {
  for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(5ms)) {
    if (want()) return true;
  }
  return false;
}

ExecPlan shell(const std::string& script) {
  ExecPlan p;
  p.program = "/bin/sh";
  p.argv = {"sh", "-c", script};
  p.env = {"PATH=/usr/bin:/bin"};
  p.working_dir = "/";
  return p;
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (the supervisor sets the command's credentials)";
    ASSERT_TRUE(loop_.init().ok());
  }
  EventLoop loop_;
};

TEST_F(SupervisorTest, DrainDeliversWrittenLinesAtOnce) {
  std::vector<std::string> lines;
  Supervisor sup(loop_, Supervisor::Callbacks{[&](protocol::LogStream, std::uint64_t, std::string_view d, bool) {
                                                 lines.emplace_back(d);
                                               },
                                               nullptr});
  auto pid = sup.start(shell("echo one; echo two >&2; exec sleep 30"));
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  EXPECT_TRUE(eventually([&] {
    sup.drain();  // the loop never runs in this test: only drain() reads the pipes
    return lines.size() == 2;
  }));
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two"}));
  ::kill(*pid, SIGKILL);
  EXPECT_TRUE(eventually([&] {
    sup.reap();
    return !sup.running();
  }));
}

}  // namespace
}  // namespace kiln::agent

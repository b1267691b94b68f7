// build_exec_plan: argv passthrough, env defaults and overrides, PATH search.
#include "guest-agent/agent/exec_plan.h"

#include <gtest/gtest.h>

#include <set>

namespace kiln::agent {
namespace {

protocol::LaunchSpec spec(std::vector<std::string> argv, std::vector<std::string> env = {}) {
  protocol::LaunchSpec s;
  s.argv = std::move(argv);
  s.env = std::move(env);
  s.hostname = "fn";
  return s;
}

auto files(std::set<std::string> present) {
  return [present](const std::string& p) { return present.count(p) > 0; };
}

TEST(ExecPlan, DefaultsAdded) {
  Credentials c;
  c.home = "/home/app";
  auto p = build_exec_plan(spec({"/bin/x", "a b", ""}), c, files({}));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->program, "/bin/x");
  EXPECT_EQ(p->argv, (std::vector<std::string>{"/bin/x", "a b", ""}));
  EXPECT_EQ(p->env, (std::vector<std::string>{std::string("PATH=") + kDefaultPath,
                                              "HOME=/home/app", "HOSTNAME=fn"}));
  EXPECT_EQ(p->working_dir, "/");
}

TEST(ExecPlan, LastDuplicateWinsAndOrderKept) {
  auto p = build_exec_plan(spec({"/x"}, {"A=1", "PATH=/opt", "B=2", "A=3", "HOME=/h"}), {}, files({}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->env, (std::vector<std::string>{"A=3", "PATH=/opt", "B=2", "HOME=/h", "HOSTNAME=fn"}));
}

TEST(ExecPlan, PathSearchUsesSpecPath) {
  auto p = build_exec_plan(spec({"tool", "-v"}, {"PATH=/opt/bin:/usr/bin"}), {},
                           files({"/usr/bin/tool", "/bin/tool"}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->program, "/usr/bin/tool");
  EXPECT_EQ(p->argv[0], "tool");  // argv[0] stays as given
  auto first = build_exec_plan(spec({"tool"}, {"PATH=/opt/bin:/usr/bin"}), {},
                               files({"/opt/bin/tool", "/usr/bin/tool"}));
  EXPECT_EQ(first->program, "/opt/bin/tool");
}

TEST(ExecPlan, DefaultPathAndEmptyEntries) {
  auto p = build_exec_plan(spec({"sh"}), {}, files({"/bin/sh"}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->program, "/bin/sh");
  auto q = build_exec_plan(spec({"run"}, {"PATH=:/x"}), {}, files({"./run"}));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->program, "./run");
}

TEST(ExecPlan, RelativeWithSlashIsNotSearched) {
  auto p = build_exec_plan(spec({"./bin/app"}), {}, files({}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->program, "./bin/app");
}

TEST(ExecPlan, Errors) {
  EXPECT_FALSE(build_exec_plan(spec({"missing"}), {}, files({})).ok());
  EXPECT_FALSE(build_exec_plan(spec({}), {}, files({})).ok());
  EXPECT_FALSE(build_exec_plan(spec({"/x"}, {"NOVALUE"}), {}, files({})).ok());
}

}  // namespace
}  // namespace kiln::agent

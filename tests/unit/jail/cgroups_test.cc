// Cgroup planning against fixture mount tables: v2 where cgroup2 offers the controllers, v1
// per controller otherwise (hybrid hosts), limits translated per version, clear errors.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "src/jail/cgroups.h"
#include "src/jail/host_files.h"

namespace kiln::jail {
namespace {

class CgroupPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-jail-cg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/unified");
    host_.mounts = dir_ + "/mounts";
    host_.self_cgroup = dir_ + "/self";
    std::ofstream(host_.self_cgroup) << "4:memory:/sessions/s1\n8:pids:/\n1:cpu,cpuacct:/\n0::/user.slice\n";
    spec_.id = "vm-7";
    spec_.exec_file = "/usr/bin/kiln-vmm";
    spec_.limits.memory_bytes = 128 << 20;
    spec_.limits.pids_max = 32;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void hybrid(const std::string& unified_controllers) {
    std::ofstream(host_.mounts) << "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
                                   "cgroup /c/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n"
                                   "cgroup /c/memory cgroup rw,relatime,memory 0 0\n"
                                   "cgroup /c/pids cgroup rw,relatime,pids 0 0\n"
                                   "cgroup2 " + dir_ + "/unified cgroup2 rw,relatime 0 0\n";
    std::ofstream(dir_ + "/unified/cgroup.controllers") << unified_controllers << "\n";
  }

  std::string dir_;
  CgroupHost host_;
  JailSpec spec_;
};

TEST_F(CgroupPlanTest, NoLimitsNoCgroups) {
  JailSpec s = spec_;
  s.limits = {};
  auto p = plan_cgroups(s, host_);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->dirs.empty());
}

TEST_F(CgroupPlanTest, HybridHostUsesV1PerController) {
  hybrid("hugetlb");
  spec_.limits.cpu_millicores = 500;
  auto p = plan_cgroups(spec_, host_);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->version, CgroupVersion::kV1);
  ASSERT_EQ(p->dirs.size(), 3u);
  EXPECT_EQ(p->dirs[0].path(), "/c/memory/kiln-vmm/vm-7");
  ASSERT_EQ(p->dirs[0].settings.size(), 1u);
  EXPECT_EQ(p->dirs[0].settings[0].file, "memory.limit_in_bytes");
  EXPECT_EQ(p->dirs[0].settings[0].value, "134217728");
  EXPECT_EQ(p->dirs[1].path(), "/c/cpu,cpuacct/kiln-vmm/vm-7");
  ASSERT_EQ(p->dirs[1].settings.size(), 2u);
  EXPECT_EQ(p->dirs[1].settings[0].file, "cpu.cfs_period_us");
  EXPECT_EQ(p->dirs[1].settings[1].file, "cpu.cfs_quota_us");
  EXPECT_EQ(p->dirs[1].settings[1].value, "50000");
  EXPECT_EQ(p->dirs[2].path(), "/c/pids/kiln-vmm/vm-7");
  EXPECT_EQ(p->dirs[2].settings[0].file, "pids.max");
}

TEST_F(CgroupPlanTest, V2WhenItOffersTheControllers) {
  hybrid("cpuset cpu io memory pids");
  spec_.limits.cpu_millicores = 1500;
  spec_.parent_cgroup = "kiln/vms";
  auto p = plan_cgroups(spec_, host_);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->version, CgroupVersion::kV2);
  ASSERT_EQ(p->dirs.size(), 1u);
  EXPECT_EQ(p->dirs[0].path(), dir_ + "/unified/kiln/vms/vm-7");
  std::vector<std::string> files;
  for (const auto& s : p->dirs[0].settings) files.push_back(s.file + "=" + s.value);
  EXPECT_EQ(files, (std::vector<std::string>{"memory.max=134217728", "cpu.max=150000 100000", "pids.max=32"}));
}

TEST_F(CgroupPlanTest, ExplicitVersionErrors) {
  hybrid("hugetlb");
  spec_.cgroup_version = CgroupVersion::kV2;
  auto p = plan_cgroups(spec_, host_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("memory"), std::string::npos) << p.error().message;
  spec_.cgroup_version = CgroupVersion::kV1;
  spec_.cgroup_settings = {{"rdma.max", "x"}};
  p = plan_cgroups(spec_, host_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("'rdma'"), std::string::npos) << p.error().message;
}

TEST_F(CgroupPlanTest, NestUnderCallerUsesOwnCgroupOfEachHierarchy) {
  hybrid("hugetlb");
  spec_.nest_under_caller_cgroup = true;
  auto p = plan_cgroups(spec_, host_);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->dirs.size(), 2u);
  EXPECT_EQ(p->dirs[0].path(), "/c/memory/sessions/s1/kiln-vmm/vm-7");
  EXPECT_EQ(p->dirs[1].path(), "/c/pids/kiln-vmm/vm-7");
}

TEST_F(CgroupPlanTest, RawSettingsJoinTheirController) {
  hybrid("hugetlb");
  spec_.limits = {};
  spec_.cgroup_settings = {{"cpuacct.usage", "0"}, {"cpu.shares", "10"}};
  auto p = plan_cgroups(spec_, host_);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->dirs.size(), 1u);  // cpu and cpuacct share one hierarchy
  EXPECT_EQ(p->dirs[0].settings.size(), 2u);
}

TEST(HostFiles, ParsesMountsWithEscapes) {
  auto m = parse_mounts("cgroup /sys/fs/cgroup/a\\040b cgroup rw,memory 0 0\nshort line\n");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].target, "/sys/fs/cgroup/a b");
  EXPECT_EQ(m[0].options, (std::vector<std::string>{"rw", "memory"}));
}

}  // namespace
}  // namespace kiln::jail

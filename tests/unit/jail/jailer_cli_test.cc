// kiln-jailer's flags: Firecracker's jailer flags map onto a JailSpec; malformed ones are
// usage errors naming the flag.
#include <gtest/gtest.h>

#include "src/jail/jailer_cli.h"

namespace kiln::jail {
namespace {

TEST(JailerCli, FirecrackerFlags) {
  auto c = parse_jailer_args({"--id", "551e7604-e35c", "--exec-file", "/usr/bin/kiln-vmm", "--uid", "123", "--gid=100",
                              "--chroot-base-dir", "/srv/j", "--netns", "/var/run/netns/n", "--cgroup", "cpuset.cpus=0",
                              "--cgroup=memory.max=1048576", "--cgroup-version", "2", "--parent-cgroup", "kiln/vms",
                              "--resource-limit", "fsize=250000000", "--resource-limit=no-file=1024", "--daemonize",
                              "--new-pid-ns", "--bind", "/a/vmlinux:/vmlinux", "--bind", "/a/disk:/disk:rw", "--",
                              "--config-file", "/vm.json", "--no-api"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  const JailSpec& s = c->spec;
  EXPECT_EQ(s.id, "551e7604-e35c");
  EXPECT_EQ(s.exec_file, "/usr/bin/kiln-vmm");
  EXPECT_EQ(s.uid, 123u);
  EXPECT_EQ(s.gid, 100u);
  EXPECT_EQ(s.chroot_base_dir, "/srv/j");
  EXPECT_EQ(s.netns, "/var/run/netns/n");
  ASSERT_EQ(s.cgroup_settings.size(), 2u);
  EXPECT_EQ(s.cgroup_settings[1].file, "memory.max");
  EXPECT_EQ(s.cgroup_settings[1].value, "1048576");
  EXPECT_EQ(s.cgroup_version, CgroupVersion::kV2);
  EXPECT_EQ(s.parent_cgroup, "kiln/vms");
  EXPECT_EQ(s.rlimit_fsize, 250000000u);
  EXPECT_EQ(s.rlimit_nofile, 1024u);
  EXPECT_TRUE(s.daemonize);
  ASSERT_EQ(s.files.size(), 2u);
  EXPECT_TRUE(s.files[0].read_only);
  EXPECT_EQ(s.files[1].jail_path, "/disk");
  EXPECT_FALSE(s.files[1].read_only);
  EXPECT_EQ(c->vmm_args, (std::vector<std::string>{"--id=551e7604-e35c", "--config-file", "/vm.json", "--no-api"}));
}

TEST(JailerCli, DefaultsFollowFirecracker) {
  auto c = parse_jailer_args({"--id", "a", "--exec-file", "/x/kiln-vmm", "--uid", "1", "--gid", "1"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->spec.chroot_base_dir, "/srv/jailer");
  EXPECT_EQ(c->spec.cgroup_version, CgroupVersion::kV1);
  EXPECT_FALSE(c->spec.daemonize);
  EXPECT_EQ(c->vmm_args, (std::vector<std::string>{"--id=a"}));
}

TEST(JailerCli, UsageErrors) {
  const std::vector<std::string> base{"--exec-file", "/x/kiln-vmm", "--uid", "1", "--gid", "1"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_jailer_args(args);
  };
  auto expect_error = [](const Result<JailerCommand>& r, const std::string& want) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
  };
  expect_error(with({}), "--id is required");
  expect_error(with({"--id", "a/b"}), "id:");
  expect_error(with({"--id", std::string(65, 'a')}), "64");
  expect_error(with({"--id", "a", "--uid", "-1"}), "--uid");
  expect_error(with({"--id", "a", "--uid", "1x"}), "--uid");
  expect_error(with({"--id", "a", "--gid", "99999999999"}), "--gid");
  expect_error(with({"--id", "a", "--cgroup-version", "3"}), "1 or 2");
  expect_error(with({"--id", "a", "--cgroup", "novalue"}), "--cgroup");
  expect_error(with({"--id", "a", "--resource-limit", "stack=1"}), "unknown resource");
  expect_error(with({"--id", "a", "--resource-limit", "fsize=big"}), "fsize");
  expect_error(with({"--id", "a", "--bind", "nocolon"}), "--bind");
  expect_error(with({"--id", "a", "--frobnicate"}), "unknown flag --frobnicate");
  expect_error(with({"--id"}), "missing value");
  expect_error(parse_jailer_args({"--id", "a", "--exec-file", "/x"}), "--uid and --gid");
}

TEST(JailerCli, CleanupNeedsNoUid) {
  auto c = parse_jailer_args({"--cleanup", "--id", "a", "--exec-file", "/x/kiln-vmm"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->cleanup);
}

}  // namespace
}  // namespace kiln::jail

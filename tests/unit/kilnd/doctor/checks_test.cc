// kiln doctor's checks against a faked host: /proc, /sys and /lib/modules as files in a temp
// dir, /dev nodes and the tried system calls as the fake's answers. Each check's ok, warn and
// fail paths, the report's lines and the exit status rule.
#include "src/doctor/checks.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace kiln::doctor {
namespace {

// A host whose files live under a temp dir and whose syscalls answer as told.
class FakeHost : public HostView {
 public:
  kiln::testing::TempDir tree{"kiln-doctor"};
  std::set<std::string> char_devices;              // e.g. /dev/kvm
  std::map<std::string, std::string> open_errors;  // path -> why open_read_write fails
  std::set<std::string> unwritable;                // paths access(W_OK) refuses
  std::map<std::string, FsInfo> filesystems;       // path -> statfs answer
  NofileLimit limit{1048576, 1048576};
  bool is_root = true;
  std::set<int> refused_unshares;  // clone flags unshare refuses
  std::map<NetFeature, std::string> net_errors;
  std::optional<KvmSelfTest> self_test = KvmSelfTest{true, "KVM can run Linux guests"};

  void file(const std::string& path, const std::string& text) { tree.write(path.substr(1), text); }
  void dir(const std::string& path) { tree.write(path.substr(1) + "/.keep", ""); }

  Result<std::string> read_file(const std::string& path) const override {
    if (!exists_in_tree(path)) return make_error("open " + path + ": No such file or directory");
    return kiln::testing::slurp(tree / path.substr(1));
  }
  FileInfo stat(const std::string& path) const override {
    if (char_devices.count(path)) return {true, false, true};
    if (!exists_in_tree(path)) return {};
    return {true, std::filesystem::is_directory(tree / path.substr(1)), false};
  }
  Status open_read_write(const std::string& path) const override {
    if (auto it = open_errors.find(path); it != open_errors.end()) return make_error(it->second);
    return ok_status();
  }
  Status writable(const std::string& path) const override {
    return unwritable.count(path) ? make_error("access " + path + ": Read-only file system") : ok_status();
  }
  Result<FsInfo> filesystem(const std::string& path) const override {
    if (auto it = filesystems.find(path); it != filesystems.end()) return it->second;
    return make_error("statfs " + path + ": No such file or directory");
  }
  NofileLimit nofile() const override { return limit; }
  bool root() const override { return is_root; }
  Status try_unshare(int flags) const override {
    return refused_unshares.count(flags) ? make_error("unshare: Operation not permitted") : ok_status();
  }
  Status try_net_feature(NetFeature f) const override {
    if (auto it = net_errors.find(f); it != net_errors.end()) return make_error(it->second);
    return ok_status();
  }
  Result<KvmSelfTest> kvm_self_test() const override {
    if (!self_test) return make_error("kiln-vmm not found");
    return *self_test;
  }

 private:
  bool exists_in_tree(const std::string& path) const {
    std::error_code ec;
    return path == "/" || std::filesystem::exists(tree / path.substr(1), ec);
  }
};

constexpr const char* kV2Mounts =
    "sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n";
constexpr const char* kHybridMounts =
    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\ncgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
    "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\ncgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n";

class DoctorChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(host_.tree.path().empty());
    host_.char_devices = {"/dev/kvm", "/dev/net/tun"};
    host_.file("/proc/self/mounts", kV2Mounts);
    host_.file("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    host_.file("/sys/fs/cgroup/cgroup.subtree_control", "cpu memory pids\n");
    host_.file("/proc/sys/user/max_user_namespaces", "63432\n");
    host_.file("/proc/sys/kernel/osrelease", "6.1.0-test\n");
    host_.dir("/var/lib/kiln");
    host_.filesystems["/var/lib/kiln"] = {std::uint64_t{100} << 30, 0xEF53};
  }
  FakeHost host_;
};

TEST_F(DoctorChecks, AHealthyHostPassesEveryCheck) {
  const auto results = run_checks(host_, "/var/lib/kiln");
  ASSERT_EQ(results.size(), 10u);
  for (const auto& r : results) EXPECT_EQ(r.verdict, Verdict::kOk) << r.check << ": " << r.finding;
  EXPECT_EQ(exit_status(results), 0);
  EXPECT_EQ(check_state_dir(host_, "/var/lib/kiln").finding, "/var/lib/kiln exists, ext4, 100.0 GiB free");
}

TEST_F(DoctorChecks, Kvm) {
  EXPECT_EQ(check_kvm(host_).verdict, Verdict::kOk);
  host_.self_test = KvmSelfTest{false, "KVM cannot run Linux guests: SYSCALL did not reach CPL0."};
  auto r = check_kvm(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_NE(r.finding.find("SYSCALL did not reach CPL0"), std::string::npos) << r.finding;
  host_.self_test.reset();
  EXPECT_EQ(check_kvm(host_).verdict, Verdict::kWarn);  // no kiln-vmm: not tried
  host_.open_errors["/dev/kvm"] = "open /dev/kvm: Permission denied";
  r = check_kvm(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding, "cannot open /dev/kvm: open /dev/kvm: Permission denied");
  host_.char_devices.erase("/dev/kvm");
  r = check_kvm(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding, "/dev/kvm is missing");
  EXPECT_FALSE(r.fix.empty());
}

TEST_F(DoctorChecks, CgroupV2) {
  EXPECT_EQ(check_cgroup_v2(host_).finding,
            "/sys/fs/cgroup: cpu, memory, pids available and delegated (cgroup.subtree_control)");
  host_.file("/sys/fs/cgroup/cgroup.subtree_control", "memory\n");
  auto r = check_cgroup_v2(host_);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.finding,
            "/sys/fs/cgroup: cpu, memory, pids available; kilnd enables cpu, pids in cgroup.subtree_control");
  host_.unwritable.insert("/sys/fs/cgroup/cgroup.subtree_control");
  r = check_cgroup_v2(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding,
            "/sys/fs/cgroup: cpu, pids not delegated and cgroup.subtree_control is not writable (access "
            "/sys/fs/cgroup/cgroup.subtree_control: Read-only file system)");
  host_.file("/sys/fs/cgroup/cgroup.controllers", "cpu io\n");
  r = check_cgroup_v2(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding.rfind("/sys/fs/cgroup lacks the memory, pids controller(s)", 0), 0u) << r.finding;
  host_.file("/proc/self/mounts", "proc /proc proc rw 0 0\n");
  EXPECT_EQ(check_cgroup_v2(host_).finding.rfind("cgroup2 is not mounted", 0), 0u);
}

// A hybrid host (systemd's legacy layout): the jail falls back to cgroup v1, so a warning.
TEST_F(DoctorChecks, CgroupV1FallbackIsAWarning) {
  host_.file("/proc/self/mounts", kHybridMounts);
  host_.file("/sys/fs/cgroup/unified/cgroup.controllers", "");
  auto r = check_cgroup_v2(host_);
  EXPECT_EQ(r.verdict, Verdict::kWarn);
  EXPECT_EQ(r.finding,
            "/sys/fs/cgroup/unified lacks the cpu, memory, pids controller(s); the jail uses cgroup v1 (cpu, memory, "
            "pids hierarchies mounted)");
  host_.file("/proc/self/mounts", "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n");
  r = check_cgroup_v2(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding, "cgroup2 is not mounted, and cgroup v1 has only memory of cpu, memory, pids");
}

TEST_F(DoctorChecks, Namespaces) {
  EXPECT_EQ(check_namespaces(host_).finding, "mount, pid, ipc, uts, net: can unshare");
  host_.refused_unshares = {CLONE_NEWPID, CLONE_NEWNET};
  auto r = check_namespaces(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding, "cannot unshare pid, net: unshare: Operation not permitted");
  host_.is_root = false;
  EXPECT_EQ(check_namespaces(host_).verdict, Verdict::kWarn);  // cannot try
}

TEST_F(DoctorChecks, UserNamespacesAreOnlyAdvice) {
  EXPECT_EQ(check_user_namespaces(host_).verdict, Verdict::kOk);
  host_.refused_unshares = {CLONE_NEWUSER};
  EXPECT_EQ(check_user_namespaces(host_).verdict, Verdict::kWarn);
  host_.refused_unshares.clear();
  host_.file("/proc/sys/user/max_user_namespaces", "0\n");
  auto r = check_user_namespaces(host_);
  EXPECT_EQ(r.verdict, Verdict::kWarn);
  EXPECT_EQ(r.finding.rfind("disabled (user.max_user_namespaces = 0)", 0), 0u);
}

TEST_F(DoctorChecks, TunDevice) {
  EXPECT_EQ(check_tun_device(host_).verdict, Verdict::kOk);
  host_.open_errors["/dev/net/tun"] = "open /dev/net/tun: No such device";
  EXPECT_EQ(check_tun_device(host_).verdict, Verdict::kFail);
  host_.char_devices.erase("/dev/net/tun");
  auto r = check_tun_device(host_);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding, "missing");
}

TEST_F(DoctorChecks, NetworkFeaturesAreTriedAsRoot) {
  EXPECT_EQ(check_net_feature(host_, NetFeature::kVeth).finding, "created a veth pair in a new network namespace");
  host_.net_errors[NetFeature::kNftables] = "Error: Could not process rule: Operation not supported";
  auto r = check_net_feature(host_, NetFeature::kNftables);
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.check, "nftables");
  EXPECT_NE(r.fix.find("CONFIG_NF_TABLES"), std::string::npos);
  EXPECT_EQ(check_net_feature(host_, NetFeature::kTap).verdict, Verdict::kOk);
}

// Without root the kernel's modules are looked up instead: loaded, built in or installed.
TEST_F(DoctorChecks, NetworkFeaturesWithoutRootLookAtModules) {
  host_.is_root = false;
  host_.net_errors[NetFeature::kVeth] = "not tried";  // never called without root
  EXPECT_EQ(check_net_feature(host_, NetFeature::kVeth).verdict, Verdict::kWarn);
  host_.dir("/sys/module/veth");
  auto r = check_net_feature(host_, NetFeature::kVeth);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.finding, "kernel module veth present (/sys/module/veth); not tried: not root");
  host_.file("/lib/modules/6.1.0-test/modules.builtin", "kernel/drivers/net/tun.ko\n");
  EXPECT_EQ(check_net_feature(host_, NetFeature::kTap).verdict, Verdict::kOk);
  host_.file("/lib/modules/6.1.0-test/modules.dep",
             "kernel/net/netfilter/nf_tables.ko.xz: kernel/lib/libcrc32c.ko.xz\n");
  EXPECT_EQ(check_net_feature(host_, NetFeature::kNftables).verdict, Verdict::kOk);
}

TEST_F(DoctorChecks, StateDir) {
  // Missing: the nearest existing parent must be writable.
  host_.dir("/srv");
  host_.filesystems["/srv"] = {std::uint64_t{2} << 30, 0x58465342};
  auto r = check_state_dir(host_, "/srv/kiln/state");
  EXPECT_EQ(r.verdict, Verdict::kWarn);  // 2 GiB free
  EXPECT_EQ(r.finding,
            "/srv/kiln/state is missing; kilnd creates it (/srv is writable), xfs, 2.0 GiB free (under 5 GiB)");
  host_.unwritable.insert("/srv");
  r = check_state_dir(host_, "/srv/kiln/state");
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.finding, "/srv/kiln/state is missing and /srv is not writable (access /srv: Read-only file system)");
  host_.file("/srv/file", "");
  EXPECT_EQ(check_state_dir(host_, "/srv/file").finding, "/srv/file is not a directory");
  host_.unwritable.insert("/var/lib/kiln");
  EXPECT_EQ(check_state_dir(host_, "/var/lib/kiln").verdict, Verdict::kFail);
  host_.unwritable.clear();
  host_.filesystems["/var/lib/kiln"] = {std::uint64_t{100} << 30, 0x01021994};
  r = check_state_dir(host_, "/var/lib/kiln");
  EXPECT_EQ(r.verdict, Verdict::kWarn);
  EXPECT_NE(r.finding.find("tmpfs"), std::string::npos);
}

TEST_F(DoctorChecks, OpenFiles) {
  EXPECT_EQ(check_open_files(host_).finding, "RLIMIT_NOFILE 1048576 (hard 1048576)");
  host_.limit = {1024, UINT64_MAX};
  auto r = check_open_files(host_);
  EXPECT_EQ(r.verdict, Verdict::kWarn);
  EXPECT_EQ(r.finding, "RLIMIT_NOFILE 1024 (hard unlimited), under 65536");
}

TEST(DoctorReport, LinesFixesAndExitStatus) {
  const std::vector<CheckResult> results = {{"kvm", Verdict::kOk, "/dev/kvm runs Linux guests", ""},
                                            {"open files", Verdict::kWarn, "RLIMIT_NOFILE 1024", "raise it"},
                                            {"/dev/net/tun", Verdict::kFail, "missing", "modprobe tun"}};
  EXPECT_EQ(format_report(results),
            "ok    kvm: /dev/kvm runs Linux guests\n"
            "warn  open files: RLIMIT_NOFILE 1024\n"
            "  fix: raise it\n"
            "FAIL  /dev/net/tun: missing\n"
            "  fix: modprobe tun\n");
  EXPECT_EQ(exit_status(results), 1);
  EXPECT_EQ(exit_status({results[0], results[1]}), 0);  // warnings do not fail
  EXPECT_EQ(exit_status({}), 0);
  EXPECT_EQ(filesystem_name(0xEF53), "ext4");
  EXPECT_EQ(filesystem_name(0x1234), "0x1234");
}

}  // namespace
}  // namespace kiln::doctor

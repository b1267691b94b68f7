// kilnd's command line: every flag, defaults, --help, unknown flags, missing values, bad
// numbers or switches, and the files every instance needs.
#include "src/cli/kilnd_options.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace kiln::kilnd::cli {
namespace {

const KilndDefaults kDefaults{"/var/lib/kiln", true};
// A readable regular file that surely exists: this test's own binary.
const std::string kFile = std::filesystem::read_symlink("/proc/self/exe").string();

std::string error_of(const std::vector<std::string>& args) {
  auto r = parse_kilnd_args(args, kDefaults);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

TEST(KilndOptions, Defaults) {
  auto o = parse_kilnd_args({}, kDefaults);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->help);
  EXPECT_TRUE(o->tcp);
  EXPECT_EQ(o->tcp_host, "127.0.0.1");
  EXPECT_EQ(o->tcp_port, 8900);
  EXPECT_EQ(o->state_dir, "/var/lib/kiln");
  EXPECT_TRUE(o->jail);
  EXPECT_TRUE(o->snapshots);
  EXPECT_FALSE(o->park_vmms.has_value());
  EXPECT_FALSE(o->boot_timeout.has_value());
  EXPECT_FALSE(o->drain_timeout.has_value());
  EXPECT_FALSE(o->log_memory_bytes.has_value());
  EXPECT_TRUE(o->tenants_file.empty());
  EXPECT_FALSE(o->allow_second_schedules);
}

TEST(KilndOptions, EveryFlag) {
  auto o = parse_kilnd_args({"--listen", "[::1]:0", "--unix=none", "--state-dir", "s", "--vmm", kFile, "--kernel", kFile,
                             "--initrd", kFile, "--boot-args", "console=ttyS0 quiet", "--boot-timeout-ms", "5000",
                             "--drain-timeout-ms", "0", "--vmm-arg", "--no-seccomp", "--vmm-arg=--seccomp-audit",
                             "--jail", "off", "--snapshots", "off", "--park-vmms", "on", "--log-memory-mib", "16",
                             "--tenants", "/t.json", "--allow-second-schedules", "--lazy-images", "off",
                             "--chunk-cache-gib", "3"},
                            kDefaults);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->tcp_host, "::1");
  EXPECT_EQ(o->tcp_port, 0);
  EXPECT_EQ(o->unix_path, "none");
  EXPECT_EQ(o->state_dir, "s");
  EXPECT_EQ(o->vmm_path, kFile);
  EXPECT_EQ(o->kernel_path, kFile);
  EXPECT_EQ(o->initrd_path, kFile);
  EXPECT_EQ(o->boot_args, "console=ttyS0 quiet");
  EXPECT_EQ(o->boot_timeout->count(), 5000);
  EXPECT_EQ(o->drain_timeout->count(), 0);
  EXPECT_EQ(o->vmm_args, (std::vector<std::string>{"--no-seccomp", "--seccomp-audit"}));
  EXPECT_FALSE(o->jail);
  EXPECT_FALSE(o->snapshots);
  EXPECT_TRUE(o->park_vmms.value());
  EXPECT_EQ(o->log_memory_bytes.value(), std::size_t{16} << 20);
  EXPECT_EQ(o->tenants_file, "/t.json");
  EXPECT_TRUE(o->allow_second_schedules);
  EXPECT_FALSE(o->lazy_images);
  EXPECT_EQ(o->chunk_cache_gib, 3u);
  EXPECT_FALSE(parse_kilnd_args({"--chunk-cache-gib", "0"}, kDefaults).ok());
  auto none = parse_kilnd_args({"--listen", "none"}, kDefaults);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->tcp);
}

TEST(KilndOptions, Help) {
  EXPECT_TRUE(parse_kilnd_args({"--help"}, kDefaults)->help);
  EXPECT_TRUE(parse_kilnd_args({"--listen", "none", "-h"}, kDefaults)->help);
  EXPECT_EQ(kilnd_usage().rfind("usage: kilnd [options]", 0), 0u);
}

TEST(KilndOptions, UsageErrors) {
  EXPECT_EQ(error_of({"--frobnicate"}), "unknown flag --frobnicate");
  EXPECT_EQ(error_of({"--state"}), "unknown flag --state");  // no abbreviations
  EXPECT_EQ(error_of({"serve"}), "unexpected argument serve");
  EXPECT_EQ(error_of({"--kernel"}), "--kernel: missing value");
  EXPECT_FALSE(parse_kilnd_args({"--allow-second-schedules=yes"}, kDefaults).ok());  // a switch, no value
  EXPECT_EQ(error_of({"--listen", "8900"}), "--listen: must be HOST:PORT (got 8900)");
  EXPECT_EQ(error_of({"--listen", "h:65536"}), "--listen: must be HOST:PORT (got h:65536)");
  EXPECT_EQ(error_of({"--listen", "h:http"}), "--listen: must be HOST:PORT (got h:http)");
  EXPECT_EQ(error_of({"--boot-timeout-ms", "0"}), "--boot-timeout-ms: must be at least 1");
  EXPECT_EQ(error_of({"--boot-timeout-ms", "1s"}), "--boot-timeout-ms: want a number, got '1s'");
  EXPECT_EQ(error_of({"--drain-timeout-ms", "-1"}), "--drain-timeout-ms: want a number, got '-1'");
  EXPECT_FALSE(parse_kilnd_args({"--drain-timeout-ms", "1000000000000"}, kDefaults).ok());  // 13 digits
  EXPECT_EQ(error_of({"--log-memory-mib", "0"}), "--log-memory-mib: must be at least 1");
  EXPECT_EQ(error_of({"--log-memory-mib", "65537"}), "--log-memory-mib: at most 65536, got 65537");
  EXPECT_EQ(error_of({"--jail", "yes"}), "--jail: want on or off, got 'yes'");
  EXPECT_EQ(error_of({"--snapshots", "true"}), "--snapshots: want on or off, got 'true'");
  EXPECT_EQ(error_of({"--park-vmms"}), "--park-vmms: missing value");
}

// A wrong --vmm, --kernel or --initrd is refused at start, naming the flag and the file, not
// later as a jail error at the first instance.
TEST(KilndOptions, FilesEveryInstanceNeedsMustBeReadableFiles) {
  EXPECT_EQ(error_of({"--kernel", ""}), "--kernel: empty path");
  EXPECT_EQ(error_of({"--kernel", "/nonexistent/vmlinux"}), "--kernel /nonexistent/vmlinux: No such file or directory");
  EXPECT_EQ(error_of({"--initrd", "/"}), "--initrd /: not a regular file");
  EXPECT_EQ(error_of({"--vmm=/nonexistent/kiln-vmm"}), "--vmm /nonexistent/kiln-vmm: No such file or directory");
}

// Instance networks: on by default for root with the jail, never without the jail; the
// operator's defaults come from --network-config, whose errors name the file and the field.
const KilndDefaults kRootDefaults{"/var/lib/kiln", true, true};

std::string network_error_of(const std::vector<std::string>& args) {
  auto r = parse_kilnd_args(args, kRootDefaults);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

class NetworkConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-netcfg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST(KilndOptions, NetworkDefaultsFollowRootAndTheJail) {
  auto root = parse_kilnd_args({}, kRootDefaults);
  ASSERT_TRUE(root.ok()) << root.error().message;
  EXPECT_TRUE(root->network);
  ASSERT_TRUE(root->network_defaults.has_value());
  EXPECT_EQ(*root->network_defaults, net::NetworkDefaults{});
  auto unjailed = parse_kilnd_args({"--jail", "off"}, kRootDefaults);
  ASSERT_TRUE(unjailed.ok());
  EXPECT_FALSE(unjailed->network);
  EXPECT_FALSE(unjailed->network_defaults.has_value());
  auto user = parse_kilnd_args({}, kDefaults);  // not root
  ASSERT_TRUE(user.ok());
  EXPECT_FALSE(user->network);
  EXPECT_FALSE(user->network_defaults.has_value());
  auto off = parse_kilnd_args({"--network", "off"}, kRootDefaults);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->network);
  EXPECT_FALSE(off->network_defaults.has_value());
  auto on = parse_kilnd_args({"--network=on", "--jail", "on"}, kDefaults);
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on->network);
  EXPECT_TRUE(on->network_defaults.has_value());
}

TEST(KilndOptions, NetworkUsageErrors) {
  EXPECT_EQ(network_error_of({"--network", "egress"}), "--network: want on or off, got 'egress'");
  EXPECT_EQ(network_error_of({"--network", "on", "--jail", "off"}),
            "--network on needs --jail on (an instance's network is its jail's namespace)");
  EXPECT_EQ(network_error_of({"--jail", "off", "--network", "on"}),
            "--network on needs --jail on (an instance's network is its jail's namespace)");
  EXPECT_EQ(network_error_of({"--network", "off", "--network-config", "/x.json"}),
            "--network-config: instance networks are off (--network on)");
  EXPECT_EQ(network_error_of({"--network-config", "/nonexistent/net.json"}).rfind("--network-config /nonexistent/net.json: ", 0),
            0u);
}

TEST_F(NetworkConfigFile, TheOperatorsDefaultsComeFromTheFile) {
  const std::string path = write("net.json", R"({"mode": "none", "allow_private": true, "deny": ["192.0.2.0/24"],
                                                 "dns": ["9.9.9.9"], "instance_range": "10.99.0.0/16"})");
  auto o = parse_kilnd_args({"--network-config", path}, kRootDefaults);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(o->network);
  EXPECT_EQ(o->network_config_file, path);
  ASSERT_TRUE(o->network_defaults.has_value());
  EXPECT_EQ(o->network_defaults->mode, net::NetworkMode::kNone);
  EXPECT_TRUE(o->network_defaults->allow_private);
  ASSERT_EQ(o->network_defaults->deny.size(), 1u);
  EXPECT_EQ(protocol::format_ip_prefix(o->network_defaults->deny[0]), "192.0.2.0/24");
  ASSERT_EQ(o->network_defaults->dns.size(), 1u);
  EXPECT_EQ(protocol::format_ip(o->network_defaults->dns[0]), "9.9.9.9");
  EXPECT_EQ(protocol::format_ip_prefix(o->network_defaults->instance_range), "10.99.0.0/16");
}

TEST_F(NetworkConfigFile, ErrorsNameTheFileAndTheField) {
  const std::string bad_deny = write("deny.json", R"({"deny": ["192.0.2.1/24"]})");
  EXPECT_EQ(network_error_of({"--network-config", bad_deny}).rfind("--network-config " + bad_deny + ": deny[0]: ", 0), 0u)
      << network_error_of({"--network-config", bad_deny});
  const std::string typo = write("typo.json", R"({"mdoe": "none"})");
  EXPECT_EQ(network_error_of({"--network-config", typo}).rfind("--network-config " + typo + ": mdoe: ", 0), 0u)
      << network_error_of({"--network-config", typo});
  const std::string not_json = write("broken.json", "{");
  EXPECT_EQ(network_error_of({"--network-config", not_json}).rfind("--network-config " + not_json + ": ", 0), 0u);
  const std::string not_object = write("list.json", "[]");
  EXPECT_EQ(network_error_of({"--network-config", not_object}).rfind("--network-config " + not_object + ": ", 0), 0u);
}

}  // namespace
}  // namespace kiln::kilnd::cli

// /etc/resolv.conf and /etc/hosts from a NetPlan in a scratch /etc: replaced over a file or a
// dangling symlink, hosts entries added after the image's content or the default, idempotent.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "guest-agent/net/guest_network.h"
#include "tests/support/process.h"

namespace kiln::agent::net {
namespace {

namespace fs = std::filesystem;

class NetworkFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-netfiles-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    etc_ = tmpl;
  }
  void TearDown() override { fs::remove_all(etc_); }

  NetPlan plan(std::vector<std::string> dns, std::vector<std::string> hosts) {
    protocol::NetworkSpec n;
    n.mac = "02:fc:00:00:00:01";
    n.dns = std::move(dns);
    n.hosts = std::move(hosts);
    auto p = plan_network(n);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? **p : NetPlan{};
  }
  std::string read(const std::string& name) { return kiln::testing::slurp(etc_ + "/" + name); }
  void put(const std::string& name, const std::string& text) { std::ofstream(etc_ + "/" + name) << text; }
  bool is_symlink(const std::string& name) { return fs::is_symlink(etc_ + "/" + name); }

  const std::string default_hosts_ = "127.0.0.1\tlocalhost\n";
  std::string etc_;
};

TEST_F(NetworkFiles, ReplacesResolvConfFileAndAppendsToHosts) {
  put("resolv.conf", "nameserver 192.168.1.1\n");
  put("hosts", "127.0.0.1 localhost image-host\n");
  auto st = write_network_files(plan({"10.0.0.1"}, {"10.1.2.3 db"}), etc_, default_hosts_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(read("resolv.conf"), "# written by kiln-init from the launch spec\nnameserver 10.0.0.1\n");
  EXPECT_EQ(read("hosts"), "127.0.0.1 localhost image-host\n10.1.2.3\tdb\n");
  struct stat s {};
  ASSERT_EQ(::stat((etc_ + "/resolv.conf").c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0444, 0444u) << "every user must be able to read it";
  // Applying again (the same spec) changes nothing.
  ASSERT_TRUE(write_network_files(plan({"10.0.0.1"}, {"10.1.2.3 db"}), etc_, default_hosts_).ok());
  EXPECT_EQ(read("hosts"), "127.0.0.1 localhost image-host\n10.1.2.3\tdb\n");
}

TEST_F(NetworkFiles, ReplacesDanglingSymlinks) {
  // Debian/Ubuntu images: resolv.conf -> ../run/systemd/resolve/stub-resolv.conf, absent here.
  ASSERT_EQ(::symlink("../run/systemd/resolve/stub-resolv.conf", (etc_ + "/resolv.conf").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/hosts", (etc_ + "/hosts").c_str()), 0);
  auto st = write_network_files(plan({"10.0.0.1", "fd00::53"}, {"10.1.2.3 db"}), etc_, default_hosts_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_FALSE(is_symlink("resolv.conf"));
  EXPECT_FALSE(is_symlink("hosts"));
  EXPECT_NE(read("resolv.conf").find("nameserver 10.0.0.1\nnameserver fd00::53\n"), std::string::npos);
  EXPECT_EQ(read("hosts"), default_hosts_ + "10.1.2.3\tdb\n");
}

TEST_F(NetworkFiles, FollowsAWorkingHostsSymlinkButReplacesTheLink) {
  put("hosts.real", "127.0.0.1 localhost\n");
  ASSERT_EQ(::symlink("hosts.real", (etc_ + "/hosts").c_str()), 0);
  ASSERT_TRUE(write_network_files(plan({}, {"10.1.2.3 db"}), etc_, default_hosts_).ok());
  EXPECT_FALSE(is_symlink("hosts"));
  EXPECT_EQ(read("hosts"), "127.0.0.1 localhost\n10.1.2.3\tdb\n");
  EXPECT_EQ(read("hosts.real"), "127.0.0.1 localhost\n") << "the link's target must stay as it was";
}

TEST_F(NetworkFiles, NoNameserversLeavesResolvConfAlone) {
  put("resolv.conf", "nameserver 127.0.0.1\n");
  ASSERT_TRUE(write_network_files(plan({}, {}), etc_, default_hosts_).ok());
  EXPECT_EQ(read("resolv.conf"), "nameserver 127.0.0.1\n");
  EXPECT_FALSE(fs::exists(etc_ + "/hosts")) << "no hosts entries: the file is not touched";
}

TEST_F(NetworkFiles, AbsentHostsStartsFromTheDefault) {
  ASSERT_TRUE(write_network_files(plan({}, {"fd00::9 cache c"}), etc_, default_hosts_).ok());
  EXPECT_EQ(read("hosts"), default_hosts_ + "fd00::9\tcache c\n");
}

TEST_F(NetworkFiles, UnwritableEtcIsAnError) {
  auto st = write_network_files(plan({"10.0.0.1"}, {}), etc_ + "/missing-dir", default_hosts_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("resolv.conf"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace kiln::agent::net

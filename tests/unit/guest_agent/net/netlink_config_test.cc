// The netlink side for real, in a throwaway network namespace per test (root): a TAP device
// stands in for the guest's virtio-net NIC; configure_link finds it by MAC and sets MTU, up,
// addresses and default routes; the restore refresh flushes its neighbours and sends a
// gratuitous ARP, read back from the TAP. Results are checked through the kernel's own views
// (getifaddrs, SIOCGIFMTU, /proc/thread-self/net), not through libnl.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstring>
#include <algorithm>
#include <sstream>

#include "common/unique_fd.h"
#include "guest-agent/net/guest_network.h"
#include "guest-agent/net/netlink_config.h"
#include "tests/support/process.h"
#include "tests/unit/guest_agent/net/tap_fixture.h"

namespace kiln::agent::net {
namespace {

using testing::add_arp;
using testing::in_new_netns;

constexpr char kTap[] = "kt0";
const protocol::MacAddress kMac = {0x02, 0xfc, 0x00, 0x00, 0x00, 0x01};

NetPlan plan_of(protocol::NetworkSpec n) {
  auto p = plan_network(n);
  EXPECT_TRUE(p.ok() && p->has_value()) << (p.ok() ? "no plan" : p.error().message);
  return p.ok() && p->has_value() ? **p : NetPlan{};
}

protocol::NetworkSpec spec() {
  protocol::NetworkSpec n;
  n.mac = protocol::format_mac(kMac);
  n.address = "10.0.0.2/30";
  n.gateway = "10.0.0.1";
  n.mtu = 1400;
  return n;
}

// The calling thread's namespace's view (/proc/self/net would show the main thread's).
std::string proc_net(const std::string& file) { return kiln::testing::slurp("/proc/thread-self/net/" + file); }

// "ADDRESS/PREFIX" of every address getifaddrs reports on `name`, and whether it is up.
std::vector<std::string> addresses_of(const std::string& name, bool* up) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (name != i->ifa_name) continue;
    if (up) *up = (i->ifa_flags & IFF_UP) != 0;
    if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) continue;
    const bool v4 = i->ifa_addr->sa_family == AF_INET;
    const void* a = v4 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr)
                       : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr);
    const auto* m = reinterpret_cast<const std::uint8_t*>(
        v4 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr)
           : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_netmask)->sin6_addr));
    int bits = 0;
    for (std::size_t b = 0; b < (v4 ? 4u : 16u); ++b) bits += __builtin_popcount(m[b]);
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(i->ifa_addr->sa_family, a, text, sizeof(text));
    out.push_back(std::string(text) + "/" + std::to_string(bits));
  }
  ::freeifaddrs(list);
  return out;
}

int mtu_of(const std::string& name) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  return ::ioctl(s.get(), SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : -1;
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

class NetlinkConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, TAP devices)";
  }
};

TEST_F(NetlinkConfig, ConfiguresTheLinkWithThatMac) {
  in_new_netns([] {
    UniqueFd tap = testing::make_tap(kTap, kMac);
    ASSERT_TRUE(tap);
    auto link = configure_link(plan_of(spec()));
    ASSERT_TRUE(link.ok()) << link.error().message;
    EXPECT_EQ(link->link.name, kTap);
    bool up = false;
    auto addrs = addresses_of(kTap, &up);
    EXPECT_TRUE(up);
    EXPECT_TRUE(has(addrs, "10.0.0.2/30")) << ::testing::PrintToString(addrs);
    EXPECT_EQ(mtu_of(kTap), 1400);
    // Default route: destination 0, gateway 10.0.0.1 (little-endian hex in /proc), flags UP|GATEWAY.
    EXPECT_NE(proc_net("route").find(std::string(kTap) + "\t00000000\t0100000A\t0003"), std::string::npos)
        << proc_net("route");
  });
}

TEST_F(NetlinkConfig, OnLinkGatewayOutsideA32AndIpv6) {
  in_new_netns([] {
    UniqueFd tap = testing::make_tap(kTap, kMac);
    ASSERT_TRUE(tap);
    auto n = spec();
    n.address = "10.0.0.2/32";
    n.gateway = "169.254.1.1";  // outside the /32: refused by the kernel unless on-link
    n.address6 = "fd00::2/64";
    n.gateway6 = "fe80::1";
    n.mtu = 1500;
    auto link = configure_link(plan_of(n));
    ASSERT_TRUE(link.ok()) << link.error().message;
    auto addrs = addresses_of(kTap, nullptr);
    EXPECT_TRUE(has(addrs, "10.0.0.2/32")) << ::testing::PrintToString(addrs);
    EXPECT_TRUE(has(addrs, "fd00::2/64")) << ::testing::PrintToString(addrs);
    EXPECT_EQ(mtu_of(kTap), 1500);
    EXPECT_NE(proc_net("route").find(std::string(kTap) + "\t00000000\t0101FEA9\t0003"), std::string::npos)
        << proc_net("route");
    // ::/0 via fe80::1 on the TAP.
    EXPECT_NE(proc_net("ipv6_route").find("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                                          "fe800000000000000000000000000001"),
              std::string::npos)
        << proc_net("ipv6_route");
    // No duplicate address detection: the address is usable at once, not tentative (flags, the
    // fifth field of if_inet6, without IFA_F_TENTATIVE).
    std::istringstream lines(proc_net("if_inet6"));
    std::string address, index, length, scope, flags, name;
    bool found = false;
    while (lines >> address >> index >> length >> scope >> flags >> name) {
      if (address != "fd000000000000000000000000000002") continue;
      found = true;
      EXPECT_EQ(std::stoul(flags, nullptr, 16) & IFA_F_TENTATIVE, 0u) << "flags " << flags;
    }
    EXPECT_TRUE(found) << proc_net("if_inet6");
  });
}

TEST_F(NetlinkConfig, ConfiguringTwiceIsHarmless) {
  in_new_netns([] {
    UniqueFd tap = testing::make_tap(kTap, kMac);
    ASSERT_TRUE(tap);
    ASSERT_TRUE(configure_link(plan_of(spec())).ok());
    auto again = configure_link(plan_of(spec()));
    EXPECT_TRUE(again.ok()) << again.error().message;
  });
}

TEST_F(NetlinkConfig, MissingMacNamesTheLinksThereAre) {
  in_new_netns([] {
    UniqueFd tap = testing::make_tap(kTap, kMac);
    ASSERT_TRUE(tap);
    auto n = spec();
    n.mac = "02:fc:00:00:00:99";
    auto link = configure_link(plan_of(n));
    ASSERT_FALSE(link.ok());
    const std::string& m = link.error().message;
    EXPECT_NE(m.find("no network interface with MAC 02:fc:00:00:00:99"), std::string::npos) << m;
    EXPECT_NE(m.find("kt0 02:fc:00:00:00:01"), std::string::npos) << m;
  });
}

TEST_F(NetlinkConfig, ApplyNetworkErrorsSayNetwork) {
  in_new_netns([] {
    // No TAP at all: the step fails with a message, nothing crashes.
    auto r = apply_network(spec(), "/nonexistent-etc", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind("network: ", 0), 0u) << r.error().message;
    auto none = apply_network(protocol::NetworkSpec{}, "/nonexistent-etc", "");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
  });
}

TEST_F(NetlinkConfig, RestoreRefreshFlushesNeighboursAndAnnounces) {
  in_new_netns([] {
    UniqueFd tap = testing::make_tap(kTap, kMac);
    ASSERT_TRUE(tap);
    auto link = configure_link(plan_of(spec()));
    ASSERT_TRUE(link.ok()) << link.error().message;
    add_arp(kTap, "10.0.0.1", false);
    add_arp(kTap, "192.0.2.7", true);
    ASSERT_NE(proc_net("arp").find("10.0.0.1 "), std::string::npos) << proc_net("arp");

    auto summary = refresh_after_restore(*link);
    ASSERT_TRUE(summary.ok()) << summary.error().message;
    EXPECT_NE(summary->find("1 neighbour entries flushed"), std::string::npos) << *summary;
    std::string arp = proc_net("arp");
    EXPECT_EQ(arp.find("10.0.0.1 "), std::string::npos) << "the snapshot's entry survived:\n" << arp;
    EXPECT_NE(arp.find("192.0.2.7 "), std::string::npos) << "a permanent entry went:\n" << arp;
    // The addresses stay.
    EXPECT_TRUE(has(addresses_of(kTap, nullptr), "10.0.0.2/30"));

    // The announcement leaves through the TAP.
    EXPECT_EQ(testing::wait_for_announcement(tap.get(), kMac, *protocol::parse_ip("10.0.0.2"), 5000), "");
  });
}

}  // namespace
}  // namespace kiln::agent::net

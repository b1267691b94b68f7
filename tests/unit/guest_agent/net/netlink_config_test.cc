// The netlink side for real, in a throwaway network namespace per test (root): a TAP device
// stands in for the guest's virtio-net NIC; configure_link finds it by MAC and sets MTU, up,
// addresses and default routes; the restore refresh flushes its neighbours and sends a
// gratuitous ARP, read back from the TAP. Results are checked through the kernel's own views
// (getifaddrs, SIOCGIFMTU, /proc/thread-self/net), not through libnl.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"
#include "guest-agent/net/guest_network.h"
#include "guest-agent/net/netlink_config.h"

namespace kiln::agent::net {
namespace {

constexpr char kTap[] = "kt0";
const protocol::MacAddress kMac = {0x02, 0xfc, 0x00, 0x00, 0x00, 0x01};

// Runs `body` on a thread of its own that first moves into a new, empty network namespace.
// Namespaces are per thread, so the test process's network is never touched, and the
// namespace (with every device made in it) goes away when the thread ends.
void in_new_netns(const std::function<void()>& body) {
  std::thread t([&body] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    body();
  });
  t.join();
}

// A TAP device with MAC kMac; frames the kernel sends out of it are read from the fd.
UniqueFd make_tap() {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    ADD_FAILURE() << "open /dev/net/tun: " << std::strerror(errno);
    return fd;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, kTap, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    ADD_FAILURE() << "TUNSETIFF: " << std::strerror(errno);
    return UniqueFd();
  }
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq hw{};
  std::strncpy(hw.ifr_name, kTap, IFNAMSIZ - 1);
  hw.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(hw.ifr_hwaddr.sa_data, kMac.data(), kMac.size());
  if (::ioctl(s.get(), SIOCSIFHWADDR, &hw) != 0) ADD_FAILURE() << "SIOCSIFHWADDR: " << std::strerror(errno);
  return fd;
}

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

std::string proc_net(const std::string& file) {
  std::ifstream f("/proc/thread-self/net/" + file);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

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

// Adds an ARP entry (SIOCSARP): stale unless `permanent`.
void add_arp(const char* ip, bool permanent) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  arpreq r{};
  auto* pa = reinterpret_cast<sockaddr_in*>(&r.arp_pa);
  pa->sin_family = AF_INET;
  ::inet_pton(AF_INET, ip, &pa->sin_addr);
  r.arp_ha.sa_family = ARPHRD_ETHER;
  std::memset(r.arp_ha.sa_data, 0x42, 6);
  r.arp_flags = ATF_COM | (permanent ? ATF_PERM : 0);
  std::strncpy(r.arp_dev, kTap, sizeof(r.arp_dev) - 1);
  if (::ioctl(s.get(), SIOCSARP, &r) != 0) ADD_FAILURE() << "SIOCSARP " << ip << ": " << std::strerror(errno);
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
    UniqueFd tap = make_tap();
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
    UniqueFd tap = make_tap();
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
    UniqueFd tap = make_tap();
    ASSERT_TRUE(tap);
    ASSERT_TRUE(configure_link(plan_of(spec())).ok());
    auto again = configure_link(plan_of(spec()));
    EXPECT_TRUE(again.ok()) << again.error().message;
  });
}

TEST_F(NetlinkConfig, MissingMacNamesTheLinksThereAre) {
  in_new_netns([] {
    UniqueFd tap = make_tap();
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
    UniqueFd tap = make_tap();
    ASSERT_TRUE(tap);
    auto link = configure_link(plan_of(spec()));
    ASSERT_TRUE(link.ok()) << link.error().message;
    add_arp("10.0.0.1", false);
    add_arp("192.0.2.7", true);
    ASSERT_NE(proc_net("arp").find("10.0.0.1 "), std::string::npos) << proc_net("arp");

    auto summary = refresh_after_restore(*link);
    ASSERT_TRUE(summary.ok()) << summary.error().message;
    EXPECT_NE(summary->find("1 neighbour entries flushed"), std::string::npos) << *summary;
    std::string arp = proc_net("arp");
    EXPECT_EQ(arp.find("10.0.0.1 "), std::string::npos) << "the snapshot's entry survived:\n" << arp;
    EXPECT_NE(arp.find("192.0.2.7 "), std::string::npos) << "a permanent entry went:\n" << arp;
    // The addresses stay.
    EXPECT_TRUE(has(addresses_of(kTap, nullptr), "10.0.0.2/30"));

    // The announcement leaves through the TAP: broadcast, from our MAC, ARP request 10.0.0.2 -> 10.0.0.2.
    const std::uint8_t want_arp[] = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 0x02, 0xfc, 0x00, 0x00, 0x00, 0x01,
                                     10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      pollfd p{tap.get(), POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0) break;
      std::uint8_t frame[2048];
      ssize_t n = ::read(tap.get(), frame, sizeof(frame));
      // Other frames (IPv6 router solicitations, say) are skipped.
      if (n < 14 + static_cast<ssize_t>(sizeof(want_arp)) || frame[12] != 0x08 || frame[13] != 0x06) continue;
      bool broadcast = std::all_of(frame, frame + 6, [](std::uint8_t b) { return b == 0xff; });
      EXPECT_TRUE(broadcast);
      EXPECT_EQ(std::memcmp(frame + 6, kMac.data(), 6), 0);
      EXPECT_EQ(std::memcmp(frame + 14, want_arp, sizeof(want_arp)), 0);
      seen = true;
    }
    EXPECT_TRUE(seen) << "no gratuitous ARP came out of the TAP within 5 s";
  });
}

}  // namespace
}  // namespace kiln::agent::net

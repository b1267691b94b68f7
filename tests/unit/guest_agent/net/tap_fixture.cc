// Network namespace, TAP and ARP helpers for kiln-init's network tests (root only).
#include "tests/unit/guest_agent/net/tap_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

namespace kiln::agent::net::testing {

namespace {

void on_thread_in(const std::function<bool()>& enter, const std::function<void()>& body) {
  std::thread t([&enter, &body] {
    if (enter()) body();
  });
  t.join();
}

}  // namespace

void in_new_netns(const std::function<void()>& body) {
  on_thread_in(
      [] {
        if (::unshare(CLONE_NEWNET) == 0) return true;
        ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
        return false;
      },
      body);
}

void in_netns_of(pid_t pid, const std::function<void()>& body) {
  on_thread_in(
      [pid] {
        std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
        UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (ns && ::setns(ns.get(), CLONE_NEWNET) == 0) return true;
        ADD_FAILURE() << "entering " << path << ": " << std::strerror(errno);
        return false;
      },
      body);
}

UniqueFd make_tap(const std::string& name, const protocol::MacAddress& mac) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    ADD_FAILURE() << "open /dev/net/tun: " << std::strerror(errno);
    return fd;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    ADD_FAILURE() << "TUNSETIFF " << name << ": " << std::strerror(errno);
    return UniqueFd();
  }
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq hw{};
  std::strncpy(hw.ifr_name, name.c_str(), IFNAMSIZ - 1);
  hw.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(hw.ifr_hwaddr.sa_data, mac.data(), mac.size());
  if (::ioctl(s.get(), SIOCSIFHWADDR, &hw) != 0) {
    ADD_FAILURE() << "SIOCSIFHWADDR " << name << ": " << std::strerror(errno);
    return UniqueFd();
  }
  return fd;
}

void add_arp(const std::string& dev, const std::string& ip, bool permanent) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  arpreq r{};
  auto* pa = reinterpret_cast<sockaddr_in*>(&r.arp_pa);
  pa->sin_family = AF_INET;
  ASSERT_EQ(::inet_pton(AF_INET, ip.c_str(), &pa->sin_addr), 1) << ip;
  r.arp_ha.sa_family = ARPHRD_ETHER;
  std::memset(r.arp_ha.sa_data, 0x42, 6);
  r.arp_flags = ATF_COM | (permanent ? ATF_PERM : 0);
  std::strncpy(r.arp_dev, dev.c_str(), sizeof(r.arp_dev) - 1);
  ASSERT_EQ(::ioctl(s.get(), SIOCSARP, &r), 0) << "SIOCSARP " << ip << ": " << std::strerror(errno);
}

std::string wait_for_announcement(int tap_fd, const protocol::MacAddress& mac, const protocol::IpAddress& ip,
                                  int timeout_ms) {
  // Ethernet: broadcast destination, source `mac`, type ARP; then the ARP request (RFC 826).
  std::uint8_t want[14 + 28] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x08, 0x06,
                                0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01};
  std::memcpy(want + 6, mac.data(), 6);
  std::memcpy(want + 22, mac.data(), 6);
  std::memcpy(want + 28, ip.bytes.data(), 4);
  std::memcpy(want + 38, ip.bytes.data(), 4);  // target MAC (32..37) stays zero
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::size_t other_arp = 0;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{tap_fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    std::uint8_t frame[2048];
    ssize_t n = ::read(tap_fd, frame, sizeof(frame));
    // Other frames (IPv6 router solicitations, say) are skipped.
    if (n < static_cast<ssize_t>(sizeof(want)) || frame[12] != 0x08 || frame[13] != 0x06) continue;
    if (std::equal(want, want + sizeof(want), frame)) return "";
    ++other_arp;
  }
  return "no ARP announcement of " + protocol::format_ip(ip) + " within " + std::to_string(timeout_ms) + " ms (" +
         std::to_string(other_arp) + " other ARP frames)";
}

}  // namespace kiln::agent::net::testing

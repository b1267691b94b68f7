// The egress rules on real packets (root only): four throwaway namespaces stand in for a guest,
// its instance namespace, the host and a service network; real TCP connections from the
// "guest" show which destinations answer and which fail at once, and that a refused one never
// reached its target (the target's listener has nothing queued).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "common/unique_fd.h"
#include "src/net/egress_rules.h"
#include "src/net/nftables.h"
#include "tests/support/process.h"

namespace kiln::net {
namespace {

IpPrefix cidr(const char* text) { return *protocol::parse_ip_prefix(text, protocol::IpFamily::kV4); }
IpAddress ip(const char* text) { return *protocol::parse_ip(text, protocol::IpFamily::kV4); }

constexpr int kConnectTimeoutMs = 5000;

// Runs `body` on a thread that has entered the named namespace (ip netns add NAME).
void in_netns(const std::string& name, const std::function<void()>& body) {
  std::thread t([&] {
    std::string path = "/run/netns/" + name;
    UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "entering " << path << ": " << std::strerror(errno);
      return;
    }
    body();
  });
  t.join();
}

sockaddr_in address_of(const char* text, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, text, &a.sin_addr);
  return a;
}

// A socket of `type` created inside namespace `ns` (it stays there whatever thread uses it).
UniqueFd socket_in(const std::string& ns, int type) {
  UniqueFd fd;
  in_netns(ns, [&] { fd = UniqueFd(::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)); });
  EXPECT_TRUE(fd.valid()) << std::strerror(errno);
  return fd;
}

UniqueFd listener_in(const std::string& ns, std::uint16_t port) {
  UniqueFd fd = socket_in(ns, SOCK_STREAM);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in any = address_of("0.0.0.0", port);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd.get(), 16), 0) << std::strerror(errno);
  return fd;
}

// Connects from the guest: 0, or the errno the connection failed with (ETIMEDOUT after the
// deadline: a silent drop, which the rules must never produce).
int connect_from_guest(const std::string& guest_ns, const char* to, std::uint16_t port) {
  UniqueFd fd = socket_in(guest_ns, SOCK_STREAM);
  sockaddr_in a = address_of(to, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, kConnectTimeoutMs) != 1) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// The source address of the one connection queued on `listener` ("" when none is).
std::string accepted_peer(const UniqueFd& listener) {
  sockaddr_in peer{};
  socklen_t len = sizeof(peer);
  UniqueFd c(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  if (!c) return "";
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
  return text;
}

class EgressTopology : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, veths, nftables)";
    std::string tag = "kiln-egress-" + std::to_string(::getpid()) + "-";
    guest_ = tag + "guest";
    instance_ = tag + "inst";
    host_ = tag + "host";
    service_ = tag + "svc";
    for (const auto* ns : {&guest_, &instance_, &host_, &service_}) {
      // A namespace of a crashed run with the same pid would make "add" fail.
      kiln::testing::run({"ip", "netns", "del", *ns}, ::testing::TempDir() + "kiln-egress-ip.out", 30000);
      ASSERT_TRUE(run_ip({"netns", "add", *ns}));
      made_.push_back(*ns);
      ASSERT_TRUE(run_ip({"-n", *ns, "link", "set", "lo", "up"}));
    }
    // guest eth0 <-> instance kt0 (a veth standing in for the TAP: the rules match its name).
    ASSERT_TRUE(run_ip({"link", "add", "eth0", "netns", guest_, "type", "veth", "peer", "name", "kt0", "netns", instance_}));
    // instance kv-ns <-> host kv0: the per-instance veth pair.
    ASSERT_TRUE(run_ip({"link", "add", "kv0", "netns", host_, "type", "veth", "peer", "name", "kv-ns", "netns", instance_}));
    // host up0 <-> service up1: "the outside", with a public, a denied and a private subnet.
    ASSERT_TRUE(run_ip({"link", "add", "up0", "netns", host_, "type", "veth", "peer", "name", "up1", "netns", service_}));
    addr(guest_, "eth0", "172.16.0.2/30");
    addr(instance_, "kt0", "172.16.0.1/30");
    addr(instance_, "kv-ns", "10.200.0.6/30");
    addr(host_, "kv0", "10.200.0.5/30");
    for (const char* net : {"198.51.100", "203.0.113", "192.168.77"}) {
      addr(host_, "up0", std::string(net) + ".1/24");
      addr(service_, "up1", std::string(net) + ".2/24");
    }
    ASSERT_TRUE(run_ip({"-n", guest_, "route", "add", "default", "via", "172.16.0.1"}));
    ASSERT_TRUE(run_ip({"-n", instance_, "route", "add", "default", "via", "10.200.0.5"}));
    auto host_rules = render_host_rules(kDefaultInstanceRange);
    ASSERT_TRUE(host_rules.ok());
    write_sysctls(instance_, instance_sysctls());
    write_sysctls(host_, host_rules->sysctls);
    apply_in(host_, host_rules->ruleset);
  }

  void TearDown() override {
    for (const auto& ns : made_) run_ip({"netns", "del", ns});
  }

  static bool run_ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    std::string out = ::testing::TempDir() + "kiln-egress-ip.out";
    int rc = kiln::testing::run(args, out, 30000);
    if (rc != 0) {
      std::string cmd;
      for (const auto& a : args) cmd += a + " ";
      ADD_FAILURE() << cmd << "-> " << rc << ": " << kiln::testing::slurp(out);
    }
    return rc == 0;
  }

  void addr(const std::string& ns, const std::string& dev, const std::string& prefix) {
    ASSERT_TRUE(run_ip({"-n", ns, "addr", "add", prefix, "dev", dev}));
    ASSERT_TRUE(run_ip({"-n", ns, "link", "set", dev, "up"}));
  }

  // net.* sysctls are per namespace: written from a thread inside it.
  static void write_sysctls(const std::string& ns, const std::vector<Sysctl>& sysctls) {
    in_netns(ns, [&] {
      for (const auto& s : sysctls) {
        std::string path = s.key;
        for (char& c : path) c = c == '.' ? '/' : c;
        std::ofstream out("/proc/sys/" + path);
        out << s.value;
        out.flush();
        EXPECT_TRUE(out.good()) << path;
      }
    });
  }

  void apply_in(const std::string& ns, const std::string& ruleset) {
    in_netns(ns, [&] {
      Status applied = nft::apply(ruleset);
      ASSERT_TRUE(applied.ok()) << applied.error().message;
    });
  }

  void apply_policy(const NetworkSettings& settings) {
    auto text = render_instance_ruleset(resolve_policy(settings, {}), {"kt0", "kv-ns", ip("10.200.0.6")});
    ASSERT_TRUE(text.ok()) << text.error().message;
    apply_in(instance_, *text);
  }

  std::string guest_, instance_, host_, service_;
  std::vector<std::string> made_;
};

TEST_F(EgressTopology, DefaultEgressReachesPublicOnlyAndRefusalsAreClean) {
  apply_policy({.deny = {cidr("203.0.113.0/24")}, .dns = {ip("192.168.77.2")}});
  UniqueFd service = listener_in(service_, 8080);
  UniqueFd host_port = listener_in(host_, 8900);  // "kilnd's API" on every host address
  UniqueFd netns_port = listener_in(instance_, 8901);

  // A public destination answers, and sees the host's address (SNAT, then masquerade).
  EXPECT_EQ(connect_from_guest(guest_, "198.51.100.2", 8080), 0);
  EXPECT_EQ(accepted_peer(service), "198.51.100.1");

  // Each refusal is immediate (a reset, not a timeout) and nothing reaches the target.
  EXPECT_EQ(connect_from_guest(guest_, "203.0.113.2", 8080), ECONNREFUSED) << "the function's deny list";
  EXPECT_EQ(connect_from_guest(guest_, "192.168.77.2", 8080), ECONNREFUSED) << "a private range";
  EXPECT_EQ(accepted_peer(service), "");
  EXPECT_EQ(connect_from_guest(guest_, "198.51.100.1", 8900), ECONNREFUSED) << "the host itself";
  EXPECT_EQ(connect_from_guest(guest_, "10.200.0.5", 8900), ECONNREFUSED) << "the host end of the veth";
  EXPECT_EQ(accepted_peer(host_port), "");
  EXPECT_EQ(connect_from_guest(guest_, "172.16.0.1", 8901), ECONNREFUSED) << "its own namespace";
  EXPECT_EQ(connect_from_guest(guest_, "10.200.0.6", 8901), ECONNREFUSED) << "its own namespace";
  EXPECT_EQ(accepted_peer(netns_port), "");
  EXPECT_EQ(connect_from_guest(guest_, "169.254.169.254", 80), ECONNREFUSED) << "the metadata address";

  // DNS reaches the configured server although it is in a private range.
  UniqueFd dns = socket_in(service_, SOCK_DGRAM);
  sockaddr_in dns_port = address_of("0.0.0.0", 53);
  ASSERT_EQ(::bind(dns.get(), reinterpret_cast<sockaddr*>(&dns_port), sizeof(dns_port)), 0);
  UniqueFd query = socket_in(guest_, SOCK_DGRAM);
  sockaddr_in server = address_of("192.168.77.2", 53);
  ASSERT_EQ(::sendto(query.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&server), sizeof(server)), 1);
  pollfd p{dns.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, kConnectTimeoutMs), 1);
  char byte = 0;
  EXPECT_EQ(::recv(dns.get(), &byte, 1, 0), 1);
}

TEST_F(EgressTopology, ModeNoneReachesOnlyTheAllowList) {
  apply_policy({.mode = NetworkMode::kNone, .allow = {cidr("192.168.77.0/24")}});
  UniqueFd service = listener_in(service_, 8080);
  EXPECT_EQ(connect_from_guest(guest_, "192.168.77.2", 8080), 0) << "an allowed private subnet";
  EXPECT_EQ(accepted_peer(service), "192.168.77.1");
  EXPECT_EQ(connect_from_guest(guest_, "198.51.100.2", 8080), ECONNREFUSED) << "public, but mode none";
  EXPECT_EQ(accepted_peer(service), "");

  // The same namespace, a new policy: applied atomically over the old one.
  apply_policy({.allow = {cidr("192.168.77.0/24")}, .deny = {cidr("192.168.77.2/32")}});
  EXPECT_EQ(connect_from_guest(guest_, "192.168.77.2", 8080), ECONNREFUSED) << "deny wins over allow";
  EXPECT_EQ(connect_from_guest(guest_, "198.51.100.2", 8080), 0);
  EXPECT_EQ(accepted_peer(service), "198.51.100.1");
}

}  // namespace
}  // namespace kiln::net

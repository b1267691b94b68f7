// The real per-instance plumbing, as root, inside a forked child that has its own network
// namespace (the test's "host") and a private mount namespace (the netns bind mounts vanish with
// it): what create() builds on each side, that traffic flows, destroy(), undo on failure, reap().
#include "src/net/instance_plumbing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "common/unique_fd.h"
#include "src/net/links.h"
#include "src/net/tap_device.h"
#include "tests/support/process.h"

namespace kiln::net {
namespace {

using protocol::format_ip;
using protocol::format_ip_prefix;
using protocol::IpPrefix;

constexpr uid_t kJailUid = 12345;
constexpr gid_t kJailGid = 12346;
constexpr int kChildTimeoutMs = 60000;

// Runs `body` in a forked child with fresh network and mount namespaces; the test fails when
// the child's assertions did (their messages are printed by the child).
void in_throwaway_host(const std::function<void()>& body) {
  std::fflush(stdout);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
      std::perror("unshare");
      ::_exit(2);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      std::perror("mount / private");
      ::_exit(3);
    }
    body();
    std::fflush(stdout);
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  EXPECT_EQ(kiln::testing::wait_exit(pid, kChildTimeoutMs), 0) << "the test's child failed (see above)";
}

class PlumbingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, veth, TAP)";
    if (::access(kTunDevicePath, R_OK | W_OK) != 0) GTEST_SKIP() << "no usable " << kTunDevicePath;
    char tmpl[] = "/tmp/kiln-netplumb-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    netns_dir_ = root_ + "/netns";
  }
  void TearDown() override {
    if (!root_.empty()) std::filesystem::remove_all(root_);
  }

  PlumbingSpec spec(const std::string& id, AddressLease slot) {
    return PlumbingSpec{netns_dir_, id, kJailUid, kJailGid, std::move(slot), kDefaultMtu};
  }

  std::string root_;
  std::string netns_dir_;
};

RouteSocket open_route_socket() {
  auto rt = RouteSocket::open();
  EXPECT_TRUE(rt.ok()) << rt.error().message;
  return std::move(rt).value();
}

std::optional<LinkInfo> find_link(RouteSocket& rt, const std::string& name) {
  auto link = rt.find_link(name);
  EXPECT_TRUE(link.ok()) << link.error().message;
  return link.ok() ? *link : std::nullopt;
}

std::vector<std::string> addresses(RouteSocket& rt, const std::string& link) {
  auto list = rt.ipv4_addresses(link);
  EXPECT_TRUE(list.ok()) << list.error().message;
  std::vector<std::string> out;
  if (list.ok()) {
    for (const IpPrefix& p : *list) out.push_back(format_ip_prefix(p));
  }
  return out;
}

// Attaches to TAP `name` as uid/gid (no capabilities) in the calling thread's netns, as the
// jailed VMM does: 0 on success, else the errno of TUNSETIFF (200+ when a step before failed).
// /dev/net/tun is opened before the privileges go (the jail's own node may have other modes than
// this host's): TUNSETIFF checks the caller's credentials at the ioctl.
int attach_as(const char* name, uid_t uid, gid_t gid) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(kTunDevicePath, O_RDWR | O_CLOEXEC);
    if (fd < 0) ::_exit(201);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) ::_exit(200);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    ::_exit(::ioctl(fd, TUNSETIFF, &ifr) == 0 ? 0 : errno);
  }
  return pid < 0 ? -1 : kiln::testing::wait_exit(pid, kChildTimeoutMs);
}

sockaddr_in socket_address(const protocol::IpAddress& ip, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  std::memcpy(&sa.sin_addr, ip.bytes.data(), 4);
  return sa;
}

// A TCP listener on ip:0 (non-blocking, so a missing connection fails accept instead of hanging).
UniqueFd listen_on(const protocol::IpAddress& ip, std::uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in sa = socket_address(ip, 0);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  socklen_t len = sizeof(sa);
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

// Connects from the calling thread's netns (with a deadline; a missing route fails fast).
Status connect_to(const protocol::IpAddress& ip, std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval deadline{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &deadline, sizeof(deadline));
  sockaddr_in sa = socket_address(ip, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return errno_error("connect to " + format_ip(ip));
  }
  return ok_status();
}

// The peer address of the connection waiting on `listener` ("" when none is).
std::string accept_peer(int listener) {
  sockaddr_in peer{};
  socklen_t len = sizeof(peer);
  UniqueFd conn(::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  if (!conn) return "";
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
  return text;
}

std::string thread_netns() { return std::filesystem::read_symlink("/proc/thread-self/ns/net").string(); }

long micros(std::chrono::nanoseconds d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

TEST_F(PlumbingTest, CreateBuildsBothSidesAndTrafficFlows) {
  in_throwaway_host([&] {
    auto pool = AddressPool::create(kDefaultInstanceRange);
    ASSERT_TRUE(pool.ok());
    auto lease = pool->acquire();
    ASSERT_TRUE(lease.ok());
    const std::string host_ns = thread_netns();

    auto created = InstancePlumbing::create(spec("fn-1-abc", std::move(lease).value()));
    ASSERT_TRUE(created.ok()) << created.error().message;
    InstancePlumbing& p = *created;
    EXPECT_EQ(p.netns_path(), netns_dir_ + "/fn-1-abc");
    EXPECT_EQ(p.tap_name(), "tap0");
    EXPECT_EQ(p.host_link_name(), "kv0");
    EXPECT_EQ(format_ip_prefix(p.host_end()), "10.200.0.1/30");
    EXPECT_EQ(format_ip_prefix(p.instance_end()), "10.200.0.2/30");
    EXPECT_EQ(format_ip(kGuestAddress.address), "172.16.0.2");
    EXPECT_EQ(format_ip(kTapAddress.address), "172.16.0.1");
    EXPECT_GT(p.setup_duration().count(), 0);

    // Inside the instance netns.
    Status inside = run_in_netns(p.netns_path(), [&]() -> Status {
      EXPECT_NE(thread_netns(), host_ns);
      RouteSocket rt = open_route_socket();
      auto lo = find_link(rt, "lo");
      EXPECT_TRUE(lo && lo->up);
      auto tap = find_link(rt, "tap0");
      EXPECT_TRUE(tap.has_value() && tap->up && tap->mtu == 1500u);
      EXPECT_EQ(addresses(rt, "tap0"), std::vector<std::string>{"172.16.0.1/30"});
      auto ns_end = find_link(rt, "kv-ns");
      EXPECT_TRUE(ns_end.has_value() && ns_end->up && ns_end->mtu == 1500u);
      EXPECT_EQ(addresses(rt, "kv-ns"), std::vector<std::string>{"10.200.0.2/30"});
      auto gateway = rt.ipv4_default_gateway();
      EXPECT_TRUE(gateway.ok() && gateway->has_value() && format_ip(**gateway) == "10.200.0.1");
      // The jail's user and group can attach without privileges; with an owner and a group
      // set, the tun driver wants both to match.
      EXPECT_EQ(attach_as("tap0", kJailUid, kJailGid), 0);
      EXPECT_EQ(attach_as("tap0", kJailUid, kJailGid + 100), EPERM);
      EXPECT_EQ(attach_as("tap0", kJailUid + 100, kJailGid), EPERM);
      EXPECT_EQ(attach_as("tap0", kJailUid + 100, kJailGid + 100), EPERM);
      return ok_status();
    });
    EXPECT_TRUE(inside.ok()) << inside.error().message;
    EXPECT_EQ(thread_netns(), host_ns);  // run_in_netns never moves the caller's thread

    // The host side.
    RouteSocket host = open_route_socket();
    auto kv0 = find_link(host, "kv0");
    ASSERT_TRUE(kv0.has_value());
    EXPECT_TRUE(kv0->up);
    EXPECT_EQ(kv0->mtu, 1500u);
    EXPECT_EQ(addresses(host, "kv0"), std::vector<std::string>{"10.200.0.1/30"});
    EXPECT_FALSE(find_link(host, "tap0").has_value());
    EXPECT_FALSE(find_link(host, "kv-ns").has_value());

    // TCP from the instance netns to the host end (connected route) and to a host address
    // outside the /30 (through the default route).
    std::uint16_t port = 0;
    UniqueFd listener = listen_on(p.host_end().address, &port);
    Status dialled = run_in_netns(p.netns_path(), [&] { return connect_to(p.host_end().address, port); });
    EXPECT_TRUE(dialled.ok()) << dialled.error().message;
    EXPECT_EQ(accept_peer(listener.get()), "10.200.0.2");
    auto far = protocol::parse_ip("192.0.2.7");
    ASSERT_TRUE(far.ok());
    ASSERT_TRUE(host.set_link_up("lo").ok());
    ASSERT_TRUE(host.add_ipv4_address("lo", IpPrefix{*far, 32}).ok());
    UniqueFd far_listener = listen_on(*far, &port);
    dialled = run_in_netns(p.netns_path(), [&] { return connect_to(*far, port); });
    EXPECT_TRUE(dialled.ok()) << dialled.error().message;
    EXPECT_EQ(accept_peer(far_listener.get()), "10.200.0.2");

    // A second instance: its own netns with the same TAP and guest link, the next slot.
    auto lease2 = pool->acquire();
    ASSERT_TRUE(lease2.ok());
    auto second = InstancePlumbing::create(spec("fn-2-def", std::move(lease2).value()));
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_EQ(second->host_link_name(), "kv1");
    EXPECT_EQ(format_ip_prefix(second->instance_end()), "10.200.0.6/30");
    EXPECT_EQ(pool->in_use(), 2u);

    const std::string path = p.netns_path();
    const auto start = std::chrono::steady_clock::now();
    Status destroyed = p.destroy();
    const auto destroy_time = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(destroyed.ok()) << destroyed.error().message;
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    EXPECT_FALSE(find_link(host, "kv0").has_value());
    EXPECT_TRUE(find_link(host, "kv1").has_value());
    EXPECT_EQ(pool->in_use(), 1u);
    EXPECT_TRUE(p.destroy().ok());  // idempotent
    std::printf("[ timing ] plumbing create %ld us (second %ld us), destroy %ld us\n", micros(p.setup_duration()),
                micros(second->setup_duration()), micros(destroy_time));

    second = InstancePlumbing();  // move-assigning destroys the old one
    EXPECT_FALSE(find_link(host, "kv1").has_value());
    EXPECT_EQ(pool->in_use(), 0u);
    auto left = host.list_links("kv");
    ASSERT_TRUE(left.ok());
    EXPECT_TRUE(left->empty());
    EXPECT_TRUE(std::filesystem::is_empty(netns_dir_));
  });
}

TEST_F(PlumbingTest, FailedCreateUndoesEverythingAndKeepsOthersLinks) {
  in_throwaway_host([&] {
    auto pool = AddressPool::create("10.201.0.0/24");
    ASSERT_TRUE(pool.ok());
    // Someone else's kv0 is in the way: the veth step fails.
    RouteSocket host = open_route_socket();
    auto self = open_netns("/proc/self/ns/net");
    ASSERT_TRUE(self.ok());
    ASSERT_TRUE(host.create_veth("kv0", "other", self->get(), 1500).ok());

    auto lease = pool->acquire();
    ASSERT_TRUE(lease.ok());
    auto created = InstancePlumbing::create(spec("fn-1-abc", std::move(lease).value()));
    ASSERT_FALSE(created.ok());
    EXPECT_NE(created.error().message.find("instance network fn-1-abc: creating veth kv0/kv-ns"), std::string::npos)
        << created.error().message;
    EXPECT_EQ(pool->in_use(), 1u);  // slot 0 stays taken: its link name is someone else's
    EXPECT_TRUE(std::filesystem::is_empty(netns_dir_));
    EXPECT_TRUE(find_link(host, "kv0").has_value());  // not ours: left alone
    EXPECT_TRUE(find_link(host, "other").has_value());
    auto next = InstancePlumbing::create(spec("fn-2-def", pool->acquire().value()));
    ASSERT_TRUE(next.ok()) << next.error().message;
    EXPECT_EQ(next->host_link_name(), "kv1");
    next = InstancePlumbing();
    EXPECT_EQ(pool->in_use(), 1u);

    auto bad_name = InstancePlumbing::create(spec("../escape", pool->acquire().value()));
    ASSERT_FALSE(bad_name.ok());
    EXPECT_NE(bad_name.error().message.find("is not valid"), std::string::npos);
    EXPECT_EQ(pool->in_use(), 1u);  // the lease went back
  });
}

TEST_F(PlumbingTest, ReapRemovesWhatACrashLeft) {
  in_throwaway_host([&] {
    auto pool = AddressPool::create(kDefaultInstanceRange);
    ASSERT_TRUE(pool.ok());
    std::vector<std::string> paths;
    for (const char* id : {"fn-1-aaa", "fn-2-bbb"}) {
      auto created = InstancePlumbing::create(spec(id, pool->acquire().value()));
      ASSERT_TRUE(created.ok()) << created.error().message;
      paths.push_back(created->netns_path());
      created->release();  // as if kilnd was killed
    }
    RouteSocket host = open_route_socket();
    EXPECT_TRUE(find_link(host, "kv0").has_value());
    EXPECT_TRUE(find_link(host, "kv1").has_value());
    EXPECT_EQ(::access(paths[0].c_str(), F_OK), 0);
    // A link that merely starts with the prefix is not kilnd's.
    auto self = open_netns("/proc/self/ns/net");
    ASSERT_TRUE(self.ok());
    ASSERT_TRUE(host.create_veth("kvm-a", "kvm-b", self->get(), 1500).ok());

    auto report = reap(netns_dir_);
    ASSERT_TRUE(report.ok()) << report.error().message;
    std::sort(report->host_links.begin(), report->host_links.end());
    std::sort(report->netns_files.begin(), report->netns_files.end());
    EXPECT_EQ(report->host_links, (std::vector<std::string>{"kv0", "kv1"}));
    EXPECT_EQ(report->netns_files, paths);
    EXPECT_FALSE(find_link(host, "kv0").has_value());
    EXPECT_FALSE(find_link(host, "kv1").has_value());
    EXPECT_TRUE(find_link(host, "kvm-a").has_value());
    EXPECT_TRUE(std::filesystem::is_empty(netns_dir_));

    auto again = reap(netns_dir_);  // nothing left: an empty report
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->host_links.empty());
    EXPECT_TRUE(again->netns_files.empty());
    auto no_dir = reap(root_ + "/missing");
    EXPECT_TRUE(no_dir.ok());
  });
}

TEST_F(PlumbingTest, EachLinkPrefixReapsOnlyItsOwn) {
  in_throwaway_host([&] {
    // Two kilnds on one host: the default one (kv, 10.200/16) and one with prefix "kb" in its
    // own range and namespace directory.
    auto pool = AddressPool::create(kDefaultInstanceRange);
    auto other_pool = AddressPool::create("10.201.0.0/16");
    ASSERT_TRUE(pool.ok() && other_pool.ok());
    const std::string other_dir = root_ + "/other-netns";
    auto mine = InstancePlumbing::create(spec("fn-1-aaa", pool->acquire().value()));
    ASSERT_TRUE(mine.ok()) << mine.error().message;
    PlumbingSpec other_spec{other_dir, "fn-1-aaa", kJailUid, kJailGid, other_pool->acquire().value(), kDefaultMtu, "kb"};
    auto other = InstancePlumbing::create(std::move(other_spec));
    ASSERT_TRUE(other.ok()) << other.error().message;
    EXPECT_EQ(other->host_link_name(), "kb0");
    EXPECT_EQ(format_ip_prefix(other->host_end()), "10.201.0.1/30");
    mine->release();
    other->release();

    auto report = reap(other_dir, "kb");
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_EQ(report->host_links, std::vector<std::string>{"kb0"});
    EXPECT_EQ(report->netns_files, std::vector<std::string>{other_dir + "/fn-1-aaa"});
    RouteSocket host = open_route_socket();
    EXPECT_FALSE(find_link(host, "kb0").has_value());
    EXPECT_TRUE(find_link(host, "kv0").has_value());  // the default kilnd's, untouched
    EXPECT_FALSE(std::filesystem::is_empty(netns_dir_));
    auto rest = reap(netns_dir_);
    ASSERT_TRUE(rest.ok()) << rest.error().message;
    EXPECT_EQ(rest->host_links, std::vector<std::string>{"kv0"});
  });
}

// The optional fields of the mountinfo line whose mount point is `path`, or "none" without one.
std::string mount_propagation(const std::string& path) {
  std::string text = kiln::testing::slurp("/proc/self/mountinfo");
  std::string last = "none";  // the last match is the top mount
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    // id parent major:minor root mount-point options [optional fields...] - fstype ...
    std::size_t f = 0;
    for (int field = 0; field < 4 && f != std::string::npos; ++field) f = line.find(' ', f + 1);
    if (f == std::string::npos || line.compare(f + 1, path.size() + 1, path + " ") != 0) continue;
    std::size_t opts_end = line.find(' ', f + 1 + path.size() + 1);
    std::size_t dash = line.find(" - ");
    last = opts_end < dash ? line.substr(opts_end + 1, dash - opts_end - 1) : "";
  }
  return last;
}

TEST_F(PlumbingTest, NetnsDirIsAPrivateMountPoint) {
  in_throwaway_host([&] {
    // Make every mount of this (throwaway) mount namespace shared, as on a systemd host: a plain
    // bind of the dir would then propagate to its peers.
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_SHARED, nullptr), 0) << std::strerror(errno);
    auto ns = NetNamespace::create(netns_dir_, "one");
    ASSERT_TRUE(ns.ok()) << ns.error().message;
    EXPECT_EQ(mount_propagation(netns_dir_), "");  // a mount point, no shared:/master: field
    EXPECT_EQ(mount_propagation(netns_dir_ + "/one"), "");
    auto again = NetNamespace::create(netns_dir_, "two");  // the dir is a mount point already
    ASSERT_TRUE(again.ok()) << again.error().message;
    auto fd = open_netns(again->path());
    ASSERT_TRUE(fd.ok());
    struct stat st {};
    ASSERT_EQ(::fstat(fd->get(), &st), 0);
    struct stat first {};
    ASSERT_EQ(::stat(ns->path().c_str(), &first), 0);
    EXPECT_NE(st.st_ino, first.st_ino);  // two namespaces
    auto clash = NetNamespace::create(netns_dir_, "one");
    EXPECT_FALSE(clash.ok());
    EXPECT_TRUE(ns->remove().ok());
    EXPECT_NE(::access((netns_dir_ + "/one").c_str(), F_OK), 0);
  });
}

TEST_F(PlumbingTest, TapDeleteRemovesPersistentTap) {
  in_throwaway_host([&] {
    ASSERT_TRUE(create_persistent_tap("tapx", kJailUid, kJailGid).ok());
    RouteSocket rt = open_route_socket();
    EXPECT_TRUE(find_link(rt, "tapx").has_value());
    ASSERT_TRUE(delete_persistent_tap("tapx").ok());
    EXPECT_FALSE(find_link(rt, "tapx").has_value());
    EXPECT_FALSE(create_persistent_tap("a-name-longer-than-15", kJailUid, kJailGid).ok());
  });
}

}  // namespace
}  // namespace kiln::net

// NetPlan from a launch spec's network keys, and the resolv.conf / hosts texts (pure).
#include "guest-agent/net/net_plan.h"

#include <gtest/gtest.h>

namespace kiln::agent::net {
namespace {

using protocol::IpFamily;
using protocol::parse_ip;

protocol::NetworkSpec spec() {
  protocol::NetworkSpec n;
  n.mac = "02:FC:00:00:00:01";
  n.address = "10.0.0.2/30";
  n.gateway = "10.0.0.1";
  return n;
}

TEST(NetPlan, NoMacNoNetwork) {
  auto p = plan_network(protocol::NetworkSpec{});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_value());
}

TEST(NetPlan, Ipv4WithGateway) {
  auto n = spec();
  n.mtu = 1400;
  auto p = plan_network(n);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_TRUE(p->has_value());
  const NetPlan& plan = **p;
  EXPECT_EQ(protocol::format_mac(plan.mac), "02:fc:00:00:00:01");
  EXPECT_EQ(plan.mtu, 1400u);
  ASSERT_EQ(plan.addresses.size(), 1u);
  EXPECT_EQ(protocol::format_ip_prefix(plan.addresses[0]), "10.0.0.2/30");
  ASSERT_EQ(plan.routes.size(), 1u);
  EXPECT_EQ(plan.routes[0].gateway, *parse_ip("10.0.0.1"));
  EXPECT_FALSE(plan.routes[0].onlink);  // inside the /30
}

TEST(NetPlan, OffSubnetGatewayIsOnLink) {
  auto n = spec();
  n.address = "10.0.0.2/32";
  n.gateway = "169.254.1.1";
  auto p = plan_network(n);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ((*p)->routes.size(), 1u);
  EXPECT_TRUE((*p)->routes[0].onlink);
}

TEST(NetPlan, DualStackOrderAndNoGatewayNoRoute) {
  auto n = spec();
  n.gateway.clear();
  n.address6 = "fd00::2/64";
  n.gateway6 = "fe80::1";
  auto p = plan_network(n);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const NetPlan& plan = **p;
  ASSERT_EQ(plan.addresses.size(), 2u);
  EXPECT_EQ(plan.addresses[0].address.family, IpFamily::kV4);
  EXPECT_EQ(plan.addresses[1].address.family, IpFamily::kV6);
  ASSERT_EQ(plan.routes.size(), 1u);
  EXPECT_EQ(plan.routes[0].gateway, *parse_ip("fe80::1"));
  EXPECT_TRUE(plan.routes[0].onlink);  // link-local: outside fd00::/64
}

TEST(NetPlan, MacOnlyBringsTheLinkUpWithNothingElse) {
  protocol::NetworkSpec n;
  n.mac = "02:00:00:00:00:09";
  auto p = plan_network(n);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->has_value());
  EXPECT_TRUE((*p)->addresses.empty());
  EXPECT_TRUE((*p)->routes.empty());
  EXPECT_EQ(render_resolv_conf(**p), "");
}

TEST(NetPlan, RefusesAnInvalidSpec) {
  auto n = spec();
  n.gateway = "10.0.0.2";  // its own address
  auto p = plan_network(n);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("net_gateway"), std::string::npos) << p.error().message;
  n = spec();
  n.dns = {"10.0.0.1\nnameserver 6.6.6.6"};
  EXPECT_FALSE(plan_network(n).ok());
}

TEST(NetPlan, ResolvConf) {
  auto n = spec();
  n.dns = {"10.0.0.1", "2001:DB8::53"};
  n.search = {"svc.internal", "example.com"};
  auto p = plan_network(n);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(render_resolv_conf(**p),
            "# written by kiln-init from the launch spec\n"
            "nameserver 10.0.0.1\n"
            "nameserver 2001:db8::53\n"
            "search svc.internal example.com\n");
}

TEST(NetPlan, HostsAppendedOnceAndNormalised) {
  auto n = spec();
  n.hosts = {"10.1.2.3   db\tdb.internal", "fd00::9 cache", "10.1.2.3 db db.internal"};
  auto p = plan_network(n);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const std::string image = "127.0.0.1\tlocalhost\n10.9.9.9 old";  // no final newline
  std::string once = render_hosts(image, **p);
  EXPECT_EQ(once,
            "127.0.0.1\tlocalhost\n10.9.9.9 old\n"
            "10.1.2.3\tdb db.internal\n"
            "fd00::9\tcache\n");
  EXPECT_EQ(render_hosts(once, **p), once);  // applying the plan again adds nothing
  EXPECT_EQ(render_hosts("", **p), "10.1.2.3\tdb db.internal\nfd00::9\tcache\n");
}

}  // namespace
}  // namespace kiln::agent::net

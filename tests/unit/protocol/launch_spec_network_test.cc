// The launch spec's network keys: round trip, absence, and hostile values refused with an error
// naming the key.
#include <gtest/gtest.h>

#include "common/protocol/launch_spec.h"
#include "common/protocol/record.h"

namespace kiln::protocol {
namespace {

NetworkSpec full_network() {
  NetworkSpec n;
  n.mac = "02:fc:00:00:00:01";
  n.address = "10.0.0.2/30";
  n.gateway = "10.0.0.1";
  n.address6 = "fd00::2/64";
  n.gateway6 = "fe80::1";
  n.mtu = 1500;
  n.dns = {"10.0.0.1", "2001:db8::53"};
  n.search = {"svc.internal", "example.com"};
  n.hosts = {"10.1.2.3 db db.internal", "fd00::9\tcache"};
  return n;
}

// A minimal spec record plus the given network entries.
Record with(std::initializer_list<std::pair<const char*, std::string>> entries) {
  Record r;
  r.add("arg", "/bin/sh");
  for (const auto& [k, v] : entries) r.add(k, v);
  return r;
}

// Decoding fails, and the message names `key`.
void expect_refused(const Record& r, const std::string& key) {
  auto d = decode_launch_spec(*r.encode());
  ASSERT_FALSE(d.ok()) << "accepted; expected an error about " << key;
  EXPECT_NE(d.error().message.find(key + ":"), std::string::npos) << d.error().message;
}

TEST(LaunchSpecNetwork, RoundTrip) {
  LaunchSpec s;
  s.argv = {"/bin/server"};
  s.net = full_network();
  auto p = encode_launch_spec(s);
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto d = decode_launch_spec(*p);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->net, full_network());
  EXPECT_TRUE(d->net.enabled());
  // And through the config drive.
  auto drive = decode_config_drive(*encode_config_drive(s));
  ASSERT_TRUE(drive.ok()) << drive.error().message;
  EXPECT_EQ(drive->net, full_network());
}

TEST(LaunchSpecNetwork, AbsentMeansNoNetworkAndNoKeys) {
  LaunchSpec s;
  s.argv = {"/bin/server"};
  auto p = encode_launch_spec(s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->find("net_"), std::string::npos);  // old specs encode exactly as before
  auto d = decode_launch_spec(*p);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->net.enabled());
  EXPECT_EQ(d->net, NetworkSpec{});
}

TEST(LaunchSpecNetwork, MacOnlyIsLoopbackPlusLink) {
  auto d = decode_launch_spec(*with({{"net_mac", "02:00:00:00:00:07"}}).encode());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->net.enabled());
  EXPECT_TRUE(d->net.address.empty());
  EXPECT_EQ(d->net.mtu, 0u);
}

TEST(LaunchSpecNetwork, EveryKeyNeedsTheMac) {
  expect_refused(with({{"net_address", "10.0.0.2/30"}}), "net_address");
  expect_refused(with({{"net_gateway", "10.0.0.1"}}), "net_gateway");
  expect_refused(with({{"net_address6", "fd00::2/64"}}), "net_address6");
  expect_refused(with({{"net_gateway6", "fe80::1"}}), "net_gateway6");
  expect_refused(with({{"net_mtu", "1500"}}), "net_mtu");
  expect_refused(with({{"net_dns", "10.0.0.1"}}), "net_dns");
  expect_refused(with({{"net_search", "example.com"}}), "net_search");
  expect_refused(with({{"net_hosts", "10.0.0.9 db"}}), "net_hosts");
}

TEST(LaunchSpecNetwork, RefusesHostileValues) {
  const std::string mac = "02:fc:00:00:00:01";
  auto net = [&mac](std::initializer_list<std::pair<const char*, std::string>> e) {
    Record r = with({{"net_mac", mac}});
    for (const auto& [k, v] : e) r.add(k, v);
    return r;
  };
  expect_refused(with({{"net_mac", "ff:ff:ff:ff:ff:ff"}}), "net_mac");
  expect_refused(with({{"net_mac", "02:fc:00:00:00:01\n"}}), "net_mac");
  expect_refused(with({{"net_mac", ""}}), "net_mac");
  expect_refused(with({{"net_mac", mac}, {"net_mac", "02:fc:00:00:00:02"}}), "net_mac");
  for (const char* bad : {"10.0.0.2", "10.0.0.2/33", "10.0.0.0/30", "10.0.0.3/30", "127.0.0.2/8", "0.0.0.0/8",
                          "224.0.0.5/24", "fd00::2/64", "10.0.0.2/30\nnameserver 1.2.3.4"}) {
    expect_refused(net({{"net_address", bad}}), "net_address");
  }
  expect_refused(net({{"net_address", "10.0.0.2/30"}, {"net_address", "10.0.0.6/30"}}), "net_address");
  expect_refused(net({{"net_gateway", "10.0.0.1"}}), "net_gateway");  // without net_address
  for (const char* bad : {"10.0.0.2", "10.0.0.0", "10.0.0.3", "224.0.0.1", "255.255.255.255", "0.0.0.0", "fe80::1",
                          "10.0.0.1/30", "gw"}) {
    expect_refused(net({{"net_address", "10.0.0.2/30"}, {"net_gateway", bad}}), "net_gateway");
  }
  for (const char* bad : {"::/64", "::1/128", "ff02::1/64", "fd00::2/129", "fd00::2", "10.0.0.2/30", "::ffff:10.0.0.2/96"}) {
    expect_refused(net({{"net_address6", bad}}), "net_address6");
  }
  expect_refused(net({{"net_gateway6", "fe80::1"}}), "net_gateway6");
  for (const char* bad : {"fd00::2", "ff02::2", "::", "10.0.0.1"}) {
    expect_refused(net({{"net_address6", "fd00::2/64"}, {"net_gateway6", bad}}), "net_gateway6");
  }
  for (const char* bad : {"0", "67", "65536", "-1", "1500 ", "0x5dc", "99999999999999999999999"}) {
    expect_refused(net({{"net_mtu", bad}}), "net_mtu");
  }
  expect_refused(net({{"net_mtu", "1500"}, {"net_mtu", "9000"}}), "net_mtu");
  expect_refused(net({{"net_address6", "fd00::2/64"}, {"net_mtu", "1279"}}), "net_mtu");
  for (const char* bad : {"dns.example", "0.0.0.0", "224.0.0.251", "10.0.0.1 10.0.0.2", "10.0.0.1\noptions debug",
                          "fe80::1%eth0", ""}) {
    expect_refused(net({{"net_dns", bad}}), "net_dns");
  }
  expect_refused(net({{"net_dns", "10.0.0.1"}, {"net_dns", "10.0.0.2"}, {"net_dns", "10.0.0.3"}, {"net_dns", "10.0.0.4"}}),
                 "net_dns");
  for (const char* bad : {"", "a..b", "example.com\nnameserver 6.6.6.6", "ex ample.com", "#x"}) {
    expect_refused(net({{"net_search", bad}}), "net_search");
  }
  Record many_search = net({});
  for (int i = 0; i <= 6; ++i) many_search.add("net_search", "d" + std::to_string(i) + ".example");
  expect_refused(many_search, "net_search");
  for (const char* bad : {"10.0.0.9", "db", "10.0.0.9 db\n6.6.6.6 evil", "10.0.0.9 db#x", "10.0.0.9 d/b",
                          "999.0.0.1 db", "10.0.0.9  ", ""}) {
    expect_refused(net({{"net_hosts", bad}}), "net_hosts");
  }
  expect_refused(net({{"net_hosts", "10.0.0.9 " + std::string(2000, 'a')}}), "net_hosts");
  expect_refused(net({{"net_hosts", std::string("10.0.0.9 d\0b", 12)}}), "net_hosts");
  Record many_hosts = net({});
  for (std::size_t i = 0; i <= kMaxHostsEntries; ++i) many_hosts.add("net_hosts", "10.0.0.9 h" + std::to_string(i));
  expect_refused(many_hosts, "net_hosts");
}

TEST(LaunchSpecNetwork, AcceptsUsualShapes) {
  auto ok = [](std::initializer_list<std::pair<const char*, std::string>> e) {
    Record r = with({{"net_mac", "02:fc:00:00:00:01"}});
    for (const auto& [k, v] : e) r.add(k, v);
    auto d = decode_launch_spec(*r.encode());
    EXPECT_TRUE(d.ok()) << d.error().message;
  };
  ok({{"net_address", "10.0.0.2/32"}, {"net_gateway", "169.254.1.1"}});  // off-subnet gateway: on-link route
  ok({{"net_address", "10.0.0.0/31"}, {"net_gateway", "10.0.0.1"}});     // RFC 3021 point-to-point
  ok({{"net_address", "172.16.5.10/12"}, {"net_mtu", "68"}});
  ok({{"net_address6", "2001:db8::2/128"}, {"net_gateway6", "2001:db8::1"}, {"net_mtu", "1280"}});
  ok({{"net_mtu", "65535"}, {"net_dns", "2001:db8::53"}});
  ok({{"net_hosts", "  127.0.0.2\t\tlocal-alias  other "}});
}

TEST(LaunchSpecNetwork, HostsEntries) {
  auto e = parse_hosts_entry(" 10.1.2.3\tdb  db.internal ");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(format_ip(e->address), "10.1.2.3");
  EXPECT_EQ(e->names, (std::vector<std::string>{"db", "db.internal"}));
  EXPECT_FALSE(parse_hosts_entry("db 10.1.2.3").ok());
}

TEST(LaunchSpecNetwork, EncodeValidatesTheNetwork) {
  LaunchSpec s;
  s.argv = {"/bin/server"};
  s.net.address = "10.0.0.2/30";  // no mac
  auto p = encode_launch_spec(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("net_address: needs net_mac"), std::string::npos) << p.error().message;
}

}  // namespace
}  // namespace kiln::protocol

// Address text forms of the launch spec's network keys: strict parsing, hostile text, helpers.
#include "common/protocol/net_address.h"

#include <gtest/gtest.h>

namespace kiln::protocol {
namespace {

TEST(NetAddress, ParsesBothFamilies) {
  auto v4 = parse_ip("10.0.0.2");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->family, IpFamily::kV4);
  EXPECT_EQ(v4->bytes[0], 10);
  EXPECT_EQ(v4->bytes[3], 2);
  EXPECT_EQ(format_ip(*v4), "10.0.0.2");
  auto v6 = parse_ip("FD00::2");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->family, IpFamily::kV6);
  EXPECT_EQ(format_ip(*v6), "fd00::2");
  EXPECT_FALSE(parse_ip("10.0.0.2", IpFamily::kV6).ok());
  EXPECT_FALSE(parse_ip("::1", IpFamily::kV4).ok());
}

TEST(NetAddress, RejectsHostileAddressText) {
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "010.0.0.1", "10.0.0.1 ", " 10.0.0.1", "10.0.0.1\n",
                          "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", "localhost", "0x0a000001"}) {
    EXPECT_FALSE(parse_ip(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_ip(std::string("10.0.0.1\0", 9)).ok());
  EXPECT_FALSE(parse_ip(std::string(100000, '1')).ok());
}

TEST(NetAddress, Prefixes) {
  auto p = parse_ip_prefix("10.0.0.2/30", IpFamily::kV4);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->length, 30);
  EXPECT_EQ(format_ip_prefix(*p), "10.0.0.2/30");
  auto p6 = parse_ip_prefix("fd00::2/64", IpFamily::kV6);
  ASSERT_TRUE(p6.ok());
  EXPECT_EQ(p6->length, 64);
  EXPECT_TRUE(parse_ip_prefix("10.0.0.2/32", IpFamily::kV4).ok());
  EXPECT_TRUE(parse_ip_prefix("fd00::2/128", IpFamily::kV6).ok());
  for (const char* bad : {"10.0.0.2", "10.0.0.2/", "10.0.0.2/0", "10.0.0.2/33", "10.0.0.2/030", "10.0.0.2/+3",
                          "10.0.0.2/-1", "10.0.0.2/3 0", "10.0.0.2/30/1", "/30", "10.0.0.2/99999999999999999999999"}) {
    EXPECT_FALSE(parse_ip_prefix(bad, IpFamily::kV4).ok()) << bad;
  }
  EXPECT_FALSE(parse_ip_prefix("fd00::2/129", IpFamily::kV6).ok());
  EXPECT_FALSE(parse_ip_prefix("fd00::2/64", IpFamily::kV4).ok());
}

TEST(NetAddress, PrefixContains) {
  auto net = *parse_ip_prefix("10.0.0.2/30", IpFamily::kV4);
  EXPECT_TRUE(prefix_contains(net, *parse_ip("10.0.0.1")));
  EXPECT_TRUE(prefix_contains(net, *parse_ip("10.0.0.3")));
  EXPECT_FALSE(prefix_contains(net, *parse_ip("10.0.0.4")));
  EXPECT_FALSE(prefix_contains(net, *parse_ip("::1")));
  auto odd = *parse_ip_prefix("192.168.1.77/21", IpFamily::kV4);
  EXPECT_TRUE(prefix_contains(odd, *parse_ip("192.168.7.255")));
  EXPECT_FALSE(prefix_contains(odd, *parse_ip("192.168.8.0")));
  auto host = *parse_ip_prefix("10.0.0.2/32", IpFamily::kV4);
  EXPECT_FALSE(prefix_contains(host, *parse_ip("10.0.0.1")));
  auto v6 = *parse_ip_prefix("fd00:1::2/64", IpFamily::kV6);
  EXPECT_TRUE(prefix_contains(v6, *parse_ip("fd00:1::ffff")));
  EXPECT_FALSE(prefix_contains(v6, *parse_ip("fd00:2::1")));
}

TEST(NetAddress, UnicastAndSubnetHosts) {
  for (const char* good : {"10.0.0.2", "192.0.2.1", "8.8.8.8", "fd00::1", "2001:db8::1", "fe80::1"}) {
    EXPECT_TRUE(is_unicast_host(*parse_ip(good))) << good;
  }
  for (const char* bad : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.1.1.1", "255.255.255.255", "::",
                          "::1", "ff02::1", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(is_unicast_host(*parse_ip(bad))) << bad;
  }
  EXPECT_TRUE(is_subnet_host(*parse_ip_prefix("10.0.0.2/30", IpFamily::kV4)));
  EXPECT_FALSE(is_subnet_host(*parse_ip_prefix("10.0.0.0/30", IpFamily::kV4)));
  EXPECT_FALSE(is_subnet_host(*parse_ip_prefix("10.0.0.3/30", IpFamily::kV4)));
  EXPECT_TRUE(is_subnet_host(*parse_ip_prefix("10.0.0.0/31", IpFamily::kV4)));
  EXPECT_TRUE(is_subnet_host(*parse_ip_prefix("10.0.0.255/32", IpFamily::kV4)));
  EXPECT_FALSE(is_subnet_host(*parse_ip_prefix("10.0.255.255/16", IpFamily::kV4)));
}

TEST(NetAddress, Mac) {
  auto m = parse_mac("02:FC:00:0a:bc:01");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)[0], 0x02);
  EXPECT_EQ((*m)[1], 0xfc);
  EXPECT_EQ((*m)[5], 0x01);
  EXPECT_EQ(format_mac(*m), "02:fc:00:0a:bc:01");
  for (const char* bad : {"", "02:fc:00:0a:bc", "02:fc:00:0a:bc:01:02", "02-fc-00-0a-bc-01", "2:fc:0:a:bc:1",
                          "02:fc:00:0a:bc:0g", "02:fc:00:0a:bc:01 ", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff",
                          "00:00:00:00:00:00", "02fc:00:0a:bc:01:", "06::0ac:10:00:02", "+6:00:ac:10:00:02",
                          "0x:00:ac:10:00:02", "06:00:ac:10:00:02\n", " 06:00:ac:10:00:02", "0600.ac10.0002"}) {
    EXPECT_FALSE(parse_mac(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_mac(std::string_view("06:00:ac:10:00:0\0", 17)).ok());
  // An absurd input is quoted only in part.
  auto huge = parse_mac(std::string(100000, 'a'));
  ASSERT_FALSE(huge.ok());
  EXPECT_LT(huge.error().message.size(), 200u);
}

TEST(NetAddress, DnsNames) {
  for (const char* good : {"db", "db.internal", "svc-1.example.com", "_srv.example", "a.b.c.d.e"}) {
    EXPECT_TRUE(is_dns_name(good)) << good;
  }
  for (const char* bad : {"", ".", "a..b", ".a", "a.", "a b", "a\nb", "a#b", "ä.example", "a/b"}) {
    EXPECT_FALSE(is_dns_name(bad)) << bad;
  }
  EXPECT_FALSE(is_dns_name(std::string("a\0b", 3)));
  EXPECT_TRUE(is_dns_name(std::string(63, 'a')));
  EXPECT_FALSE(is_dns_name(std::string(64, 'a')));
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  long_name += "x";
  EXPECT_FALSE(is_dns_name(long_name));
}

}  // namespace
}  // namespace kiln::protocol

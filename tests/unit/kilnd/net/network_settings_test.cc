// The `network` function setting and the operator defaults: accepted forms, hostile inputs
// refused with the field named, and the policy the two make together.
#include "src/net/network_settings.h"

#include <gtest/gtest.h>

namespace kiln::net {
namespace {

using json::Json;

IpPrefix cidr(const char* text) {
  std::string s(text);
  if (s.find('/') == std::string::npos) s += "/32";
  auto p = protocol::parse_ip_prefix(s, protocol::IpFamily::kV4);
  EXPECT_TRUE(p.ok()) << text;
  return *p;
}

IpAddress ip(const char* text) { return *protocol::parse_ip(text, protocol::IpFamily::kV4); }

// The error message of parsing `text` as the `network` setting ("<ok>" when accepted).
std::string error_of(const char* text) {
  auto doc = json::parse(text);
  EXPECT_TRUE(doc.ok()) << text;
  auto s = parse_network_settings(*doc);
  if (s.ok()) return "<ok>";
  EXPECT_EQ(s.error().message.rfind(s.error().path + ": ", 0), 0u) << s.error().message;
  return s.error().message;
}

std::string defaults_error_of(const char* text) {
  auto d = parse_network_defaults(*json::parse(text));
  return d.ok() ? "<ok>" : d.error().message;
}

TEST(NetworkSettings, FullSetting) {
  auto s = parse_network_settings(*json::parse(R"({"mode": "egress", "allow": ["10.1.0.0/16", "192.168.5.7"],
      "deny": ["203.0.113.0/24"], "dns": ["10.1.0.2", "1.1.1.1"]})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->mode, NetworkMode::kEgress);
  EXPECT_EQ(s->allow, (std::vector<IpPrefix>{cidr("10.1.0.0/16"), cidr("192.168.5.7/32")}));
  EXPECT_EQ(s->deny, std::vector<IpPrefix>{cidr("203.0.113.0/24")});
  EXPECT_EQ(s->dns, (std::vector<IpAddress>{ip("10.1.0.2"), ip("1.1.1.1")}));
}

TEST(NetworkSettings, EmptyObjectTakesEveryDefault) {
  auto s = parse_network_settings(Json::object());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, NetworkSettings{});
  EXPECT_FALSE(s->mode.has_value());
}

TEST(NetworkSettings, JsonRoundTrip) {
  NetworkSettings s{NetworkMode::kNone, {cidr("10.0.5.0/24")}, {cidr("10.0.5.128/25")}, {ip("10.0.5.2")}};
  Json j = network_settings_json(s);
  EXPECT_EQ(json::dump(j), R"({"allow":["10.0.5.0/24"],"deny":["10.0.5.128/25"],"dns":["10.0.5.2"],"mode":"none"})");
  auto back = parse_network_settings(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, s);
  EXPECT_EQ(json::dump(network_settings_json(NetworkSettings{})), "{}");
}

TEST(NetworkSettings, HostileInputsNameTheField) {
  EXPECT_EQ(error_of(R"("egress")"), "network: invalid type: expected an object, got string");
  EXPECT_EQ(error_of(R"({"mode": "open"})"), R"(network.mode: must be "none" or "egress")");
  EXPECT_EQ(error_of(R"({"mode": null})").rfind("network.mode: invalid type", 0), 0u);
  EXPECT_EQ(error_of(R"({"allow": "10.0.0.0/8"})").rfind("network.allow: invalid type", 0), 0u);
  EXPECT_EQ(error_of(R"({"allow": ["1.2.3.0/24", 7]})").rfind("network.allow[1]: invalid type", 0), 0u);
  EXPECT_EQ(error_of(R"({"allow": ["1.2.3.0/24", "1.2.3.4/33"]})"),
            "network.allow[1]: '1.2.3.4/33': prefix length must be 1..32");
  EXPECT_EQ(error_of(R"({"deny": ["1.2.3.0/0"]})"), "network.deny[0]: '1.2.3.0/0': prefix length must be 1..32");
  EXPECT_EQ(error_of(R"({"deny": ["1.2.3.4/24"]})"),
            "network.deny[0]: '1.2.3.4/24' has host bits set (the network is 1.2.3.0/24)");
  EXPECT_EQ(error_of(R"({"deny": ["01.2.3.0/24"]})"), "network.deny[0]: '01.2.3.0' is not an IPv4 address");
  EXPECT_EQ(error_of(R"({"deny": ["1.2.3.0/024"]})"), "network.deny[0]: '1.2.3.0/024': prefix length must be 1..32");
  EXPECT_EQ(error_of(R"({"deny": ["1.2.3.0/24 "]})"), "network.deny[0]: '1.2.3.0/24 ': prefix length must be 1..32");
  EXPECT_EQ(error_of(R"({"deny": ["example.com"]})"), "network.deny[0]: 'example.com' is not an IPv4 address");
  EXPECT_EQ(error_of(R"({"deny": [""]})"), "network.deny[0]: '' is not an IPv4 address");
  EXPECT_EQ(error_of(R"({"deny": ["1.2.3.0/24\u0000"]})"), "network.deny[0]: must not contain NUL bytes");
  EXPECT_EQ(error_of(R"({"allow": ["2001:db8::/32"]})"), "network.allow[0]: IPv6 egress is not supported yet");
  EXPECT_EQ(error_of(R"({"dns": ["10.0.0.2", "::1"]})"), "network.dns[1]: IPv6 egress is not supported yet");
  EXPECT_EQ(error_of(R"({"dns": ["10.0.0.2/32"]})"), "network.dns[0]: '10.0.0.2/32' is not an IPv4 address");
  EXPECT_EQ(error_of(R"({"dns": ["1.1.1.1", "8.8.8.8", "9.9.9.9", "1.0.0.1"]})"),
            "network.dns: has more than 3 entries");
  EXPECT_EQ(error_of(R"({"allow": [], "dnss": []})").rfind("network.dnss: unknown field", 0), 0u);
  EXPECT_EQ(error_of(R"({"allow": ["1.2.3.0/24"], "deny": ["a"]})"), "network.deny[0]: 'a' is not an IPv4 address");
}

TEST(NetworkSettings, Bandwidth) {
  auto s = parse_network_settings(*json::parse(R"({"bandwidth": {"rx": 524288, "tx": 1024}})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->bandwidth, (Bandwidth{524288, 1024}));
  EXPECT_EQ(json::dump(network_settings_json(*s)), R"({"bandwidth":{"rx":524288,"tx":1024}})");
  auto one = parse_network_settings(*json::parse(R"({"bandwidth": {"tx": 100000000000}})"));
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->bandwidth, (Bandwidth{std::nullopt, 100'000'000'000}));
  EXPECT_EQ(*parse_network_settings(network_settings_json(*one)), *one);
  EXPECT_EQ(json::dump(network_settings_json(*parse_network_settings(*json::parse(R"({"bandwidth": {}})")))), "{}");
  // The policy carries the function's caps.
  EXPECT_EQ(resolve_policy(*s, NetworkDefaults{}).bandwidth, (Bandwidth{524288, 1024}));

  const std::string range = ": must be an integer from 1024 to 100000000000";
  EXPECT_EQ(error_of(R"({"bandwidth": {"rx": 1023}})"), "network.bandwidth.rx" + range);
  EXPECT_EQ(error_of(R"({"bandwidth": {"tx": 100000000001}})"), "network.bandwidth.tx" + range);
  EXPECT_EQ(error_of(R"({"bandwidth": {"tx": -5}})"), "network.bandwidth.tx" + range);
  EXPECT_EQ(error_of(R"({"bandwidth": {"tx": 1.5e6}})"), "network.bandwidth.tx" + range);
  EXPECT_EQ(error_of(R"({"bandwidth": {"rx": "1M"}})"), "network.bandwidth.rx" + range);
  EXPECT_EQ(error_of(R"({"bandwidth": {"rx": null}})"), "network.bandwidth.rx" + range);
  EXPECT_EQ(error_of(R"({"bandwidth": {"up": 5000}})").rfind("network.bandwidth.up: unknown field", 0), 0u);
  EXPECT_EQ(error_of(R"({"bandwidth": 5000})").rfind("network.bandwidth: invalid type", 0), 0u);
}

TEST(NetworkSettings, ListLimits) {
  std::string list;
  for (int i = 0; i < 65; ++i) list += (i ? ",\"1.2." : "\"1.2.") + std::to_string(i) + ".0/24\"";
  EXPECT_EQ(error_of(("{\"allow\": [" + list + "]}").c_str()), "network.allow: has more than 64 entries");
  EXPECT_EQ(error_of(("{\"deny\": [" + list + "]}").c_str()), "network.deny: has more than 64 entries");
  std::string sixty_four = list.substr(0, list.rfind(','));
  EXPECT_EQ(error_of(("{\"allow\": [" + sixty_four + "]}").c_str()), "<ok>");
  std::string long_entry(100, '1');
  EXPECT_EQ(error_of(("{\"allow\": [\"" + long_entry + "\"]}").c_str()),
            "network.allow[0]: longer than 64 bytes");
}

TEST(NetworkSettings, NeverReachableDestinationsCannotBeAllowed) {
  EXPECT_EQ(error_of(R"({"allow": ["169.254.169.254"]})"),
            "network.allow[0]: 169.254.169.254/32 is never reachable (link-local, with the metadata address "
            "169.254.169.254)");
  EXPECT_EQ(error_of(R"({"allow": ["127.0.0.0/8"]})"), "network.allow[0]: 127.0.0.0/8 is never reachable (loopback)");
  EXPECT_EQ(error_of(R"({"allow": ["255.255.255.255"]})").rfind("network.allow[0]: 255.255.255.255/32 is never", 0),
            0u);
  EXPECT_EQ(error_of(R"({"allow": ["239.1.1.0/24"]})"), "network.allow[0]: 239.1.1.0/24 is never reachable (multicast)");
  EXPECT_EQ(error_of(R"({"dns": ["169.254.169.253"]})").rfind("network.dns[0]: 169.254.169.253 is never reachable", 0),
            0u);
  EXPECT_EQ(error_of(R"({"dns": ["0.0.0.0"]})"), "network.dns[0]: 0.0.0.0 is never reachable (\"this network\")");
  // Denying them again is harmless; a wider allow that contains them is fine (they stay denied).
  EXPECT_EQ(error_of(R"({"deny": ["169.254.0.0/16"]})"), "<ok>");
  EXPECT_EQ(error_of(R"({"allow": ["0.0.0.0/1", "128.0.0.0/1"]})"), "<ok>");
}

TEST(NetworkDefaults, ParsesEveryField) {
  auto d = parse_network_defaults(*json::parse(R"({"mode": "none", "allow_private": true,
      "deny": ["10.50.0.0/16"], "dns": ["10.0.0.2"], "instance_range": "100.127.0.0/20"})"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->mode, NetworkMode::kNone);
  EXPECT_TRUE(d->allow_private);
  EXPECT_EQ(d->deny, std::vector<IpPrefix>{cidr("10.50.0.0/16")});
  EXPECT_EQ(d->dns, std::vector<IpAddress>{ip("10.0.0.2")});
  EXPECT_EQ(d->instance_range, cidr("100.127.0.0/20"));
  EXPECT_EQ(d->link_prefix, "kv");

  auto shared = parse_network_defaults(*json::parse(R"({"instance_range": "10.201.0.0/16", "link_prefix": "kb"})"));
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  EXPECT_EQ(shared->link_prefix, "kb");
  EXPECT_EQ(shared->instance_range, cidr("10.201.0.0/16"));

  auto empty = parse_network_defaults(Json::object());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, NetworkDefaults{});
  EXPECT_EQ(empty->mode, NetworkMode::kEgress);
  EXPECT_FALSE(empty->allow_private);
  EXPECT_EQ(empty->instance_range, cidr("10.200.0.0/16"));
  EXPECT_EQ(empty->link_prefix, "kv");
}

TEST(NetworkDefaults, HostileInputsNameTheField) {
  EXPECT_EQ(defaults_error_of(R"({"allow_private": "yes"})").rfind("allow_private: invalid type", 0), 0u);
  EXPECT_EQ(defaults_error_of(R"({"instance_range": "10.200.0.0/29"})"), "instance_range: prefix length must be 8..28");
  EXPECT_EQ(defaults_error_of(R"({"instance_range": "10.0.0.0/7"})"), "instance_range: prefix length must be 8..28");
  EXPECT_EQ(defaults_error_of(R"({"instance_range": "10.200.1.0/16"})"),
            "instance_range: '10.200.1.0/16' has host bits set (the network is 10.200.0.0/16)");
  EXPECT_EQ(defaults_error_of(R"({"instance_range": "172.16.0.0/16"})"),
            "instance_range: overlaps 172.16.0.0/30 (the guest's own link)");
  EXPECT_EQ(defaults_error_of(R"({"instance_range": "127.0.0.0/16"})"),
            "instance_range: overlaps 127.0.0.0/8 (loopback)");
  EXPECT_EQ(defaults_error_of(R"({"deny": ["fd00::/8"]})"), "deny[0]: IPv6 egress is not supported yet");
  EXPECT_EQ(defaults_error_of(R"({"tenants": {}})").rfind("tenants: unknown field", 0), 0u);
  EXPECT_EQ(defaults_error_of(R"({"link_prefix": 7})").rfind("link_prefix: invalid type", 0), 0u);
  EXPECT_EQ(defaults_error_of(R"({"link_prefix": null})").rfind("link_prefix: ", 0), 0u);
  EXPECT_EQ(defaults_error_of(R"({"link_prefix": "k-b"})"), "link_prefix: may hold only a-z and 0-9");
  EXPECT_EQ(defaults_error_of(R"({"link_prefix": "kb2"})"), "link_prefix: must start and end with a letter");
  // Checked against the range given beside it: 12 bytes + 16383 do not fit, + 63 do.
  EXPECT_EQ(defaults_error_of(R"({"link_prefix": "abcdefghijkl"})").rfind("link_prefix: 'abcdefghijkl' is too long", 0), 0u);
  EXPECT_EQ(defaults_error_of(R"({"link_prefix": "abcdefghijkl", "instance_range": "10.9.0.0/24"})"), "<ok>");
  auto nested = parse_network_defaults(*json::parse(R"({"mode": 1})"), "network");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error().path, "network.mode");
}

TEST(NetworkPolicy, FunctionSettingsOverDefaults) {
  NetworkDefaults d;
  d.deny = {cidr("10.50.0.0/16"), cidr("10.50.3.0/24")};
  d.dns = {ip("10.0.0.2")};
  NetworkSettings s;
  s.allow = {cidr("10.1.0.0/16"), cidr("10.1.2.0/24")};
  s.deny = {cidr("10.1.2.0/24")};
  EgressPolicy p = resolve_policy(s, d);
  EXPECT_EQ(p.mode, NetworkMode::kEgress);
  EXPECT_FALSE(p.allow_private);
  EXPECT_EQ(p.allow, std::vector<IpPrefix>{cidr("10.1.0.0/16")});  // the nested entry folds in
  EXPECT_EQ(p.deny, std::vector<IpPrefix>{cidr("10.1.2.0/24")});
  EXPECT_EQ(p.dns, d.dns);
  std::vector<IpPrefix> never = {cidr("0.0.0.0/8"),      cidr("10.50.0.0/16"), cidr("10.200.0.0/16"),
                                 cidr("127.0.0.0/8"),    cidr("169.254.0.0/16"), cidr("172.16.0.0/30"),
                                 cidr("224.0.0.0/4"),    cidr("240.0.0.0/4")};
  EXPECT_EQ(p.never, never);
  EXPECT_TRUE(needs_interface(p));

  s.mode = NetworkMode::kNone;
  s.dns = {ip("1.1.1.1")};
  p = resolve_policy(s, d);
  EXPECT_EQ(p.mode, NetworkMode::kNone);
  EXPECT_EQ(p.dns, s.dns);
  EXPECT_TRUE(needs_interface(p));  // the allow list still needs one
  s.allow.clear();
  EXPECT_FALSE(needs_interface(resolve_policy(s, d)));
}

TEST(NetworkPolicy, NormalizeSortsAndFoldsNestedPrefixes) {
  EXPECT_EQ(normalize_prefixes({cidr("10.2.0.0/16"), cidr("9.0.0.0/8"), cidr("10.0.0.0/8"), cidr("10.2.3.0/24"),
                                cidr("11.0.0.0/8"), cidr("9.0.0.0/8")}),
            (std::vector<IpPrefix>{cidr("9.0.0.0/8"), cidr("10.0.0.0/8"), cidr("11.0.0.0/8")}));
  EXPECT_EQ(normalize_prefixes({cidr("10.0.1.0/24"), cidr("10.0.0.0/24"), cidr("10.0.0.0/23")}),
            std::vector<IpPrefix>{cidr("10.0.0.0/23")});
  EXPECT_EQ(network_of(cidr("10.1.2.3/12")), cidr("10.0.0.0/12"));
  EXPECT_TRUE(prefix_within(cidr("10.1.0.0/16"), cidr("10.0.0.0/8")));
  EXPECT_FALSE(prefix_within(cidr("10.0.0.0/8"), cidr("10.1.0.0/16")));
  EXPECT_FALSE(prefix_within(cidr("11.0.0.0/16"), cidr("10.0.0.0/8")));
}

}  // namespace
}  // namespace kiln::net

// The nftables text per policy: none/egress, allow/deny, private ranges allowed or not, a deny
// inside an allow, hostile interface names; the whole text of one instance and of the host.
#include "src/net/egress_rules.h"

#include <gtest/gtest.h>

namespace kiln::net {
namespace {

IpPrefix cidr(const char* text) { return *protocol::parse_ip_prefix(text, protocol::IpFamily::kV4); }
IpAddress ip(const char* text) { return *protocol::parse_ip(text, protocol::IpFamily::kV4); }

const InstanceInterfaces kInterfaces{"kt0", "kv-ns", ip("10.200.0.6")};

std::string render(const NetworkSettings& s, const NetworkDefaults& d = {}) {
  auto text = render_instance_ruleset(resolve_policy(s, d), kInterfaces);
  EXPECT_TRUE(text.ok()) << text.error().message;
  return text.ok() ? *text : "";
}

// The one line of `text` that starts (after tabs) with `start`, or "" when none or several do.
std::string line_starting(const std::string& text, const std::string& start) {
  std::string found;
  int count = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    line.erase(0, line.find_first_not_of('\t'));
    if (line.rfind(start, 0) == 0) {
      found = line;
      ++count;
    }
    pos = end + 1;
  }
  return count == 1 ? found : "";
}

// The elements line of set `name` ("" when the set is empty).
std::string elements_of(const std::string& text, const std::string& name) {
  std::size_t at = text.find("\tset " + name + " {\n");
  EXPECT_NE(at, std::string::npos) << name;
  std::size_t end = text.find("\t}\n", at);
  std::string body = text.substr(at, end - at);
  std::size_t el = body.find("elements = { ");
  if (el == std::string::npos) return "";
  return body.substr(el + 13, body.find(" }", el) - el - 13);
}

std::string chain_of(const std::string& text, const std::string& name) {
  std::size_t at = text.find("\tchain " + name + " {\n");
  EXPECT_NE(at, std::string::npos) << name;
  return text.substr(at, text.find("\t}\n", at) + 3 - at);
}

TEST(EgressRules, DefaultPolicyText) {
  EXPECT_EQ(render({}), R"(# kiln: one instance's egress policy (mode egress)
add table inet kiln_instance
delete table inet kiln_instance
table inet kiln_instance {
	set never_reach {
		type ipv4_addr
		flags interval
		elements = { 0.0.0.0/8, 10.200.0.0/16, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/30, 224.0.0.0/4, 240.0.0.0/4 }
	}
	set fn_deny {
		type ipv4_addr
		flags interval
	}
	set fn_allow {
		type ipv4_addr
		flags interval
	}
	set dns_servers {
		type ipv4_addr
		flags interval
	}
	set private_ranges {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16 }
	}

	chain input {
		type filter hook input priority filter; policy accept;
		iifname "kt0" jump refuse
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "kt0" oifname "kv-ns" meta nfproto ipv4 ip saddr 172.16.0.2 jump guest_egress
		iifname "kt0" jump refuse
	}
	chain guest_egress {
		ip daddr @never_reach jump refuse
		ip daddr @fn_deny jump refuse
		ip daddr @fn_allow accept
		ip daddr @dns_servers udp dport 53 accept
		ip daddr @dns_servers tcp dport 53 accept
		ip daddr @private_ranges jump refuse
		accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "kv-ns" ip saddr 172.16.0.2 snat ip to 10.200.0.6
	}
	chain refuse {
		meta l4proto tcp reject with tcp reset
		reject with icmpx type admin-prohibited
	}
}
)");
}

TEST(EgressRules, ModeNoneRefusesWhatIsNotAllowed) {
  std::string text = render({.mode = NetworkMode::kNone, .allow = {cidr("10.0.5.0/24")}});
  std::string chain = chain_of(text, "guest_egress");
  EXPECT_EQ(chain.find("\t\taccept\n"), std::string::npos) << chain;
  EXPECT_TRUE(chain.ends_with("\t\tjump refuse\n\t}\n")) << chain;
  EXPECT_EQ(elements_of(text, "fn_allow"), "10.0.5.0/24");
  EXPECT_NE(text.find("(mode none)"), std::string::npos);
  // Mode egress ends with the public accept instead.
  EXPECT_TRUE(chain_of(render({}), "guest_egress").ends_with("\t\tip daddr @private_ranges jump refuse\n\t\taccept\n\t}\n"));
}

TEST(EgressRules, AllowDenyAndPrivateRanges) {
  // A deny inside an allow: both sets hold their entries, and deny is matched first.
  std::string text = render({.allow = {cidr("10.1.0.0/16"), cidr("198.51.100.0/24")},
                             .deny = {cidr("10.1.2.0/24"), cidr("203.0.113.0/24")}});
  EXPECT_EQ(elements_of(text, "fn_allow"), "10.1.0.0/16, 198.51.100.0/24");
  EXPECT_EQ(elements_of(text, "fn_deny"), "10.1.2.0/24, 203.0.113.0/24");
  std::string chain = chain_of(text, "guest_egress");
  std::size_t never = chain.find("@never_reach jump refuse"), deny = chain.find("@fn_deny jump refuse");
  std::size_t allow = chain.find("@fn_allow accept"), dns = chain.find("@dns_servers udp dport 53 accept");
  std::size_t priv = chain.find("@private_ranges jump refuse");
  ASSERT_NE(priv, std::string::npos);
  EXPECT_LT(never, deny);
  EXPECT_LT(deny, allow);  // deny wins over allow
  EXPECT_LT(allow, dns);
  EXPECT_LT(dns, priv);  // an allow (or DNS) entry re-opens its part of a private range
  EXPECT_EQ(elements_of(text, "private_ranges"), "10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16");

  NetworkDefaults open_private;
  open_private.allow_private = true;
  EXPECT_EQ(elements_of(render({}, open_private), "private_ranges"), "");
}

TEST(EgressRules, OperatorDenyAndInstanceRangeAreNeverReachable) {
  NetworkDefaults d;
  d.deny = {cidr("192.168.0.0/16"), cidr("198.18.0.0/15")};
  d.instance_range = cidr("100.127.0.0/20");
  d.dns = {ip("10.0.0.2"), ip("1.1.1.1")};
  std::string text = render({.allow = {cidr("192.168.1.0/24")}}, d);
  EXPECT_EQ(elements_of(text, "never_reach"),
            "0.0.0.0/8, 100.127.0.0/20, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/30, 192.168.0.0/16, 198.18.0.0/15, "
            "224.0.0.0/4, 240.0.0.0/4");
  EXPECT_EQ(elements_of(text, "dns_servers"), "1.1.1.1/32, 10.0.0.2/32");
  // The function's own DNS servers replace the operator's.
  EXPECT_EQ(elements_of(render({.dns = {ip("9.9.9.9")}}, d), "dns_servers"), "9.9.9.9/32");
}

TEST(EgressRules, FixedRangesStayInAHandBuiltPolicy) {
  auto text = render_instance_ruleset(EgressPolicy{}, kInterfaces);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(elements_of(*text, "never_reach"),
            "0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/30, 224.0.0.0/4, 240.0.0.0/4");
}

TEST(EgressRules, GuestCannotSpoofOrReachItsNamespace) {
  std::string text = render({});
  EXPECT_EQ(line_starting(text, "iifname \"kt0\" oifname"),
            "iifname \"kt0\" oifname \"kv-ns\" meta nfproto ipv4 ip saddr 172.16.0.2 jump guest_egress");
  EXPECT_EQ(chain_of(text, "forward").find("policy drop;"), chain_of(text, "forward").find("policy"));
  EXPECT_EQ(line_starting(chain_of(text, "input"), "iifname"), "iifname \"kt0\" jump refuse");
  EXPECT_EQ(line_starting(text, "oifname \"kv-ns\""), "oifname \"kv-ns\" ip saddr 172.16.0.2 snat ip to 10.200.0.6");
}

TEST(EgressRules, Deterministic) {
  NetworkSettings s{.allow = {cidr("8.8.8.0/24"), cidr("1.1.1.0/24")}, .deny = {cidr("9.0.0.0/8")}};
  NetworkSettings reordered{.allow = {cidr("1.1.1.0/24"), cidr("8.8.8.0/24")}, .deny = {cidr("9.0.0.0/8")}};
  EXPECT_EQ(render(s), render(s));
  EXPECT_EQ(render(s), render(reordered));
}

TEST(EgressRules, HostileInterfaceNamesAreRefused) {
  EgressPolicy p = resolve_policy({}, {});
  for (std::string bad : std::vector<std::string>{"", "kt0\" accept #", "kt0\naccept", "a/b", "0123456789abcdef", "kt 0", "kv*", "..",
                          std::string("k\0t", 3)}) {
    EXPECT_FALSE(render_instance_ruleset(p, {bad, "kv-ns", ip("10.200.0.6")}).ok()) << bad;
    EXPECT_FALSE(render_instance_ruleset(p, {"kt0", bad, ip("10.200.0.6")}).ok()) << bad;
  }
  EXPECT_FALSE(render_instance_ruleset(p, {"kt0", "kt0", ip("10.200.0.6")}).ok());
  EXPECT_FALSE(render_instance_ruleset(p, {"kt0", "kv-ns", *protocol::parse_ip("fd00::1")}).ok());
  EXPECT_TRUE(render_instance_ruleset(p, {"0123456789abcde", "kv-ns.1_x", ip("10.200.0.6")}).ok());
  EXPECT_TRUE(valid_interface_name("kv12345"));
  EXPECT_FALSE(valid_interface_name("kv\"x"));
}

TEST(EgressRules, HostRulesText) {
  auto host = render_host_rules(kDefaultInstanceRange);
  ASSERT_TRUE(host.ok()) << host.error().message;
  EXPECT_EQ(host->ruleset, R"(# kiln: host side of every instance network
add table inet kiln
delete table inet kiln
table inet kiln {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "kv*" jump refuse
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "kv*" oifname "kv*" jump refuse
		iifname "kv*" meta nfproto != ipv4 drop
		iifname "kv*" ip saddr != 10.200.0.0/16 drop
		oifname "kv*" ct state established,related accept
		oifname "kv*" drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname != "kv*" ip saddr 10.200.0.0/16 masquerade
	}
	chain refuse {
		meta l4proto tcp reject with tcp reset
		reject with icmpx type admin-prohibited
	}
}
)");
  EXPECT_EQ(host->sysctls, (std::vector<Sysctl>{{"net.ipv4.ip_forward", "1"}}));
  EXPECT_EQ(instance_sysctls(), (std::vector<Sysctl>{{"net.ipv4.ip_forward", "1"}}));
  EXPECT_FALSE(render_host_rules(cidr("10.200.0.1/16")).ok());
  EXPECT_FALSE(render_host_rules({*protocol::parse_ip("fd00::"), 64}).ok());
}

TEST(EgressRules, HostRulesOfAnotherLinkPrefix) {
  // A second kilnd on the host: its own table, its own links, its own range; nothing of the
  // default kilnd's ("kiln", "kv*") appears.
  auto host = render_host_rules(cidr("10.201.0.0/16"), "kb");
  ASSERT_TRUE(host.ok()) << host.error().message;
  EXPECT_NE(host->ruleset.find("add table inet kiln_kb\ndelete table inet kiln_kb\ntable inet kiln_kb {\n"),
            std::string::npos);
  EXPECT_NE(host->ruleset.find("\t\tiifname \"kb*\" oifname \"kb*\" jump refuse\n"), std::string::npos);
  EXPECT_NE(host->ruleset.find("\t\toifname != \"kb*\" ip saddr 10.201.0.0/16 masquerade\n"), std::string::npos);
  EXPECT_EQ(host->ruleset.find("kv"), std::string::npos);
  EXPECT_EQ(host->ruleset.find("inet kiln "), std::string::npos);
  EXPECT_EQ(host->ruleset.find("10.200."), std::string::npos);
  auto bad = render_host_rules(cidr("10.201.0.0/16"), "kb\" accept");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "link prefix 'kb\" accept': may hold only a-z and 0-9");
}

TEST(EgressRules, DeleteTable) {
  EXPECT_EQ(*render_delete_table(kInstanceTable), "add table inet kiln_instance\ndelete table inet kiln_instance\n");
  EXPECT_FALSE(render_delete_table("kiln; flush ruleset").ok());
  EXPECT_FALSE(render_delete_table("").ok());
  EXPECT_FALSE(render_delete_table("1abc").ok());
}

}  // namespace
}  // namespace kiln::net

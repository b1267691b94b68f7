// libnftables for real, in throwaway network namespaces (root only): the rendered instance
// and host tables load, list back, replace themselves, and bad text fails with nft's error.
#include "src/net/nftables.h"

#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <thread>

#include "src/net/egress_rules.h"

namespace kiln::net {
namespace {

IpPrefix cidr(const char* text) { return *protocol::parse_ip_prefix(text, protocol::IpFamily::kV4); }
IpAddress ip(const char* text) { return *protocol::parse_ip(text, protocol::IpFamily::kV4); }

// Runs `body` on a thread of its own in a new, empty network namespace (the namespace goes
// away with the thread).
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

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class Nftables : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, nftables)";
  }
};

TEST_F(Nftables, InstanceTableLoadsAndReplacesItself) {
  NetworkSettings s{.allow = {cidr("10.1.0.0/16")}, .deny = {cidr("10.1.2.0/24"), cidr("203.0.113.0/24")},
                    .dns = {ip("10.1.0.2")}};
  auto text = render_instance_ruleset(resolve_policy(s, {}), {"kt0", "kv-ns", ip("10.200.0.6")});
  ASSERT_TRUE(text.ok()) << text.error().message;
  in_new_netns([&] {
    auto empty = nft::list_ruleset();
    ASSERT_TRUE(empty.ok()) << empty.error().message;
    EXPECT_EQ(*empty, "");
    Status applied = nft::apply(*text);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
    applied = nft::apply(*text);  // again: replaced, not doubled
    ASSERT_TRUE(applied.ok()) << applied.error().message;
    auto listed = nft::list_ruleset();
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    EXPECT_EQ(count(*listed, "table inet kiln_instance"), 1u) << *listed;
    EXPECT_EQ(count(*listed, "snat ip to 10.200.0.6"), 1u) << *listed;
    EXPECT_NE(listed->find("elements = { 10.1.2.0/24, 203.0.113.0/24 }"), std::string::npos) << *listed;
    EXPECT_NE(listed->find("ip daddr @fn_deny jump refuse"), std::string::npos) << *listed;
    EXPECT_NE(listed->find("meta l4proto tcp reject with tcp reset"), std::string::npos) << *listed;
    EXPECT_NE(listed->find("type filter hook forward priority filter; policy drop;"), std::string::npos);

    // A narrower policy replaces the old sets whole.
    auto none = render_instance_ruleset(resolve_policy({.mode = NetworkMode::kNone}, {}),
                                        {"kt0", "kv-ns", ip("10.200.0.10")});
    ASSERT_TRUE(nft::apply(*none).ok());
    listed = nft::list_ruleset();
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(listed->find("10.1.2.0/24"), std::string::npos) << *listed;
    EXPECT_NE(listed->find("snat ip to 10.200.0.10"), std::string::npos) << *listed;

    ASSERT_TRUE(nft::apply(*render_delete_table(kInstanceTable)).ok());
    ASSERT_TRUE(nft::apply(*render_delete_table(kInstanceTable)).ok());  // absent: still fine
    EXPECT_EQ(*nft::list_ruleset(), "");
  });
}

TEST_F(Nftables, HostTableLoads) {
  auto host = render_host_rules(kDefaultInstanceRange);
  ASSERT_TRUE(host.ok());
  in_new_netns([&] {
    Status applied = nft::apply(host->ruleset);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
    ASSERT_TRUE(nft::apply(host->ruleset).ok());
    auto listed = nft::list_ruleset();
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(count(*listed, "table inet kiln {"), 1u) << *listed;
    EXPECT_NE(listed->find("iifname \"kv*\" oifname \"kv*\" jump refuse"), std::string::npos) << *listed;
    EXPECT_NE(listed->find("oifname != \"kv*\" ip saddr 10.200.0.0/16 masquerade"), std::string::npos) << *listed;
  });
}

TEST_F(Nftables, ErrorsCarryNftsText) {
  in_new_netns([] {
    Status bad = nft::apply("table inet t {\n\tchain c {\n\t\tfrobnicate\n\t}\n}\n");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message.rfind("nft apply: Error: syntax error", 0), 0u) << bad.error().message;
    Status missing = nft::apply("add rule inet nosuchtable c accept\n");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("No such file or directory"), std::string::npos) << missing.error().message;
    EXPECT_NE(missing.error().message.find("add rule inet nosuchtable c accept"), std::string::npos)
        << missing.error().message;
    // All or nothing: the valid table before the error is not created either.
    EXPECT_FALSE(nft::apply("table inet ok {}\ntable inet t { chain c { frobnicate } }\n").ok());
    EXPECT_EQ(*nft::list_ruleset(), "");
    EXPECT_FALSE(nft::apply(std::string("table inet t {}\0x", 18)).ok());
  });
  // The namespaces were the threads' own: this one has no kiln table.
  auto here = nft::list_ruleset();
  if (here.ok()) {
    EXPECT_EQ(here->find("table inet kiln_instance"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::net

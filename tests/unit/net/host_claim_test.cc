// The host claim that keeps kilnds sharing a host apart: the name format, reading claims back
// from /proc/net/unix, the conflicts, and real abstract sockets in this process's netns.
#include "src/net/host_claim.h"

#include <gtest/gtest.h>

namespace kiln::net {
namespace {

protocol::IpPrefix cidr(const char* text) { return *protocol::parse_ip_prefix(text, protocol::IpFamily::kV4); }

TEST(HostClaim, NameAndParse) {
  EXPECT_EQ(claim_name({"kv", cidr("10.200.0.0/16")}), "kiln-net/kv/10.200.0.0/16");
  const char* table =
      "Num       RefCount Protocol Flags    Type St Inode Path\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 1001 @kiln-net/kv/10.200.0.0/16\n"
      "0000000000000000: 00000002 00000000 00010000 0001 01 1002 /run/kilnd.sock\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 1003 @kiln-net/kb/10.201.0.0/16\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 1004 @kiln-net/kc/not-a-range\n"
      "0000000000000000: 00000002 00000000 00000000 0001 01 1005 @kiln-net//10.9.0.0/16\n"
      "0000000000000000: 00000003 00000000 00000000 0001 03 1006\n";
  EXPECT_EQ(parse_claims(table), (std::vector<NetworkClaim>{{"kv", cidr("10.200.0.0/16")},
                                                             {"kb", cidr("10.201.0.0/16")}}));
  EXPECT_TRUE(parse_claims("").empty());
}

TEST(HostClaim, Conflicts) {
  const NetworkClaim kv{"kv", cidr("10.200.0.0/16")};
  EXPECT_FALSE(claim_conflict(kv, {"kb", cidr("10.201.0.0/16")}).has_value());
  EXPECT_EQ(claim_conflict(kv, {"kv", cidr("10.201.0.0/16")}).value_or(""),
            "another kilnd on this host has link prefix 'kv', instance range 10.201.0.0/16: the same link prefix");
  EXPECT_NE(claim_conflict(kv, {"kb", cidr("10.200.64.0/18")}).value_or("").find("the instance ranges overlap"),
            std::string::npos);
  EXPECT_NE(claim_conflict(kv, {"kb", cidr("10.0.0.0/8")}).value_or("").find("the instance ranges overlap"),
            std::string::npos);
  EXPECT_NE(claim_conflict({"ka", cidr("10.1.0.0/16")}, {"kab", cidr("10.2.0.0/16")})
                .value_or("")
                .find("one link prefix starts with the other"),
            std::string::npos);
}

TEST(HostClaim, ASecondKilndIsRefusedUntilTheFirstEnds) {
  // Unusual names and TEST-NET-2 ranges: nothing else on this machine claims them.
  const NetworkClaim first{"zqa", cidr("198.51.100.0/26")};
  std::optional<Result<HostClaim>> held;
  held.emplace(HostClaim::take(first));
  ASSERT_TRUE(held->ok()) << held->error().message;

  auto same = HostClaim::take(first);
  ASSERT_FALSE(same.ok());
  EXPECT_EQ(same.error().message,
            "another kilnd on this host has link prefix 'zqa', instance range 198.51.100.0/26");
  auto overlapping = HostClaim::take({"zqb", cidr("198.51.100.0/24")});
  ASSERT_FALSE(overlapping.ok());
  EXPECT_NE(overlapping.error().message.find("the instance ranges overlap"), std::string::npos);
  auto apart = HostClaim::take({"zqb", cidr("198.51.100.64/26")});
  EXPECT_TRUE(apart.ok()) << apart.error().message;

  held.reset();  // the first kilnd ends: its claim goes with its socket
  auto again = HostClaim::take(first);
  EXPECT_TRUE(again.ok()) << again.error().message;
}

}  // namespace
}  // namespace kiln::net

// Link prefixes (one per kilnd on a host): which are refused and why, and the host table each
// one gets ("kiln" for the default, as before prefixes existed).
#include "src/net/link_prefix.h"

#include <gtest/gtest.h>

namespace kiln::net {
namespace {

protocol::IpPrefix cidr(const char* text) { return *protocol::parse_ip_prefix(text, protocol::IpFamily::kV4); }

std::string problem(std::string_view prefix, const char* range = "10.200.0.0/16") {
  return link_prefix_problem(prefix, cidr(range)).value_or("<ok>");
}

TEST(LinkPrefix, AcceptsShortLowercaseNames) {
  EXPECT_EQ(problem("kv"), "<ok>");
  EXPECT_EQ(problem("kv", "10.0.0.0/8"), "<ok>");  // kv4194303: 9 bytes
  EXPECT_EQ(problem("ka"), "<ok>");
  EXPECT_EQ(problem("k2b"), "<ok>");
  EXPECT_EQ(problem("benchab"), "<ok>");
  EXPECT_EQ(problem("abcdefghij", "10.200.0.0/16"), "<ok>");  // + 16383: 15 bytes
}

TEST(LinkPrefix, RefusesWhatCouldCollide) {
  EXPECT_EQ(problem(""), "must not be empty");
  EXPECT_EQ(problem("Kv"), "may hold only a-z and 0-9");
  EXPECT_EQ(problem("k-v"), "may hold only a-z and 0-9");
  EXPECT_EQ(problem("k v"), "may hold only a-z and 0-9");
  EXPECT_EQ(problem("k\"x"), "may hold only a-z and 0-9");
  EXPECT_EQ(problem("k1"), "must start and end with a letter");  // k1<N> would be k<digits>
  EXPECT_EQ(problem("1k"), "must start and end with a letter");
  EXPECT_EQ(problem("kva"), "must not start with \"kv\" (the default kilnd's links)");
  EXPECT_EQ(problem("abcdefghijk", "10.200.0.0/16"),
            "'abcdefghijk' is too long: with slot numbers up to 16383 (instance_range 10.200.0.0/16) link "
            "names exceed 15 characters");
  EXPECT_EQ(problem("abcdefghijk", "10.200.0.0/24"), "<ok>");  // slots up to 63
  EXPECT_NE(problem("abcdefghi", "10.0.0.0/8"), "<ok>");  // + 4194303: 16 bytes
}

TEST(LinkPrefix, HostTableName) {
  EXPECT_EQ(host_table_name("kv"), "kiln");
  EXPECT_EQ(host_table_name("ka"), "kiln_ka");
  EXPECT_EQ(host_table_name("bench2x"), "kiln_bench2x");
}

}  // namespace
}  // namespace kiln::net

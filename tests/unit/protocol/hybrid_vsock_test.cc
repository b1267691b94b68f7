// Hybrid vsock handshake: request text, reply parsing with partial, trailing and hostile input.
#include "common/protocol/hybrid_vsock.h"

#include <gtest/gtest.h>

namespace kiln::protocol {
namespace {

TEST(HybridVsock, Request) { EXPECT_EQ(hybrid_connect_request(10000), "CONNECT 10000\n"); }

TEST(HybridVsock, ReplyPartialCompleteAndTrailingData) {
  auto partial = parse_hybrid_reply("OK 10");
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(partial->complete);
  auto done = parse_hybrid_reply("OK 1073741824\nKF\x01");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->complete);
  EXPECT_EQ(done->host_port, 1073741824u);
  EXPECT_EQ(done->consumed, 14u);
  EXPECT_FALSE(parse_hybrid_reply("").value().complete);
}

TEST(HybridVsock, HostileReplies) {
  EXPECT_FALSE(parse_hybrid_reply("ERR\n").ok());
  EXPECT_FALSE(parse_hybrid_reply("NO ").ok());
  EXPECT_FALSE(parse_hybrid_reply("OK \n").ok());
  EXPECT_FALSE(parse_hybrid_reply("OK -1\n").ok());
  EXPECT_FALSE(parse_hybrid_reply("OK 4294967296\n").ok());
  EXPECT_FALSE(parse_hybrid_reply("OK " + std::string(40, '1')).ok());
}

}  // namespace
}  // namespace kiln::protocol

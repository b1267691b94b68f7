// Hybrid vsock handshake: request text, reply parsing with partial, trailing and hostile input;
// the VMM side (CONNECT parsing, OK text) and both sides agreeing.
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

TEST(HybridVsock, ConnectLineOnTheVmmSide) {
  EXPECT_EQ(*parse_hybrid_connect("CONNECT 52\n"), 52u);
  EXPECT_EQ(*parse_hybrid_connect("connect 52\n"), 52u);
  EXPECT_EQ(*parse_hybrid_connect("CONNECT 52\r\n"), 52u);
  EXPECT_EQ(*parse_hybrid_connect("CONNECT   4294967295\n"), 4294967295u);
  for (const char* bad : {"CONNECT 52", "CONNECT\n", "CONNECT \n", "\n", "", "CONNECT -1\n",
                          "CONNECT +5\n", "CONNECT 4294967296\n", "CONNECT 52 53\n",
                          "CONNECTX 52\n", "CONECT 52\n", "CONNECT 0x10\n", "CONNECT 5a\n",
                          "OK 52\n", "CONNECT\t\n"}) {
    EXPECT_FALSE(parse_hybrid_connect(bad).ok()) << bad;
  }
  std::string longline = "CONNECT " + std::string(100, '1') + "\n";
  EXPECT_FALSE(parse_hybrid_connect(longline).ok());
  std::string nul("CONNECT 5\0\n", 11);
  EXPECT_FALSE(parse_hybrid_connect(nul).ok());
  EXPECT_EQ(hybrid_connect_reply(1073741824), "OK 1073741824\n");
}

TEST(HybridVsock, BothSidesAgree) {
  for (uint32_t port : {0u, 52u, 10000u, 4294967295u}) {
    EXPECT_EQ(*parse_hybrid_connect(hybrid_connect_request(port)), port);
    auto reply = parse_hybrid_reply(hybrid_connect_reply(port));
    ASSERT_TRUE(reply.ok());
    EXPECT_TRUE(reply->complete);
    EXPECT_EQ(reply->host_port, port);
  }
}

}  // namespace
}  // namespace kiln::protocol

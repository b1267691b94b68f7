// ttrpc framing (shim/ttrpc/framing.h): the header's bytes, split and joined streams, and
// hostile frames (oversized announcements are skipped without buffering, the stream goes on).
#include "shim/ttrpc/framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::shim::ttrpc {
namespace {

Message request(std::uint32_t stream, std::string payload) {
  return Message{stream, static_cast<std::uint8_t>(MessageType::kRequest), 0, std::move(payload)};
}

std::vector<Decoded> drain(Decoder& d) {
  std::vector<Decoded> out;
  while (auto m = d.next()) out.push_back(std::move(*m));
  return out;
}

TEST(TtrpcFraming, HeaderIsBigEndianLengthStreamTypeFlags) {
  auto bytes = encode(Message{0x01020304, 2, kFlagRemoteClosed | kFlagNoData, "abc"});
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, std::string("\0\0\0\3\1\2\3\4\2\5abc", 13));
}

TEST(TtrpcFraming, MessagesSurviveAnySplitOfTheStream) {
  std::string stream;
  std::vector<Message> sent = {request(1, "first"), request(3, ""), Message{3, 3, kFlagRemoteOpen, std::string(70000, 'x')},
                               request(5, std::string("\0\1\2", 3))};
  for (const auto& m : sent) stream += *encode(m);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, stream.size()}) {
    Decoder d;
    std::vector<Message> got;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      d.feed(std::string_view(stream).substr(at, chunk));
      for (auto& m : drain(d)) {
        EXPECT_FALSE(m.oversized);
        got.push_back(std::move(m.message));
      }
    }
    EXPECT_EQ(got, sent) << "chunks of " << chunk;
    EXPECT_FALSE(d.mid_message());
  }
}

TEST(TtrpcFraming, AnOversizedMessageIsSkippedAndTheNextOneDecoded) {
  Decoder d(1024);
  // Announces 1 MiB on stream 7, sends it, then a normal message.
  std::string huge("\0\x10\0\0\0\0\0\7\1\0", 10);
  huge += std::string(1 << 20, 'z');
  const std::string after = *encode(request(9, "after"));
  std::vector<Decoded> got;
  for (std::size_t at = 0; at < huge.size(); at += 65536) {
    d.feed(std::string_view(huge).substr(at, 65536));
    for (auto& m : drain(d)) got.push_back(std::move(m));
  }
  d.feed(after);
  for (auto& m : drain(d)) got.push_back(std::move(m));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].oversized);
  EXPECT_EQ(got[0].declared_length, 1u << 20);
  EXPECT_EQ(got[0].message.stream_id, 7u);
  EXPECT_TRUE(got[0].message.payload.empty());
  EXPECT_FALSE(got[1].oversized);
  EXPECT_EQ(got[1].message, request(9, "after"));
}

TEST(TtrpcFraming, AHostileAnnouncementIsNeverBuffered) {
  Decoder d;
  d.feed(std::string("\xff\xff\xff\xff\0\0\0\1\1\0", 10));
  auto m = d.next();
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->oversized);
  EXPECT_EQ(m->declared_length, 0xffffffffu);
  // 4 GiB announced: every byte after it is dropped as it arrives, none is kept.
  for (int i = 0; i < 64; ++i) {
    d.feed(std::string(1 << 16, 'q'));
    EXPECT_FALSE(d.next().has_value());
  }
  EXPECT_TRUE(d.mid_message());
}

TEST(TtrpcFraming, PartialHeadersWaitAndUnknownTypesArePassedOn) {
  Decoder d;
  const std::string bytes = *encode(Message{11, 42, 0x80, "?"});
  d.feed(bytes.substr(0, 9));
  EXPECT_FALSE(d.next().has_value());
  EXPECT_TRUE(d.mid_message());
  d.feed(bytes.substr(9));
  auto m = d.next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->message.type, 42);  // the server answers what it does not know
  EXPECT_EQ(m->message.flags, 0x80);
}

TEST(TtrpcFraming, EncodeRefusesWhatNoPeerAccepts) {
  auto zero = encode(request(0, "x"));
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("stream id 0"), std::string::npos);
  auto big = encode(request(1, std::string(kMaxMessage + 1, 'x')));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("over the 4194304-byte limit"), std::string::npos);
  EXPECT_TRUE(encode(request(1, std::string(kMaxMessage, 'x'))).ok());
}

}  // namespace
}  // namespace kiln::shim::ttrpc

// Frame encode/decode, including hostile frames: bad magic/version, oversized, truncated.
#include "common/protocol/frame.h"

#include <gtest/gtest.h>

namespace kiln::protocol {
namespace {

std::string header(std::uint8_t type, std::uint32_t len) {
  std::string h;
  append_frame_header(h, static_cast<FrameType>(type), len);
  return h;
}

TEST(Frame, RoundTripAndExactLayout) {
  auto f = encode_frame(FrameType::kLog, "abc");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), kHeaderSize + 3);
  EXPECT_EQ(std::string_view(*f).substr(0, 8), std::string_view("KF\x01\x13\x03\x00\x00\x00", 8));
  auto d = decode_frame(*f);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, DecodeState::kFrame);
  EXPECT_EQ(d->frame.type, FrameType::kLog);
  EXPECT_EQ(d->frame.payload, "abc");
  EXPECT_EQ(d->consumed, f->size());
}

TEST(Frame, EmptyPayload) {
  auto f = encode_frame(FrameType::kStatusRequest, "");
  ASSERT_TRUE(f.ok());
  auto d = decode_frame(*f);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, DecodeState::kFrame);
  EXPECT_TRUE(d->frame.payload.empty());
}

TEST(Frame, EncodeRejectsOversizedPayload) {
  std::string big(kMaxPayload + 1, 'x');
  EXPECT_FALSE(encode_frame(FrameType::kLog, big).ok());
  std::string max(kMaxPayload, 'x');
  EXPECT_TRUE(encode_frame(FrameType::kLog, max).ok());
}

TEST(Frame, TruncatedNeedsMore) {
  auto f = encode_frame(FrameType::kAck, "hello");
  ASSERT_TRUE(f.ok());
  for (std::size_t n = 0; n < f->size(); ++n) {
    auto d = decode_frame(std::string_view(*f).substr(0, n));
    ASSERT_TRUE(d.ok()) << n;
    EXPECT_EQ(d->state, DecodeState::kNeedMore) << n;
  }
}

TEST(Frame, HostileHeaders) {
  EXPECT_FALSE(decode_frame("X").ok());
  EXPECT_FALSE(decode_frame("KX").ok());
  EXPECT_FALSE(decode_frame(std::string("KF\x02", 3)).ok());  // unknown version
  EXPECT_FALSE(decode_frame(header(19, kMaxPayload + 1)).ok());
  EXPECT_FALSE(decode_frame(header(19, 0xffffffffu)).ok());
  // At the cap, a header alone is simply incomplete.
  auto d = decode_frame(header(19, kMaxPayload));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, DecodeState::kNeedMore);
}

TEST(Frame, UnknownTypeIsReturnedForTheReceiverToReject) {
  auto d = decode_frame(header(200, 0));
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->state, DecodeState::kFrame);
  EXPECT_EQ(static_cast<int>(d->frame.type), 200);
  EXPECT_FALSE(is_known_frame_type(200));
  EXPECT_TRUE(is_known_frame_type(static_cast<std::uint8_t>(FrameType::kExit)));
  EXPECT_FALSE(is_known_frame_type(0));
}

TEST(FrameDecoder, ByteByByteStream) {
  std::string stream = *encode_frame(FrameType::kLog, "one") + *encode_frame(FrameType::kExit, "") +
                       *encode_frame(FrameType::kReady, std::string(1000, 'r'));
  FrameDecoder dec;
  std::vector<Frame> got;
  for (char c : stream) {
    ASSERT_TRUE(dec.feed(std::string_view(&c, 1)).ok());
    Frame f;
    while (dec.next(&f)) got.push_back(f);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, "one");
  EXPECT_EQ(got[1].type, FrameType::kExit);
  EXPECT_EQ(got[2].payload.size(), 1000u);
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(FrameDecoder, OversizedLengthFailsBeforeBuffering) {
  FrameDecoder dec;
  EXPECT_FALSE(dec.feed(header(19, kMaxPayload + 1)).ok());
  EXPECT_TRUE(dec.failed());
  Frame f;
  EXPECT_FALSE(dec.next(&f));
  EXPECT_FALSE(dec.feed("more").ok());  // latched
}

TEST(FrameDecoder, CustomCap) {
  FrameDecoder dec(16);
  EXPECT_FALSE(dec.feed(header(19, 17)).ok());
}

TEST(FrameDecoder, GarbageAfterValidFrameLatchesFailure) {
  FrameDecoder dec;
  std::string s = *encode_frame(FrameType::kAck, "x") + "garbage";
  ASSERT_TRUE(dec.feed(s).ok());  // the first frame is fine
  Frame f;
  ASSERT_TRUE(dec.next(&f));
  EXPECT_EQ(f.payload, "x");
  EXPECT_TRUE(dec.failed());
  EXPECT_FALSE(dec.next(&f));
}

// Deterministic pseudo-random garbage and mutated valid frames: decoders must only ever
// return frames, "need more" or errors (the fuzz targets go further; this runs in every CI).
TEST(Frame, RandomAndMutatedInputNeverCrash) {
  std::uint32_t x = 12345;
  auto rnd = [&x] {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  std::string valid = *encode_frame(FrameType::kLog, std::string(40, 'p'));
  for (int i = 0; i < 5000; ++i) {
    std::string s = valid;
    if (i % 2) {
      s.resize(rnd() % 64);
      for (auto& c : s) c = static_cast<char>(rnd());
    } else {
      for (int k = 0; k < 3; ++k) s[rnd() % s.size()] = static_cast<char>(rnd());
    }
    auto d = decode_frame(s);
    if (d.ok() && d->state == DecodeState::kFrame) {
      EXPECT_LE(d->consumed, s.size());
    }
    FrameDecoder dec;
    (void)dec.feed(s);
    Frame f;
    while (dec.next(&f)) {
      EXPECT_LE(f.payload.size(), kMaxPayload);
    }
  }
}

}  // namespace
}  // namespace kiln::protocol

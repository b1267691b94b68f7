// Typed event/control payloads round-trip through frames; malformed ones are rejected.
#include "common/protocol/messages.h"

#include <gtest/gtest.h>

#include "common/protocol/record.h"

namespace kiln::protocol {
namespace {

Frame decode_one(const Result<std::string>& bytes) {
  EXPECT_TRUE(bytes.ok());
  auto d = decode_frame(*bytes);
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d->state, DecodeState::kFrame);
  return d->frame;
}

TEST(Messages, LogRoundTrip) {
  LogEvent e{7, 1700000000123456789ull, LogStream::kStderr, std::string("a\0b", 3), true, "req-1"};
  Frame f = decode_one(encode(e));
  ASSERT_EQ(f.type, FrameType::kLog);
  auto d = decode_log(f.payload);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->seq, 7u);
  EXPECT_EQ(d->ts_ns, 1700000000123456789ull);
  EXPECT_EQ(d->stream, LogStream::kStderr);
  EXPECT_EQ(d->data, std::string("a\0b", 3));
  EXPECT_TRUE(d->partial);
  EXPECT_EQ(d->request_id, "req-1");
  // Without a request the key is left out and decodes to "".
  auto bare = decode_log(decode_one(encode(LogEvent{8, 1, LogStream::kStdout, "x", false, ""})).payload);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->request_id, "");
}

TEST(Messages, LogRequestIdIsBounded) {
  const std::string long_id(kMaxLogRequestId + 1, 'r');
  EXPECT_FALSE(encode(LogEvent{1, 1, LogStream::kStdout, "x", false, long_id}).ok());
  auto payload = Record().add("seq", "1").add("ts", "1").add("stream", "stdout").add("data", "x").add("request", long_id).encode();
  ASSERT_TRUE(payload.ok());
  auto d = decode_log(*payload);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("request id too long"), std::string::npos) << d.error().message;
}

TEST(Messages, ExitCodeAndSignal) {
  auto c = decode_exit(decode_one(encode(ExitEvent{3, 12, false, 42})).payload);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->signaled);
  EXPECT_EQ(c->code, 42);
  auto s = decode_exit(decode_one(encode(ExitEvent{4, 12, true, 9})).payload);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->signaled);
  EXPECT_EQ(s->code, 9);
  EXPECT_FALSE(decode_exit(*Record().add("seq", "1").encode()).ok());
  EXPECT_FALSE(decode_exit(*Record().add("seq", "1").add("code", "99999999999").encode()).ok());
}

TEST(Messages, ReadyNotReadyDroppedHello) {
  auto r = decode_ready(decode_one(encode(ReadyEvent{1, 9000, 15})).payload);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 9000);
  auto n = decode_not_ready(decode_one(encode(NotReadyEvent{2, 9000, 3000, "not ready after 3 s"})).payload);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->message, "not ready after 3 s");
  auto dr = decode_dropped(decode_one(encode(DroppedEvent{5, 17})).payload);
  ASSERT_TRUE(dr.ok());
  EXPECT_EQ(dr->count, 17u);
  auto h = decode_hello(decode_one(encode(HelloEvent{1, "0.1", "b", "i", "waiting"})).payload);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->state, "waiting");
  EXPECT_FALSE(decode_ready(*Record().add("seq", "1").add("port", "70000").encode()).ok());
  EXPECT_FALSE(decode_log(*Record().add("seq", "1").add("ts", "1").add("stream", "x").add("data", "").encode()).ok());
}

TEST(Messages, ControlRoundTrip) {
  auto a = decode_ack(decode_one(encode(Ack{false, "nope"})).payload);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->ok);
  EXPECT_EQ(a->message, "nope");
  StatusReply s;
  s.state = "running";
  s.pid = 5;
  s.ready = true;
  s.exited = true;
  s.signaled = true;
  s.exit_code = 15;
  s.dropped = 3;
  auto sd = decode_status(decode_one(encode(s)).payload);
  ASSERT_TRUE(sd.ok());
  EXPECT_EQ(sd->state, "running");
  EXPECT_TRUE(sd->signaled);
  EXPECT_EQ(sd->exit_code, 15);
  EXPECT_EQ(sd->dropped, 3u);
  auto id = decode_identity(decode_one(encode(IdentityRequest{"h2", "i2", 99, ""})).payload);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->wall_clock_ns, 99u);
  EXPECT_TRUE(id->entropy.empty());
  IdentityRequest seeded{"h3", "i3", 1, std::string("\x00\xff\x10 binary", 10)};
  auto id2 = decode_identity(decode_one(encode(seeded)).payload);
  ASSERT_TRUE(id2.ok()) << id2.error().message;
  EXPECT_EQ(id2->entropy, seeded.entropy);
  EXPECT_FALSE(encode(IdentityRequest{"", "", 0, std::string(kMaxIdentityEntropy + 1, 'x')}).ok());
  for (const char* bad : {"zz", "abc", ""}) {
    Record r;
    r.add("entropy", bad);
    auto payload = r.encode();
    ASSERT_TRUE(payload.ok());
    auto decoded = decode_identity(*payload);
    if (std::string_view(bad).empty()) {
      EXPECT_TRUE(decoded.ok());
    } else {
      EXPECT_FALSE(decoded.ok()) << bad;
    }
  }
  Record big;
  big.add("entropy", std::string(2 * kMaxIdentityEntropy + 2, 'a'));
  EXPECT_FALSE(decode_identity(*big.encode()).ok());
  auto sh = decode_shutdown(decode_one(encode(ShutdownRequest{true, 250})).payload);
  ASSERT_TRUE(sh.ok());
  EXPECT_TRUE(sh->has_grace);
  EXPECT_EQ(sh->grace_ms, 250u);
  EXPECT_FALSE(decode_shutdown(decode_one(encode(ShutdownRequest{})).payload)->has_grace);
  EXPECT_EQ(decode_one(encode_status_request()).type, FrameType::kStatusRequest);
}

}  // namespace
}  // namespace kiln::protocol

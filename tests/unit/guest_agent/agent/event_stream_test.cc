// EventStream: hello first, seq numbering, the bounded log buffer with its dropped counter,
// and delivery once the host side appears (connect retries with backoff until then).
#include "guest-agent/agent/event_stream.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <filesystem>

#include "common/protocol/frame.h"

namespace kiln::agent {
namespace {

using protocol::FrameType;

TEST(EventStream, BoundedBufferCountsDropsAndDeliversAfterLateListener) {
  char tmpl[] = "/tmp/kiln-events-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/events.sock";

  EventLoop loop;
  ASSERT_TRUE(loop.init().ok());
  EventStreamLimits limits;
  limits.max_log_events = 3;
  EventStream stream(loop, Endpoint::unix_path(path), limits, [] {
    protocol::HelloEvent h;
    h.state = "test";
    return h;
  });
  stream.start();  // nothing listens yet: connect fails, retries with backoff
  for (int i = 0; i < 5; ++i) {
    stream.log(protocol::LogStream::kStdout, 100 + i, "line " + std::to_string(i), false);
  }
  EXPECT_EQ(stream.dropped_total(), 2u);
  stream.exit(42, false, 7);

  std::vector<protocol::Frame> got;
  UniqueFd conn;
  protocol::FrameDecoder dec;
  auto listener = listen_on(Endpoint::unix_path(path));
  ASSERT_TRUE(listener.ok());
  int lfd = listener->get();
  ASSERT_TRUE(loop.add(lfd, EPOLLIN, [&](std::uint32_t) {
    conn.reset(accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!conn) return;
    (void)loop.remove(lfd);
    int cfd = conn.get();
    (void)loop.add(cfd, EPOLLIN, [&, cfd](std::uint32_t) {
      char buf[4096];
      ssize_t n = recv(cfd, buf, sizeof(buf), 0);
      if (n <= 0) {
        loop.stop();
        return;
      }
      ASSERT_TRUE(dec.feed(std::string_view(buf, static_cast<std::size_t>(n))).ok());
      protocol::Frame f;
      while (dec.next(&f)) {
        got.push_back(f);
        if (f.type == FrameType::kExit) loop.stop();
      }
    });
  }).ok());
  bool timed_out = false;
  loop.add_timer_ms(20000, [&] {
    timed_out = true;
    loop.stop();
  });
  ASSERT_TRUE(loop.run().ok());
  ASSERT_FALSE(timed_out);

  std::vector<FrameType> types;
  for (const auto& f : got) types.push_back(f.type);
  EXPECT_EQ(types, (std::vector<FrameType>{FrameType::kHello, FrameType::kLog, FrameType::kLog,
                                           FrameType::kLog, FrameType::kDropped, FrameType::kExit}));
  ASSERT_EQ(got.size(), 6u);
  auto hello = protocol::decode_hello(got[0].payload);
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(hello->seq, 1u);  // the first queued event
  EXPECT_EQ(hello->state, "test");
  for (int i = 0; i < 3; ++i) {
    auto l = protocol::decode_log(got[1 + i].payload);
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->seq, static_cast<std::uint64_t>(1 + i));
    EXPECT_EQ(l->data, "line " + std::to_string(i));
    EXPECT_EQ(l->ts_ns, static_cast<std::uint64_t>(100 + i));
  }
  auto dropped = protocol::decode_dropped(got[4].payload);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped->count, 2u);
  EXPECT_EQ(dropped->seq, 4u);
  auto ex = protocol::decode_exit(got[5].payload);
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(ex->pid, 42u);
  EXPECT_EQ(ex->code, 7);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace kiln::agent

// KeptStreams: newest first, only fresh and quiet streams come back, at most `max` kept.
#include "src/pool/kept_streams.h"

#include <gtest/gtest.h>

#include <utility>

namespace kiln::kilnd::pool {
namespace {

using namespace std::chrono_literals;

struct Pair {
  local::socket kilnd_side, server_side;
};

Pair make_pair(asio::io_context& io) {
  Pair p{local::socket(io), local::socket(io)};
  asio::local::connect_pair(p.kilnd_side, p.server_side);
  return p;
}

// Which pair a stream taken back belongs to: write through it, see where it arrives.
bool same_stream(local::socket& taken, local::socket& server_side) {
  asio::write(taken, asio::buffer("x", 1));
  char c = 0;
  beast::error_code ec;
  server_side.non_blocking(true);
  std::size_t n = server_side.read_some(asio::buffer(&c, 1), ec);
  return !ec && n == 1 && c == 'x';
}

TEST(KeptStreams, NewestFreshStreamFirstThenNone) {
  asio::io_context io;
  KeptStreams kept;
  const auto t0 = KeptStreams::Clock::now();
  Pair a = make_pair(io), b = make_pair(io);
  kept.give(std::move(a.kilnd_side), t0, 4);
  kept.give(std::move(b.kilnd_side), t0 + 10ms, 4);
  EXPECT_EQ(kept.size(), 2u);
  auto first = kept.take(t0 + 20ms);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(same_stream(*first, b.server_side));
  auto second = kept.take(t0 + 20ms);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(same_stream(*second, a.server_side));
  EXPECT_FALSE(kept.take(t0 + 20ms).has_value());
}

TEST(KeptStreams, StaleClosedOrReadableStreamsAreDropped) {
  asio::io_context io;
  KeptStreams kept;
  const auto t0 = KeptStreams::Clock::now();
  {
    Pair old = make_pair(io);
    kept.give(std::move(old.kilnd_side), t0, 4);
    EXPECT_FALSE(kept.take(t0 + KeptStreams::kReuseFor + 1ms).has_value());  // stale
    EXPECT_EQ(kept.size(), 0u);
  }
  Pair closed = make_pair(io), chatty = make_pair(io), good = make_pair(io);
  kept.give(std::move(good.kilnd_side), t0, 4);
  kept.give(std::move(closed.kilnd_side), t0, 4);
  kept.give(std::move(chatty.kilnd_side), t0, 4);
  closed.server_side.close();                               // the server hung up while idle
  asio::write(chatty.server_side, asio::buffer("HTTP", 4));  // bytes nobody asked for
  auto taken = kept.take(t0 + 1ms);
  ASSERT_TRUE(taken.has_value());
  EXPECT_TRUE(same_stream(*taken, good.server_side));
  EXPECT_EQ(kept.size(), 0u);
}

TEST(KeptStreams, AtMostMaxKeptOldestGoesFirst) {
  asio::io_context io;
  KeptStreams kept;
  const auto t0 = KeptStreams::Clock::now();
  Pair a = make_pair(io), b = make_pair(io), c = make_pair(io);
  kept.give(std::move(a.kilnd_side), t0, 2);
  kept.give(std::move(b.kilnd_side), t0, 2);
  kept.give(std::move(c.kilnd_side), t0, 2);
  EXPECT_EQ(kept.size(), 2u);
  auto first = kept.take(t0);
  auto second = kept.take(t0);
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(same_stream(*first, c.server_side));
  EXPECT_TRUE(same_stream(*second, b.server_side));
  EXPECT_FALSE(kept.take(t0).has_value());
  Pair d = make_pair(io);
  d.kilnd_side.close();
  kept.give(std::move(d.kilnd_side), t0, 2);  // a closed socket is not kept
  EXPECT_EQ(kept.size(), 0u);
}

}  // namespace
}  // namespace kiln::kilnd::pool

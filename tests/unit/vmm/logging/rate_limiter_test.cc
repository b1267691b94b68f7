// Token bucket behaviour with an injected clock (no sleeping, no timing assertions).
#include "vmm/logging/rate_limiter.h"

#include <gtest/gtest.h>

namespace kiln::vmm::logging {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  RateLimiter::Clock::time_point now{};
  RateLimiter::NowFn fn() {
    return [this] { return now; };
  }
};

TEST(RateLimiter, AllowsBurstThenRefuses) {
  FakeClock clock;
  RateLimiter rl(3, 3s, clock.fn());
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_FALSE(rl.try_acquire());
  EXPECT_FALSE(rl.try_acquire());
  EXPECT_EQ(rl.take_suppressed(), 2u);
  EXPECT_EQ(rl.take_suppressed(), 0u);
}

TEST(RateLimiter, RefillsProportionallyToElapsedTime) {
  FakeClock clock;
  RateLimiter rl(3, 3s, clock.fn());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(rl.try_acquire());
  ASSERT_FALSE(rl.try_acquire());
  clock.now += 999ms;  // not quite one token (1 s per token)
  EXPECT_FALSE(rl.try_acquire());
  clock.now += 1ms;
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_FALSE(rl.try_acquire());
}

TEST(RateLimiter, NeverExceedsBurstAfterLongIdle) {
  FakeClock clock;
  RateLimiter rl(2, 1s, clock.fn());
  clock.now += 24h;
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_FALSE(rl.try_acquire());
}

TEST(RateLimiter, ClockGoingBackwardsAddsNothing) {
  FakeClock clock;
  clock.now += 10s;
  RateLimiter rl(1, 1s, clock.fn());
  ASSERT_TRUE(rl.try_acquire());
  clock.now -= 5s;
  EXPECT_FALSE(rl.try_acquire());
}

TEST(RateLimiter, ByteBudgets) {
  FakeClock clock;
  RateLimiter rl(1000, 1s, clock.fn());  // 1000 bytes per second
  EXPECT_TRUE(rl.try_acquire(600));
  EXPECT_FALSE(rl.try_acquire(600));  // all or nothing
  EXPECT_TRUE(rl.try_acquire(400));
  EXPECT_FALSE(rl.try_acquire(1));
  clock.now += 500ms;
  EXPECT_TRUE(rl.try_acquire(500));
  EXPECT_FALSE(rl.try_acquire(1001));  // more than the burst never passes
  clock.now += 10s;
  EXPECT_FALSE(rl.try_acquire(1001));
  EXPECT_TRUE(rl.try_acquire(1000));
}

TEST(RateLimiter, ZeroBurstIsTreatedAsOne) {
  FakeClock clock;
  RateLimiter rl(0, 1s, clock.fn());
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_FALSE(rl.try_acquire());
}

}  // namespace
}  // namespace kiln::vmm::logging

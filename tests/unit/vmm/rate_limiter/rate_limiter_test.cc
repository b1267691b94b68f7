// RateLimiter: no buckets, no limit; with both, an operation passes only when both have room and
// a refusal charges neither; the wait is the longer of the two; errors name the bucket.
#include "vmm/rate_limiter/rate_limiter.h"

#include <gtest/gtest.h>

namespace kiln::vmm::rate_limiter {
namespace {

constexpr Nanos kMs = 1000000;

TEST(RateLimiter, WithoutBucketsEverythingPasses) {
  RateLimiter none;
  EXPECT_FALSE(none.limited());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(none.consume(1 << 20, 0));
  EXPECT_EQ(none.wait_for(1ull << 40, 0), 0u);
}

TEST(RateLimiter, BothBucketsMustHaveRoomAndARefusalChargesNeither) {
  RateLimiterConfig config;
  config.bandwidth = TokenBucketConfig{1000, 0, 1000};  // 1000 bytes a second
  config.ops = TokenBucketConfig{2, 0, 1000};  // 2 operations a second
  auto made = RateLimiter::make(config, 0);
  ASSERT_TRUE(made.ok()) << made.error().message;
  RateLimiter r = std::move(*made);
  EXPECT_TRUE(r.limited());
  EXPECT_TRUE(r.consume(100, 0));
  EXPECT_TRUE(r.consume(100, 0));
  EXPECT_FALSE(r.consume(100, 0));  // ops empty; the bytes stay
  EXPECT_EQ(r.wait_for(100, 0), 500 * kMs);  // one op refills in 500 ms
  EXPECT_TRUE(r.consume(800, 500 * kMs));  // 1000 bytes (the refusal charged none), 1 op
  EXPECT_FALSE(r.consume(750, 1000 * kMs));  // 700 bytes now: short; 1 op: fine
  EXPECT_EQ(r.wait_for(750, 1000 * kMs), 50 * kMs);
  r.give_back(100);  // an operation of 100 bytes charged and not carried out
  EXPECT_TRUE(r.consume(750, 1000 * kMs));
}

TEST(RateLimiter, ABadBucketIsNamed) {
  RateLimiterConfig config;
  config.ops = TokenBucketConfig{0, 0, 1000};
  auto made = RateLimiter::make(config, 0);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().message.rfind("ops: ", 0), 0u) << made.error().message;
}

}  // namespace
}  // namespace kiln::vmm::rate_limiter

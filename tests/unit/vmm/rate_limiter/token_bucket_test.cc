// TokenBucket: starts full, refills exactly at size/refill_time, spends the one-time burst
// first, lets an over-size request through only from a full bucket (which then owes it), takes
// nothing when it refuses, and survives extreme configurations and clocks. Time is injected.
#include "vmm/rate_limiter/token_bucket.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace kiln::vmm::rate_limiter {
namespace {

constexpr Nanos kMs = 1000000;
constexpr Nanos kT0 = 1000 * kMs;  // any start; buckets never look at absolute time

TokenBucket bucket(std::uint64_t size, std::uint64_t refill_ms, std::uint64_t burst = 0) {
  auto b = TokenBucket::make(TokenBucketConfig{size, burst, refill_ms}, kT0);
  EXPECT_TRUE(b.ok()) << b.error().message;
  return std::move(*b);
}

TEST(TokenBucket, StartsFullAndRefillsAtSizeOverRefillTime) {
  TokenBucket b = bucket(1000, 1000);  // one token per ms
  EXPECT_EQ(b.budget(kT0), 1000u);
  EXPECT_TRUE(b.reduce(1000, kT0));
  EXPECT_FALSE(b.reduce(1, kT0));
  EXPECT_EQ(b.wait_for(1, kT0), kMs);
  EXPECT_FALSE(b.reduce(1, kT0 + kMs - 1));
  EXPECT_TRUE(b.reduce(1, kT0 + kMs));
  EXPECT_EQ(b.budget(kT0 + 501 * kMs), 500u);
  EXPECT_EQ(b.budget(kT0 + 5000 * kMs), 1000u);  // never above size
}

TEST(TokenBucket, RefillIsExactAtRatesThatDoNotDivideEvenly) {
  TokenBucket b = bucket(3, 1000);  // a token every 333.33... ms
  ASSERT_TRUE(b.reduce(3, kT0));
  EXPECT_EQ(b.wait_for(1, kT0), 333333334u);
  EXPECT_FALSE(b.reduce(1, kT0 + 333333333));
  EXPECT_TRUE(b.reduce(1, kT0 + 333333334));
  // Three tokens over exactly one refill time, however the reads fall.
  TokenBucket c = bucket(3, 1000);
  ASSERT_TRUE(c.reduce(3, kT0));
  int taken = 0;
  for (Nanos t = kT0; t <= kT0 + 1000 * kMs; t += 7 * kMs) taken += c.reduce(1, t) ? 1 : 0;
  EXPECT_EQ(taken, 2);  // at ~333 and ~667 ms; the third is due at 1000 ms, after the last read
  EXPECT_TRUE(c.reduce(1, kT0 + 1000 * kMs));
}

TEST(TokenBucket, OneTimeBurstIsSpentFirstAndNeverRefills) {
  TokenBucket b = bucket(100, 1000, 50);
  EXPECT_TRUE(b.reduce(30, kT0));
  EXPECT_EQ(b.one_time_burst(), 20u);
  EXPECT_EQ(b.budget(kT0), 100u);
  EXPECT_TRUE(b.reduce(120, kT0));  // 20 from the burst, 100 from the budget
  EXPECT_EQ(b.one_time_burst(), 0u);
  EXPECT_EQ(b.budget(kT0), 0u);
  EXPECT_EQ(b.budget(kT0 + 10000 * kMs), 100u);
  EXPECT_EQ(b.one_time_burst(), 0u);
}

TEST(TokenBucket, ARefusedRequestTakesNothing) {
  TokenBucket b = bucket(100, 1000, 10);
  ASSERT_TRUE(b.reduce(60, kT0));  // burst 0 left, budget 50
  EXPECT_FALSE(b.reduce(51, kT0));
  EXPECT_EQ(b.budget(kT0), 50u);
  EXPECT_TRUE(b.reduce(50, kT0));
}

TEST(TokenBucket, AnOverSizeRequestPassesFromAFullBucketAndIsPaidOff) {
  TokenBucket b = bucket(100, 1000);  // 0.1 token per ms
  EXPECT_TRUE(b.reduce(250, kT0));  // full: passes, owes 150
  EXPECT_EQ(b.budget(kT0), 0u);
  // One token needs the 150 owed plus one: 151 tokens at 10 ms each.
  EXPECT_EQ(b.wait_for(1, kT0), 1510 * kMs);
  EXPECT_FALSE(b.reduce(1, kT0 + 1509 * kMs));
  EXPECT_TRUE(b.reduce(1, kT0 + 1510 * kMs));
  // Not full: an over-size request waits until it is.
  TokenBucket c = bucket(100, 1000);
  ASSERT_TRUE(c.reduce(1, kT0));
  EXPECT_FALSE(c.reduce(250, kT0));
  EXPECT_EQ(c.wait_for(250, kT0), 10 * kMs);
  EXPECT_TRUE(c.reduce(250, kT0 + 10 * kMs));
}

TEST(TokenBucket, GivenBackTokensReturnUpToSize) {
  TokenBucket b = bucket(100, 1000);
  ASSERT_TRUE(b.reduce(80, kT0));
  b.give_back(30);
  EXPECT_EQ(b.budget(kT0), 50u);
  b.give_back(1000);
  EXPECT_EQ(b.budget(kT0), 100u);
}

TEST(TokenBucket, AnEarlierClockReadingCountsAsTheLastOne) {
  TokenBucket b = bucket(1000, 1000);
  ASSERT_TRUE(b.reduce(1000, kT0 + 10 * kMs));
  EXPECT_EQ(b.budget(kT0), 0u);  // no refill backwards, no underflow
  EXPECT_EQ(b.wait_for(5, kT0), 5 * kMs);
  EXPECT_TRUE(b.reduce(5, kT0 + 15 * kMs));
}

TEST(TokenBucket, BadConfigurationsAreRefusedWithTheField) {
  auto zero_size = TokenBucket::make(TokenBucketConfig{0, 0, 100}, kT0);
  ASSERT_FALSE(zero_size.ok());
  EXPECT_NE(zero_size.error().message.find("size"), std::string::npos);
  auto zero_refill = TokenBucket::make(TokenBucketConfig{10, 0, 0}, kT0);
  ASSERT_FALSE(zero_refill.ok());
  EXPECT_NE(zero_refill.error().message.find("refill_time"), std::string::npos);
  auto too_long = TokenBucket::make(TokenBucketConfig{10, 0, kMaxRefillTimeMs + 1}, kT0);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("refill_time"), std::string::npos);
}

TEST(TokenBucket, ExtremeValuesStayInRange) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  auto made = TokenBucket::make(TokenBucketConfig{kMax, kMax, kMaxRefillTimeMs}, 0);
  ASSERT_TRUE(made.ok());
  TokenBucket b = std::move(*made);
  EXPECT_TRUE(b.reduce(kMax, 0));  // the burst
  EXPECT_TRUE(b.reduce(kMax, 0));  // the budget
  EXPECT_FALSE(b.reduce(1, 0));
  const Nanos wait = b.wait_for(kMax, 0);
  EXPECT_EQ(wait, kMaxRefillTimeMs * kMs);
  EXPECT_EQ(b.budget(kMax), kMax);  // a clock at its end: full, no overflow
  TokenBucket tiny = bucket(1, 1);
  EXPECT_TRUE(tiny.reduce(kMax, kT0));  // over-size from full: owes almost 2^64 tokens
  EXPECT_EQ(tiny.budget(kT0), 0u);
  EXPECT_EQ(tiny.wait_for(1, kT0), std::numeric_limits<Nanos>::max());  // ~2^64 ms: saturated
  EXPECT_FALSE(tiny.reduce(1, kT0 + 1000 * kMs));
  EXPECT_EQ(tiny.budget(kMax), 0u);  // that debt outlasts the clock: no overflow, no wrap to full
}

}  // namespace
}  // namespace kiln::vmm::rate_limiter

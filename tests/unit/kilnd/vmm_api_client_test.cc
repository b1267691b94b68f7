// What kilnd sends kiln-vmm for a function's bandwidth caps: Firecracker's rate limiter body.
#include "src/pool/vmm_api_client.h"

#include <gtest/gtest.h>

namespace kiln::kilnd::pool {
namespace {

TEST(VmmApiClient, BandwidthCapsBecomeRateLimiters) {
  EXPECT_TRUE(rate_limiter_body(std::nullopt).is_null());
  // A tenth of a second's bytes, refilled every 100 ms: 512 KiB/s.
  EXPECT_EQ(rate_limiter_body(524288).dump(), R"({"bandwidth":{"refill_time":100,"size":52428}})");
  EXPECT_EQ(rate_limiter_body(1024).dump(), R"({"bandwidth":{"refill_time":100,"size":102}})");
  EXPECT_EQ(rate_limiter_body(100'000'000'000).dump(), R"({"bandwidth":{"refill_time":100,"size":10000000000}})");
}

}  // namespace
}  // namespace kiln::kilnd::pool

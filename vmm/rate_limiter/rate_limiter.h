// RateLimiter: Firecracker's pair of optional token buckets for one device direction:
// `bandwidth` counts bytes, `ops` counts operations. An operation passes when both have room;
// then both are charged. Pure, like TokenBucket: the caller passes the monotonic time.
#pragma once

#include <cstdint>
#include <optional>

#include "common/result.h"
#include "vmm/rate_limiter/token_bucket.h"

namespace kiln::vmm::rate_limiter {

struct RateLimiterConfig {
  std::optional<TokenBucketConfig> bandwidth;
  std::optional<TokenBucketConfig> ops;
  bool operator==(const RateLimiterConfig&) const = default;
};

class RateLimiter {
 public:
  static Result<RateLimiter> make(const RateLimiterConfig& config, Nanos now);
  RateLimiter() = default;  // no limit

  // One operation of `bytes`: true and charged, or false and nothing charged.
  bool consume(std::uint64_t bytes, Nanos now);
  // How long until consume(bytes) would pass (0: now); the device's timer waits that long.
  Nanos wait_for(std::uint64_t bytes, Nanos now);
  // Returns one operation of `bytes` charged by consume() but not carried out.
  void give_back(std::uint64_t bytes);
  bool limited() const { return bandwidth_ || ops_; }

 private:
  std::optional<TokenBucket> bandwidth_;
  std::optional<TokenBucket> ops_;
};

}  // namespace kiln::vmm::rate_limiter

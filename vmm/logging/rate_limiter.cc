// The log rate limit over rate_limiter::TokenBucket (see rate_limiter.h).
#include "vmm/logging/rate_limiter.h"

#include <algorithm>
#include <utility>

namespace kiln::vmm::logging {
namespace {

// `burst` tokens refilled over `interval`, both clamped into what a bucket accepts.
rate_limiter::TokenBucket make_bucket(uint32_t burst, std::chrono::nanoseconds interval, rate_limiter::Nanos now) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(interval).count();
  rate_limiter::TokenBucketConfig c;
  c.size = std::max<uint32_t>(burst, 1);
  c.refill_time_ms = std::clamp<uint64_t>(ms < 0 ? 0 : static_cast<uint64_t>(ms), 1, rate_limiter::kMaxRefillTimeMs);
  return std::move(*rate_limiter::TokenBucket::make(c, now));  // valid by construction
}

}  // namespace

RateLimiter::RateLimiter(uint32_t burst, std::chrono::nanoseconds refill_interval, NowFn now)
    : now_(std::move(now)), bucket_(make_bucket(burst, refill_interval, now_ns())) {}

rate_limiter::Nanos RateLimiter::now_ns() const {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now_().time_since_epoch()).count();
  return ns < 0 ? 0 : static_cast<rate_limiter::Nanos>(ns);
}

bool RateLimiter::try_acquire(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  // More than the burst never passes (the bucket would let it through once, from full).
  if (n <= bucket_.config().size && bucket_.reduce(n, now_ns())) return true;
  ++suppressed_;
  return false;
}

uint64_t RateLimiter::take_suppressed() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(suppressed_, 0);
}

}  // namespace kiln::vmm::logging

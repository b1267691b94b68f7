// RateLimiter: both buckets are checked before either is charged.
#include "vmm/rate_limiter/rate_limiter.h"

#include <algorithm>

namespace kiln::vmm::rate_limiter {

Result<RateLimiter> RateLimiter::make(const RateLimiterConfig& config, Nanos now) {
  RateLimiter limiter;
  if (config.bandwidth) {
    auto b = TokenBucket::make(*config.bandwidth, now);
    if (!b.ok()) return b.error().wrap("bandwidth");
    limiter.bandwidth_ = std::move(*b);
  }
  if (config.ops) {
    auto o = TokenBucket::make(*config.ops, now);
    if (!o.ok()) return o.error().wrap("ops");
    limiter.ops_ = std::move(*o);
  }
  return limiter;
}

bool RateLimiter::consume(std::uint64_t bytes, Nanos now) {
  if (wait_for(bytes, now) != 0) return false;
  if (ops_) (void)ops_->reduce(1, now);  // cannot fail: wait_for just found room
  if (bandwidth_) (void)bandwidth_->reduce(bytes, now);
  return true;
}

Nanos RateLimiter::wait_for(std::uint64_t bytes, Nanos now) {
  Nanos wait = 0;
  if (ops_) wait = std::max(wait, ops_->wait_for(1, now));
  if (bandwidth_) wait = std::max(wait, bandwidth_->wait_for(bytes, now));
  return wait;
}

void RateLimiter::give_back(std::uint64_t bytes) {
  if (ops_) ops_->give_back(1);
  if (bandwidth_) bandwidth_->give_back(bytes);
}

}  // namespace kiln::vmm::rate_limiter

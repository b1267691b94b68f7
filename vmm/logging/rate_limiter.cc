// Token bucket implementation (see rate_limiter.h).
#include "vmm/logging/rate_limiter.h"

#include <algorithm>
#include <utility>

namespace kiln::vmm::logging {

RateLimiter::RateLimiter(uint32_t burst, std::chrono::nanoseconds refill_interval, NowFn now)
    : burst_(std::max<uint32_t>(burst, 1)),
      refill_interval_(std::max(refill_interval, std::chrono::nanoseconds(1))),
      now_(std::move(now)),
      tokens_(static_cast<double>(burst_)),
      last_(now_()) {}

void RateLimiter::refill_locked(Clock::time_point now) {
  if (now <= last_) return;  // clock did not move (or moved back): nothing to add
  const double elapsed = static_cast<double>((now - last_).count());
  const double per_token = static_cast<double>(refill_interval_.count()) / burst_;
  tokens_ = std::min<double>(burst_, tokens_ + elapsed / per_token);
  last_ = now;
}

bool RateLimiter::try_acquire(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  refill_locked(now_());
  const double want = static_cast<double>(n);
  if (tokens_ >= want) {
    tokens_ -= want;
    return true;
  }
  ++suppressed_;
  return false;
}

uint64_t RateLimiter::take_suppressed() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(suppressed_, 0);
}

}  // namespace kiln::vmm::logging

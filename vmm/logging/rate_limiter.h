// Rate limit for log lines (and serial output) the guest can cause: one thread-safe
// rate_limiter::TokenBucket (the devices' bucket) with a clock and a count of refusals. The clock
// is injected so tests drive time explicitly instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "vmm/rate_limiter/token_bucket.h"

namespace kiln::vmm::logging {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using NowFn = std::function<Clock::time_point()>;

  // `burst` tokens at most; one token is added every `refill_interval / burst`, so at most
  // `burst` events pass per `refill_interval` once the initial burst is spent.
  RateLimiter(uint32_t burst, std::chrono::nanoseconds refill_interval, NowFn now = &Clock::now);

  // Takes one token if available. Thread-safe.
  bool try_acquire() { return try_acquire(1); }
  // Takes `n` tokens at once (e.g. bytes of serial output) if that many are available;
  // otherwise takes none. A request larger than the burst never succeeds.
  bool try_acquire(uint64_t n);
  // Events refused since the last call (the caller reports "N messages suppressed").
  uint64_t take_suppressed();

 private:
  rate_limiter::Nanos now_ns() const;

  std::mutex mu_;
  NowFn now_;
  rate_limiter::TokenBucket bucket_;
  uint64_t suppressed_ = 0;
};

}  // namespace kiln::vmm::logging

// TokenBucket: the budget kept in token-nanoseconds, so refills are exact at any rate.
#include "vmm/rate_limiter/token_bucket.h"

#include <algorithm>
#include <limits>
#include <string>

namespace kiln::vmm::rate_limiter {

Result<TokenBucket> TokenBucket::make(const TokenBucketConfig& config, Nanos now) {
  if (config.size == 0) return make_error("token bucket: size must be at least 1");
  if (config.refill_time_ms == 0) return make_error("token bucket: refill_time must be at least 1 ms");
  if (config.refill_time_ms > kMaxRefillTimeMs) {
    return make_error("token bucket: refill_time above " + std::to_string(kMaxRefillTimeMs) + " ms");
  }
  return TokenBucket(config, now);
}

TokenBucket::TokenBucket(const TokenBucketConfig& config, Nanos now)
    : config_(config),
      refill_ns_(static_cast<unsigned __int128>(config.refill_time_ms) * 1000000u),
      burst_(config.one_time_burst),
      last_(now) {
  // size < 2^64 and refill_ns_ < 2^52: both products stay far below 2^127.
  full_ = static_cast<__int128>(static_cast<unsigned __int128>(config.size) * refill_ns_);
  scaled_ = full_;
}

void TokenBucket::refill(Nanos now) {
  if (now <= last_) return;
  const __int128 elapsed = now - last_;
  last_ = now;
  const __int128 rate = config_.size;  // token-ns gained per ns
  const __int128 to_full = (full_ - scaled_ + rate - 1) / rate;  // ns until full (debts included)
  // elapsed < to_full keeps the product below full_ - scaled_ + rate: no overflow.
  scaled_ = elapsed >= to_full ? full_ : scaled_ + elapsed * rate;
}

bool TokenBucket::can_take(std::uint64_t tokens) const {
  if (tokens <= burst_) return true;
  const std::uint64_t from_budget = tokens - burst_;
  const auto need = static_cast<__int128>(static_cast<unsigned __int128>(from_budget) * refill_ns_);
  if (scaled_ >= need) return true;
  // Larger than the bucket: only from a full bucket, which then owes the rest.
  return from_budget > config_.size && scaled_ == full_;
}

bool TokenBucket::reduce(std::uint64_t tokens, Nanos now) {
  refill(now);
  if (!can_take(tokens)) return false;
  const std::uint64_t from_burst = std::min(tokens, burst_);
  burst_ -= from_burst;
  scaled_ -= static_cast<__int128>(static_cast<unsigned __int128>(tokens - from_burst) * refill_ns_);
  return true;
}

Nanos TokenBucket::wait_for(std::uint64_t tokens, Nanos now) {
  refill(now);
  if (can_take(tokens)) return 0;
  // Until the budget holds what the burst does not cover (an over-size request: until full).
  const std::uint64_t from_budget = std::min(tokens - burst_, config_.size);
  const auto target = static_cast<__int128>(static_cast<unsigned __int128>(from_budget) * refill_ns_);
  const __int128 deficit = target - scaled_;  // > 0 here
  const __int128 rate = config_.size;  // token-ns gained per ns
  const __int128 wait = (deficit + rate - 1) / rate;
  // A debt of ~2^64 tokens on a slow bucket is longer than any clock: saturate.
  return wait > static_cast<__int128>(std::numeric_limits<Nanos>::max()) ? std::numeric_limits<Nanos>::max()
                                                                          : static_cast<Nanos>(wait);
}

void TokenBucket::give_back(std::uint64_t tokens) {
  const auto back = static_cast<__int128>(static_cast<unsigned __int128>(tokens) * refill_ns_);
  scaled_ = std::min(full_, scaled_ + back);
}

std::uint64_t TokenBucket::budget(Nanos now) {
  refill(now);
  if (scaled_ <= 0) return 0;
  return static_cast<std::uint64_t>(scaled_ / static_cast<__int128>(refill_ns_));
}

}  // namespace kiln::vmm::rate_limiter

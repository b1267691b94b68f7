// TokenBucket: one bucket of Firecracker's rate limiter model for devices (virtio-net's RX and
// TX, drives; rate_limiter.h pairs two). A bucket holds up to `size` tokens (bytes or operations), refills from empty to
// full in `refill_time_ms` at a constant rate, and starts with `one_time_burst` extra tokens that
// are spent first and never refill. A request larger than `size` passes only when the bucket is
// full and leaves it owing the rest, so the average rate holds for any request size. Pure: the
// caller passes the monotonic time (ns), so tests need no clock and no sleep.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace kiln::vmm::rate_limiter {

using Nanos = std::uint64_t;  // a monotonic clock's reading

struct TokenBucketConfig {
  std::uint64_t size = 0;  // tokens the bucket holds when full
  std::uint64_t one_time_burst = 0;  // initial extra tokens, spent first, never refilled
  std::uint64_t refill_time_ms = 0;  // empty to full
  bool operator==(const TokenBucketConfig&) const = default;
};

// Refill times above this are refused (49 days: keeps the arithmetic in range).
inline constexpr std::uint64_t kMaxRefillTimeMs = 1ull << 32;

class TokenBucket {
 public:
  // Refuses size 0 or refill_time_ms 0 (Firecracker's "no limit" is no bucket at all) and
  // refill times above kMaxRefillTimeMs. The bucket starts full.
  static Result<TokenBucket> make(const TokenBucketConfig& config, Nanos now);

  // Takes `tokens` (burst first) and returns true, or takes nothing and returns false.
  bool reduce(std::uint64_t tokens, Nanos now);
  // How long from `now` until reduce(tokens) would succeed (0: now). Time never runs backwards
  // here: an earlier `now` than the last one counts as the last one.
  Nanos wait_for(std::uint64_t tokens, Nanos now);
  // Gives back tokens a caller took but did not use (a packet the device could not send); the
  // budget never exceeds `size` (given-back burst tokens return to the budget).
  void give_back(std::uint64_t tokens);

  const TokenBucketConfig& config() const { return config_; }
  std::uint64_t one_time_burst() const { return burst_; }
  // Whole tokens in the budget now (0 while it owes an over-size request).
  std::uint64_t budget(Nanos now);

 private:
  explicit TokenBucket(const TokenBucketConfig& config, Nanos now);
  void refill(Nanos now);
  bool can_take(std::uint64_t tokens) const;

  TokenBucketConfig config_;
  unsigned __int128 refill_ns_ = 0;  // refill_time_ms in ns
  // The budget in token-nanoseconds (tokens * refill_ns_), refilled by `size` each ns:
  // exact, with no rounding; negative while an over-size request is being paid off.
  __int128 scaled_ = 0;
  __int128 full_ = 0;  // size * refill_ns_
  std::uint64_t burst_ = 0;
  Nanos last_ = 0;
};

}  // namespace kiln::vmm::rate_limiter

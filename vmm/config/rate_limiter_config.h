// Firecracker's RateLimiter / TokenBucket request objects ({"bandwidth": {"size",
// "one_time_burst", "refill_time"}, "ops": {...}}) <-> rate_limiter::RateLimiterConfig, for
// drives and network interfaces, and the PATCH form that updates a running device's limiter.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "vmm/rate_limiter/rate_limiter.h"

namespace kiln::vmm::config {

using rate_limiter::RateLimiterConfig;
using rate_limiter::TokenBucketConfig;

// `j` is the limiter object at `path` ("rx_rate_limiter"), or nullptr when absent. Null,
// absent, or an object with neither bucket all mean "no limit" (nullopt), so a configured
// limiter always limits. A bucket needs size >= 1 and refill_time (ms) from 1 to
// rate_limiter::kMaxRefillTimeMs, as TokenBucket::make requires; errors name the field
// ("rx_rate_limiter.bandwidth.size: ...").
Result<std::optional<RateLimiterConfig>> parse_rate_limiter(const nlohmann::json* j, const std::string& path);
// Firecracker's shape; an absent bucket is null. nullopt (no limit) is null.
nlohmann::json to_json(const RateLimiterConfig& rl);
nlohmann::json rate_limiter_json(const std::optional<RateLimiterConfig>& rl);

// A PATCH of one direction's limiter, merged as Firecracker merges it: a bucket absent (or
// null) stays as it is, a bucket with size 0 is removed, any other bucket replaces it.
struct RateLimiterUpdate {
  std::optional<TokenBucketConfig> bandwidth;  // size 0: remove
  std::optional<TokenBucketConfig> ops;
  bool operator==(const RateLimiterUpdate&) const = default;
};
Result<std::optional<RateLimiterUpdate>> parse_rate_limiter_update(const nlohmann::json* j, const std::string& path);
// The limiter after `update`; nullopt when no bucket is left.
std::optional<RateLimiterConfig> apply_rate_limiter_update(const std::optional<RateLimiterConfig>& base,
                                                           const RateLimiterUpdate& update);

}  // namespace kiln::vmm::config

// Parsing and serialization of Firecracker's RateLimiter and TokenBucket (swagger
// firecracker.yaml: RateLimiter, TokenBucket; docs/api_requests/patch-network-interface.md for
// the update rules).
#include "vmm/config/rate_limiter_config.h"

#include "common/json/field_reader.h"

namespace kiln::vmm::config {

using nlohmann::json;
using kiln::json::ObjectReader;

namespace {

enum class ZeroSize { kRefused, kRemoves };

// One bucket member of a limiter: nullopt when absent or null.
Result<std::optional<TokenBucketConfig>> read_bucket(const ObjectReader& limiter, std::string_view key,
                                                     ZeroSize zero) {
  KILN_ASSIGN_OR_RETURN(auto r, limiter.opt_object(key, {"size", "one_time_burst", "refill_time"}));
  if (!r) return std::optional<TokenBucketConfig>();
  TokenBucketConfig b;
  KILN_ASSIGN_OR_RETURN(b.size, r->req_u64("size"));
  KILN_ASSIGN_OR_RETURN(auto burst, r->opt_u64("one_time_burst"));
  b.one_time_burst = burst.value_or(0);
  KILN_ASSIGN_OR_RETURN(b.refill_time_ms, r->req_u64("refill_time"));
  KILN_TRY(r->check_unknown());
  if (b.size == 0) {
    if (zero == ZeroSize::kRemoves) return std::optional<TokenBucketConfig>(b);
    return r->error("size", "must be at least 1 (leave the bucket out for no limit)");
  }
  if (b.refill_time_ms == 0 || b.refill_time_ms > rate_limiter::kMaxRefillTimeMs) {
    return r->error("refill_time", "must be from 1 to " + std::to_string(rate_limiter::kMaxRefillTimeMs) + " ms");
  }
  // The limiter itself is the authority: whatever it refuses, the API refuses.
  auto made = rate_limiter::TokenBucket::make(b, 0);
  if (!made.ok()) return made.error().wrap(r->path());
  return std::optional<TokenBucketConfig>(b);
}

// A limiter object's two buckets (both nullopt when `j` is absent or null).
Result<RateLimiterConfig> read_limiter(const json* j, const std::string& path, ZeroSize zero) {
  RateLimiterConfig rl;
  if (j == nullptr || j->is_null()) return rl;
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(*j, path, {"bandwidth", "ops"}));
  KILN_ASSIGN_OR_RETURN(rl.bandwidth, read_bucket(r, "bandwidth", zero));
  KILN_ASSIGN_OR_RETURN(rl.ops, read_bucket(r, "ops", zero));
  KILN_TRY(r.check_unknown());
  return rl;
}

json bucket_json(const std::optional<TokenBucketConfig>& b) {
  if (!b) return nullptr;
  return json{{"size", b->size}, {"one_time_burst", b->one_time_burst}, {"refill_time", b->refill_time_ms}};
}

}  // namespace

Result<std::optional<RateLimiterConfig>> parse_rate_limiter(const json* j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(RateLimiterConfig rl, read_limiter(j, path, ZeroSize::kRefused));
  if (!rl.bandwidth && !rl.ops) return std::optional<RateLimiterConfig>();
  return std::optional<RateLimiterConfig>(rl);
}

json to_json(const RateLimiterConfig& rl) {
  return json{{"bandwidth", bucket_json(rl.bandwidth)}, {"ops", bucket_json(rl.ops)}};
}

json rate_limiter_json(const std::optional<RateLimiterConfig>& rl) { return rl ? to_json(*rl) : json(nullptr); }

Result<std::optional<RateLimiterUpdate>> parse_rate_limiter_update(const json* j, const std::string& path) {
  if (j == nullptr || j->is_null()) return std::optional<RateLimiterUpdate>();
  KILN_ASSIGN_OR_RETURN(RateLimiterConfig rl, read_limiter(j, path, ZeroSize::kRemoves));
  return std::optional<RateLimiterUpdate>(RateLimiterUpdate{rl.bandwidth, rl.ops});
}

std::optional<RateLimiterConfig> apply_rate_limiter_update(const std::optional<RateLimiterConfig>& base,
                                                           const RateLimiterUpdate& update) {
  RateLimiterConfig out = base.value_or(RateLimiterConfig{});
  auto merge = [](std::optional<TokenBucketConfig>& bucket, const std::optional<TokenBucketConfig>& change) {
    if (!change) return;
    if (change->size == 0) {
      bucket.reset();
    } else {
      bucket = change;
    }
  };
  merge(out.bandwidth, update.bandwidth);
  merge(out.ops, update.ops);
  if (!out.bandwidth && !out.ops) return std::nullopt;
  return out;
}

}  // namespace kiln::vmm::config

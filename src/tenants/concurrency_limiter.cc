// Per-tenant in-flight counts with RAII slots.
#include "src/tenants/concurrency_limiter.h"

namespace kiln::kilnd::tenants {

ConcurrencyLimiter::Slot& ConcurrencyLimiter::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    release();
    counts_ = std::move(o.counts_);
    tenant_ = std::move(o.tenant_);
  }
  return *this;
}

void ConcurrencyLimiter::Slot::release() {
  if (!counts_) return;
  auto it = counts_->find(tenant_);
  if (it != counts_->end() && --it->second == 0) counts_->erase(it);
  counts_.reset();
}

std::optional<ConcurrencyLimiter::Slot> ConcurrencyLimiter::try_acquire(const std::string& tenant,
                                                                        std::optional<std::uint32_t> limit) {
  std::uint32_t& n = (*counts_)[tenant];
  if (limit && n >= *limit) {
    if (n == 0) counts_->erase(tenant);
    return std::nullopt;
  }
  ++n;
  Slot s;
  s.counts_ = counts_;
  s.tenant_ = tenant;
  return s;
}

std::uint32_t ConcurrencyLimiter::in_flight(const std::string& tenant) const {
  auto it = counts_->find(tenant);
  return it == counts_->end() ? 0 : it->second;
}

}  // namespace kiln::kilnd::tenants

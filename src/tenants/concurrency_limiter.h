// ConcurrencyLimiter: invocations in flight per tenant, held by a Slot for as long as the
// invocation runs (the max_concurrent_invocations quota). Single-threaded (kilnd's loop); a
// Slot may outlive the limiter (a coroutine frame destroyed late) without harm.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace kiln::kilnd::tenants {

class ConcurrencyLimiter {
  using Counts = std::map<std::string, std::uint32_t>;

 public:
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept : counts_(std::move(o.counts_)), tenant_(std::move(o.tenant_)) {}
    Slot& operator=(Slot&& o) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    void release();

   private:
    friend class ConcurrencyLimiter;
    std::shared_ptr<Counts> counts_;
    std::string tenant_;
  };

  // A slot when `tenant` has fewer than `limit` in flight (no limit: always).
  std::optional<Slot> try_acquire(const std::string& tenant, std::optional<std::uint32_t> limit);
  std::uint32_t in_flight(const std::string& tenant) const;

 private:
  std::shared_ptr<Counts> counts_ = std::make_shared<Counts>();
};

}  // namespace kiln::kilnd::tenants

// Per-instance token buckets for guest log lines (see log_budget.h).
#include "src/logs/log_budget.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace kiln::kilnd::logs {

bool LogBudget::admit(const std::string& instance, std::uint64_t bytes, std::uint64_t now_ns) {
  auto it = buckets_.find(instance);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kInstances) buckets_.erase(buckets_.begin());
    Bucket fresh;
    fresh.lines = static_cast<double>(o_.burst_lines);
    fresh.bytes = static_cast<double>(o_.burst_bytes);
    fresh.refilled_ns = now_ns;
    fresh.reported_ns = now_ns;
    it = buckets_.emplace(instance, fresh).first;
  }
  Bucket& b = it->second;
  if (now_ns > b.refilled_ns) {
    const double secs = static_cast<double>(now_ns - b.refilled_ns) / 1e9;
    b.lines = std::min(static_cast<double>(o_.burst_lines), b.lines + secs * static_cast<double>(o_.lines_per_s));
    b.bytes = std::min(static_cast<double>(o_.burst_bytes), b.bytes + secs * static_cast<double>(o_.bytes_per_s));
    b.refilled_ns = now_ns;
  }
  const double need = static_cast<double>(bytes);
  if (b.lines < 1 || b.bytes < need) {
    ++b.unreported;
    return false;
  }
  b.lines -= 1;
  b.bytes -= need;
  return true;
}

std::vector<LogBudget::Drops> LogBudget::drops(std::uint64_t now_ns) {
  // The time an empty bucket takes to fill up again.
  const auto fill_ns = [](std::uint64_t burst, std::uint64_t rate) {
    return rate == 0 ? UINT64_MAX : burst * 1'000'000'000 / rate + 1;
  };
  const std::uint64_t refill_ns = std::max(fill_ns(o_.burst_lines, o_.lines_per_s), fill_ns(o_.burst_bytes, o_.bytes_per_s));
  std::vector<Drops> out;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Bucket& b = it->second;
    if (b.unreported != 0 && now_ns >= b.reported_ns + o_.report_interval_ns) {
      out.push_back({it->first, b.unreported});
      b.unreported = 0;
      b.reported_ns = now_ns;
    }
    const bool full = now_ns > b.refilled_ns && now_ns - b.refilled_ns >= refill_ns;
    it = b.unreported == 0 && full ? buckets_.erase(it) : std::next(it);
  }
  return out;
}

}  // namespace kiln::kilnd::logs

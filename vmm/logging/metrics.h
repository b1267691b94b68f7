// Named atomic counters grouped per device ("block_rootfs.read_count"), dumped as JSON for
// GET /metrics and flushed as one JSON line per FlushMetrics to the metrics file.
// Names are "<group>.<metric>"; kiln's groups: block_<drive_id> (read_count, read_bytes,
// write_count, write_bytes, flush_count, errors), vsock, rng, uart, i8042, vcpu,
// api_server (requests, errors), logger (missed_log_count). Values are totals since start
// (Firecracker reports most as deltas since the previous flush).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::vmm::logging {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry devices register into.
  static MetricsRegistry& global();

  // Returns the counter "group.name", creating it at 0. The reference stays valid for the
  // registry's lifetime, so hot paths look it up once and then only call inc().
  // A name without '.' goes into the group "vmm".
  Counter& counter(std::string_view name);
  // Current value, 0 for a counter never created.
  uint64_t value(std::string_view name) const;

  // {"utc_timestamp_ms": N, "<group>": {"<name>": value, ...}, ...}
  nlohmann::json to_json() const;

  // Opens the metrics file or fifo (created if missing, appended to).
  Status open_output(const std::string& path);
  bool has_output() const;
  // Appends to_json() as one line to the output opened above.
  Status flush() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
  UniqueFd out_;
};

}  // namespace kiln::vmm::logging

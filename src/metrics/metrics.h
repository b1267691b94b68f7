// Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text
// exposition format (version 0.0.4) for GET /metrics. Single-threaded (kilnd's loop).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kiln::kilnd::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Kind { kCounter, kGauge, kHistogram };

  // Declares a family (name, help, kind); histograms take their upper bounds (seconds etc.).
  void declare(const std::string& name, const std::string& help, Kind kind,
               std::vector<double> buckets = {});
  void inc(const std::string& name, const Labels& labels = {}, double by = 1);
  void set(const std::string& name, const Labels& labels, double value);
  void observe(const std::string& name, const Labels& labels, double value);
  // Drops every series of `name` (gauges recomputed from scratch before a scrape).
  void clear(const std::string& name);
  double value(const std::string& name, const Labels& labels = {}) const;

  std::string render() const;

 private:
  struct Series {
    double value = 0;
    std::vector<std::uint64_t> bucket_counts;
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Family {
    std::string help;
    Kind kind = Kind::kCounter;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // key: rendered label set
  };
  static std::string label_text(const Labels& labels);
  Family* family(const std::string& name);
  std::map<std::string, Family> families_;
};

// The daemon's families (names used by kilnd and its tests).
inline constexpr const char* kInvocations = "kiln_invocations_total";
inline constexpr const char* kErrors = "kiln_invocation_errors_total";
inline constexpr const char* kDuration = "kiln_invocation_duration_seconds";
inline constexpr const char* kColdStarts = "kiln_cold_starts_total";
inline constexpr const char* kQueueDepth = "kiln_queue_depth";
inline constexpr const char* kInstances = "kiln_instances";
inline constexpr const char* kSnapshots = "kiln_snapshot_events_total";  // event=created|restored|create_failed|load_failed
inline constexpr const char* kParkedVmms = "kiln_parked_vmms";  // state=starting|ready
inline constexpr const char* kLogMemory = "kiln_log_memory_bytes";  // the in-memory log rings
inline constexpr const char* kGuestLogLines = "kiln_guest_log_lines_total";  // outcome=kept|dropped (budget)
inline constexpr const char* kScheduleFires = "kiln_schedule_fires_total";  // timer triggers invoked
inline constexpr const char* kScheduleRefused = "kiln_schedule_refused_total";  // ... or refused admission
// Lazy root disks (--lazy-images), per image (label image: its index digest's first 12 hex digits).
inline constexpr const char* kLazyReadBytes = "kiln_lazy_read_bytes_total";  // served to guests
inline constexpr const char* kLazyFetchedBytes = "kiln_lazy_fetched_bytes_total";  // from the registry
inline constexpr const char* kLazyChunkFetches = "kiln_lazy_chunk_fetches_total";  // kind=demand|prefetch
inline constexpr const char* kLazyFetchErrors = "kiln_lazy_fetch_errors_total";  // reads failed (EIO to the guest)
inline constexpr const char* kLazyWait = "kiln_lazy_wait_seconds_total";  // reads waiting for chunks
inline constexpr const char* kLazyImageBytes = "kiln_lazy_image_bytes";  // the ext4's size
// The host's chunk cache: bytes stored and its bound, and its events.
inline constexpr const char* kChunkCacheBytes = "kiln_chunk_cache_bytes";  // kind=stored|max
inline constexpr const char* kChunkCacheEvents = "kiln_chunk_cache_events_total";  // event=hit|miss|...
void declare_kilnd_metrics(Metrics& m);

}  // namespace kiln::kilnd::metrics

// Prometheus text exposition of kilnd's counters, gauges and histograms.
#include "src/metrics/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kiln::kilnd::metrics {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest text that reads back as the same double (0.0025, not 0.0025000000000000001).
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string with_label(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return labels.substr(0, labels.size() - 1) + "," + extra + "}";
}

}  // namespace

std::string Metrics::label_text(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
  }
  return out + "}";
}

void Metrics::declare(const std::string& name, const std::string& help, Kind kind, std::vector<double> buckets) {
  Family& f = families_[name];
  f.help = help;
  f.kind = kind;
  f.buckets = std::move(buckets);
}

Metrics::Family* Metrics::family(const std::string& name) {
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : &it->second;
}

void Metrics::inc(const std::string& name, const Labels& labels, double by) {
  if (Family* f = family(name)) f->series[label_text(labels)].value += by;
}

void Metrics::set(const std::string& name, const Labels& labels, double value) {
  if (Family* f = family(name)) f->series[label_text(labels)].value = value;
}

void Metrics::observe(const std::string& name, const Labels& labels, double value) {
  Family* f = family(name);
  if (!f) return;
  Series& s = f->series[label_text(labels)];
  if (s.bucket_counts.size() != f->buckets.size()) s.bucket_counts.assign(f->buckets.size(), 0);
  for (std::size_t i = 0; i < f->buckets.size(); ++i) {
    if (value <= f->buckets[i]) ++s.bucket_counts[i];
  }
  s.sum += value;
  ++s.count;
}

void Metrics::clear(const std::string& name) {
  if (Family* f = family(name)) f->series.clear();
}

double Metrics::value(const std::string& name, const Labels& labels) const {
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto s = it->second.series.find(label_text(labels));
  if (s == it->second.series.end()) return 0;
  return it->second.kind == Kind::kHistogram ? static_cast<double>(s->second.count) : s->second.value;
}

std::string Metrics::render() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter" : f.kind == Kind::kGauge ? "gauge" : "histogram";
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.kind != Kind::kHistogram) {
        out += name + labels + " " + number(s.value) + "\n";
        continue;
      }
      // Prometheus buckets are cumulative; observe() already counts every bucket >= value.
      for (std::size_t i = 0; i < f.buckets.size(); ++i) {
        std::uint64_t c = i < s.bucket_counts.size() ? s.bucket_counts[i] : 0;
        out += name + "_bucket" + with_label(labels, "le=\"" + number(f.buckets[i]) + "\"") + " " +
               std::to_string(c) + "\n";
      }
      out += name + "_bucket" + with_label(labels, "le=\"+Inf\"") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + labels + " " + number(s.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

void declare_kilnd_metrics(Metrics& m) {
  m.declare(kInvocations, "Invocations by function and kind (event, web, lambda).", Metrics::Kind::kCounter);
  m.declare(kErrors, "Failed invocations by function and error kind.", Metrics::Kind::kCounter);
  m.declare(kDuration, "Invocation duration in seconds, queueing included.", Metrics::Kind::kHistogram,
            {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  m.declare(kColdStarts, "Instances booted for a function.", Metrics::Kind::kCounter);
  m.declare(kQueueDepth, "Invocations waiting for an instance.", Metrics::Kind::kGauge);
  m.declare(kInstances, "Instances by function and state.", Metrics::Kind::kGauge);
  m.declare(kSnapshots, "Warm-start snapshots: created, restored, create_failed, load_failed (set aside).",
            Metrics::Kind::kCounter);
  m.declare(kParkedVmms, "kiln-vmm processes started ahead for functions' next instances (restore = one API call).",
            Metrics::Kind::kGauge);
  m.declare(kLogMemory, "Estimated bytes of recent log lines kilnd keeps in memory (all functions; --log-memory-mib).",
            Metrics::Kind::kGauge);
  m.declare(kGuestLogLines, "Guest output lines per function: kept, or dropped over their instance's log budget.",
            Metrics::Kind::kCounter);
  m.declare(kScheduleFires, "Timer-trigger firings that started an invocation, by function.", Metrics::Kind::kCounter);
  m.declare(kScheduleRefused, "Timer-trigger firings whose invocation was refused (not ready, quota, stopping).",
            Metrics::Kind::kCounter);
  m.declare(kLazyReadBytes, "Bytes lazy root disks served to guests, by image.", Metrics::Kind::kCounter);
  m.declare(kLazyFetchedBytes, "Compressed chunk bytes fetched from registries, by image.", Metrics::Kind::kCounter);
  m.declare(kLazyChunkFetches, "Chunks fetched from registries, by image: on demand or prefetched.",
            Metrics::Kind::kCounter);
  m.declare(kLazyFetchErrors, "Guest reads failed because a chunk could not be fetched or verified, by image.",
            Metrics::Kind::kCounter);
  m.declare(kLazyWait, "Seconds guest reads waited for chunks being fetched, by image.", Metrics::Kind::kCounter);
  m.declare(kLazyImageBytes, "Size of each lazy image's ext4.", Metrics::Kind::kGauge);
  m.declare(kChunkCacheBytes, "The host's chunk cache: bytes stored, and its bound (--chunk-cache-gib).",
            Metrics::Kind::kGauge);
  m.declare(kChunkCacheEvents,
            "Chunk cache events: hit, miss, coalesced (a miss served by another's fetch), corrupt (found "
            "changed on read, fetched again), refused (bytes not matching their digest), evicted, not_stored.",
            Metrics::Kind::kCounter);
}

}  // namespace kiln::kilnd::metrics

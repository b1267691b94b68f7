// MetricsRegistry implementation.
#include "vmm/logging/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "common/io.h"

namespace kiln::vmm::logging {
namespace {

std::string normalized(std::string_view name) {
  if (name.find('.') == std::string_view::npos) return "vmm." + std::string(name);
  return std::string(name);
}

}  // namespace

MetricsRegistry& MetricsRegistry::global() {
  static MetricsRegistry registry;
  return registry;
}

Counter& MetricsRegistry::counter(std::string_view name) {
  std::string key = normalized(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counters_.find(key);
  if (it == counters_.end()) {
    it = counters_.emplace(std::move(key), std::make_unique<Counter>()).first;
  }
  return *it->second;
}

uint64_t MetricsRegistry::value(std::string_view name) const {
  const std::string key = normalized(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counters_.find(key);
  return it == counters_.end() ? 0 : it->second->get();
}

nlohmann::json MetricsRegistry::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  out["utc_timestamp_ms"] =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, counter] : counters_) {
    // Split at the first '.': the group is the device ("block_rootfs"), the rest the metric.
    const size_t dot = key.find('.');
    out[key.substr(0, dot)][key.substr(dot + 1)] = counter->get();
  }
  return out;
}

Status MetricsRegistry::open_output(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return errno_error("open metrics file " + path);
  std::lock_guard<std::mutex> lock(mu_);
  out_.reset(fd);
  return ok_status();
}

bool MetricsRegistry::has_output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_.valid();
}

Status MetricsRegistry::flush() const {
  if (!has_output()) return make_error("metrics: no metrics file configured (--metrics-path)");
  // replace: a non-UTF-8 name must not make dump() throw.
  std::string line = to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  return io::write_all(out_.get(), line, "metrics");
}

}  // namespace kiln::vmm::logging

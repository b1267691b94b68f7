// Leveled logger for kiln-vmm: timestamped lines to stderr or a file/fifo (--log-path, --level).
// Lines the guest can cause go through KILN_LOG_GUEST, which is rate-limited per call site.
#pragma once

#include <atomic>
#include <cstdarg>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/logging/metrics.h"
#include "vmm/logging/rate_limiter.h"

namespace kiln::vmm::logging {

// Ordered by verbosity: a logger at level L prints every message at a level <= L.
enum class LogLevel { kOff = 0, kError, kWarning, kInfo, kDebug };

// Case-insensitive, Firecracker's names: Error, Warning (or Warn), Info, Debug, Trace (= Debug), Off.
Result<LogLevel> parse_log_level(std::string_view text);
std::string_view log_level_name(LogLevel level);

// Guest-caused messages: at most kGuestLogBurst lines per kGuestLogInterval per call site.
inline constexpr uint32_t kGuestLogBurst = 10;
inline constexpr std::chrono::seconds kGuestLogInterval{5};

class Logger {
 public:
  Logger() = default;
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // The process-wide logger the KILN_LOG_* macros use.
  static Logger& instance();

  // Sends output to `path` (created if missing, appended to; a fifo works too). Until then,
  // and after reset_output(), lines go to stderr.
  Status open_output(const std::string& path);
  void reset_output();

  void set_level(LogLevel level) { level_.store(level, std::memory_order_relaxed); }
  LogLevel level() const { return level_.load(std::memory_order_relaxed); }
  bool enabled(LogLevel level) const { return level != LogLevel::kOff && level <= this->level(); }

  // Shown in every line, like Firecracker's "[instance-id:thread]" prefix.
  void set_instance_id(std::string id);
  void set_show_origin(bool show) { show_origin_.store(show, std::memory_order_relaxed); }

  // Writes one line with a single write(2), so concurrent lines never interleave.
  void log(LogLevel level, std::string_view message, const char* file = nullptr, int line = 0);
  void logf(LogLevel level, const char* file, int line, const char* fmt, ...)
      __attribute__((format(printf, 5, 6)));

  // Rate-limited variant: drops the line if `limiter` has no token; the next line that
  // passes reports how many were dropped. Dropped lines are counted in missed_count().
  void log_limited(RateLimiter& limiter, LogLevel level, std::string_view message,
                   const char* file = nullptr, int line = 0);
  void logf_limited(RateLimiter& limiter, LogLevel level, const char* file, int line,
                    const char* fmt, ...) __attribute__((format(printf, 6, 7)));

  uint64_t missed_count() const { return missed_.load(std::memory_order_relaxed); }
  // Also count dropped lines in this metric (instance() uses "logger.missed_log_count").
  void set_missed_metric(Counter* counter) { missed_metric_.store(counter, std::memory_order_relaxed); }

 private:
  void count_missed();
  void log_passed(RateLimiter& limiter, LogLevel level, std::string_view message,
                  const char* file, int line);

  std::mutex mu_;  // guards fd_ and instance_id_
  UniqueFd fd_;    // invalid: stderr
  std::string instance_id_ = "anonymous-instance";
  std::atomic<LogLevel> level_{LogLevel::kWarning};
  std::atomic<bool> show_origin_{false};
  std::atomic<uint64_t> missed_{0};
  std::atomic<Counter*> missed_metric_{nullptr};
};

// Formats a printf-style message into a std::string (never throws on bad lengths).
std::string vformat_message(const char* fmt, va_list args);

}  // namespace kiln::vmm::logging

#define KILN_LOG(level, ...)                                                              \
  do {                                                                                    \
    auto& kiln_logger_ = ::kiln::vmm::logging::Logger::instance();                        \
    if (kiln_logger_.enabled(level)) kiln_logger_.logf(level, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

#define KILN_LOG_ERROR(...) KILN_LOG(::kiln::vmm::logging::LogLevel::kError, __VA_ARGS__)
#define KILN_LOG_WARN(...) KILN_LOG(::kiln::vmm::logging::LogLevel::kWarning, __VA_ARGS__)
#define KILN_LOG_INFO(...) KILN_LOG(::kiln::vmm::logging::LogLevel::kInfo, __VA_ARGS__)
#define KILN_LOG_DEBUG(...) KILN_LOG(::kiln::vmm::logging::LogLevel::kDebug, __VA_ARGS__)

// For messages the guest can trigger: one token bucket per call site.
#define KILN_LOG_GUEST(level, ...)                                                        \
  do {                                                                                    \
    auto& kiln_logger_ = ::kiln::vmm::logging::Logger::instance();                        \
    if (kiln_logger_.enabled(level)) {                                                    \
      static ::kiln::vmm::logging::RateLimiter kiln_site_limiter_(                        \
          ::kiln::vmm::logging::kGuestLogBurst, ::kiln::vmm::logging::kGuestLogInterval); \
      kiln_logger_.logf_limited(kiln_site_limiter_, level, __FILE__, __LINE__, __VA_ARGS__); \
    }                                                                                     \
  } while (0)

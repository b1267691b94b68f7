// Logger implementation: formatting, timestamps and the single-write line output.
#include "vmm/logging/logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <utility>

#include "common/io.h"

namespace kiln::vmm::logging {
namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// "2026-11-26T14:45:01.123456789" in UTC.
std::string timestamp_now() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ld", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
  return buf;
}

std::string_view base_name(const char* file) {
  std::string_view f(file);
  const size_t slash = f.rfind('/');
  return slash == std::string_view::npos ? f : f.substr(slash + 1);
}

}  // namespace

Result<LogLevel> parse_log_level(std::string_view text) {
  if (iequals(text, "error")) return LogLevel::kError;
  if (iequals(text, "warning") || iequals(text, "warn")) return LogLevel::kWarning;
  if (iequals(text, "info")) return LogLevel::kInfo;
  if (iequals(text, "debug") || iequals(text, "trace")) return LogLevel::kDebug;
  if (iequals(text, "off")) return LogLevel::kOff;
  return make_error("invalid log level \"" + std::string(text) +
                    "\" (expected one of Error, Warning, Info, Debug, Trace, Off)");
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kOff: return "OFF";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarning: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
  }
  return "?";
}

std::string vformat_message(const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  char small[256];
  const int n = std::vsnprintf(small, sizeof(small), fmt, copy);
  va_end(copy);
  if (n < 0) return std::string("(bad log format) ") + fmt;
  if (static_cast<size_t>(n) < sizeof(small)) return std::string(small, static_cast<size_t>(n));
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), fmt, args);
  out.resize(static_cast<size_t>(n));
  return out;
}

Logger& Logger::instance() {
  static Logger* logger = [] {
    auto* l = new Logger();  // never destroyed: threads may log during exit
    l->set_missed_metric(&MetricsRegistry::global().counter("logger.missed_log_count"));
    return l;
  }();
  return *logger;
}

Status Logger::open_output(const std::string& path) {
  // O_APPEND so several writers (and log rotation by truncation) stay line-consistent.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return errno_error("open log file " + path);
  std::lock_guard<std::mutex> lock(mu_);
  fd_.reset(fd);
  return ok_status();
}

void Logger::reset_output() {
  std::lock_guard<std::mutex> lock(mu_);
  fd_.reset();
}

void Logger::set_instance_id(std::string id) {
  std::lock_guard<std::mutex> lock(mu_);
  instance_id_ = std::move(id);
}

void Logger::log(LogLevel level, std::string_view message, const char* file, int line) {
  if (!enabled(level)) return;
  std::string out = timestamp_now();
  std::lock_guard<std::mutex> lock(mu_);
  out += " [";
  out += instance_id_;
  out += "] ";
  out += log_level_name(level);
  out += ' ';
  if (file != nullptr && show_origin_.load(std::memory_order_relaxed)) {
    out += base_name(file);
    out += ':';
    out += std::to_string(line);
    out += ' ';
  }
  out += message;
  if (out.empty() || out.back() != '\n') out += '\n';
  (void)io::write_all(fd_.valid() ? fd_.get() : STDERR_FILENO, out);  // nowhere left to report a failure
}

void Logger::logf(LogLevel level, const char* file, int line, const char* fmt, ...) {
  if (!enabled(level)) return;
  va_list args;
  va_start(args, fmt);
  std::string message = vformat_message(fmt, args);
  va_end(args);
  log(level, message, file, line);
}

void Logger::log_limited(RateLimiter& limiter, LogLevel level, std::string_view message,
                         const char* file, int line) {
  if (!enabled(level)) return;
  if (!limiter.try_acquire()) {
    count_missed();
    return;
  }
  log_passed(limiter, level, message, file, line);
}

void Logger::logf_limited(RateLimiter& limiter, LogLevel level, const char* file, int line,
                          const char* fmt, ...) {
  if (!enabled(level)) return;
  // The limiter is asked before formatting, so a guest flood costs no formatting work.
  if (!limiter.try_acquire()) {
    count_missed();
    return;
  }
  va_list args;
  va_start(args, fmt);
  std::string message = vformat_message(fmt, args);
  va_end(args);
  log_passed(limiter, level, message, file, line);
}

void Logger::count_missed() {
  missed_.fetch_add(1, std::memory_order_relaxed);
  if (Counter* c = missed_metric_.load(std::memory_order_relaxed)) c->inc();
}

void Logger::log_passed(RateLimiter& limiter, LogLevel level, std::string_view message,
                        const char* file, int line) {
  const uint64_t suppressed = limiter.take_suppressed();
  if (suppressed == 0) {
    log(level, message, file, line);
    return;
  }
  std::string with_note(message);
  with_note += " (" + std::to_string(suppressed) + " similar messages suppressed)";
  log(level, with_note, file, line);
}

}  // namespace kiln::vmm::logging

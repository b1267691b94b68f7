// LogEntry: one line of a function's log (guest stdout/stderr or a platform line such as
// START/END/REPORT), with the Lambda-style platform line formats and the text/JSON renderings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kiln::kilnd::logs {

enum class LogSource { kStdout, kStderr, kPlatform };
const char* log_source_name(LogSource s);
std::optional<LogSource> parse_log_source(std::string_view s);

struct LogEntry {
  std::uint64_t seq = 0;  // per function, increasing; assigned by the store
  std::uint64_t ts_ns = 0;  // ns since the Unix epoch
  std::string instance_id;
  std::string request_id;
  LogSource source = LogSource::kStdout;
  std::string text;
};

// What REPORT carries (Lambda's fields; init_duration only on a cold start).
struct ReportInfo {
  std::string request_id;
  double duration_ms = 0;
  std::uint32_t memory_mib = 0;
  std::uint64_t max_memory_used_mib = 0;
  std::optional<double> init_duration_ms;
  std::string status;  // "" on success, else "timeout", "crash", ... (appended as Status: ...)
};

// "START RequestId: <id> Version: <version>"
std::string format_start(std::string_view request_id, std::string_view version);
// "END RequestId: <id>"
std::string format_end(std::string_view request_id);
// "REPORT RequestId: <id>\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
//  Max Memory Used: 20 MB[\tInit Duration: 150.00 ms][\tStatus: timeout]"
std::string format_report(const ReportInfo& r);
// Lambda bills whole milliseconds, rounded up; at least 1 ms.
std::uint64_t billed_duration_ms(double duration_ms);

// RFC 3339 UTC with microseconds: 2026-11-26T15:00:00.123456Z
std::string format_timestamp(std::uint64_t ts_ns);
// Accepts RFC 3339 UTC ("...Z", optional fraction) or a plain integer of ms since the epoch.
std::optional<std::uint64_t> parse_timestamp(std::string_view text);

// "<ts> <instance> <request or -> <source> <text>" (one line, no newline).
std::string render_text(const LogEntry& e);
nlohmann::json render_json(const LogEntry& e);
// render_json(e) as one compact line with "\n" (invalid UTF-8 replaced by U+FFFD), the form
// of the log files and of the logs API's JSON lines; written directly, without building the
// JSON object (it is on every invocation's path), byte for byte what dump() would give.
std::string render_json_line(const LogEntry& e);
std::optional<LogEntry> entry_from_json(const nlohmann::json& j);

}  // namespace kiln::kilnd::logs

// kiln-vmm's command line, parsed into a struct with errors as values. Flag names follow
// Firecracker's where one exists (--api-sock, --config-file, --no-api, --id, --log-path,
// --level, --metrics-path, --boot-timer, --http-api-max-payload-size, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::vmm::config {

inline constexpr std::string_view kDefaultApiSock = "/run/kiln-vmm.socket";
inline constexpr std::string_view kDefaultInstanceId = "anonymous-instance";
// Firecracker's default --http-api-max-payload-size.
inline constexpr size_t kDefaultMaxPayloadBytes = 51200;

struct CliOptions {
  std::string api_sock = std::string(kDefaultApiSock);
  std::optional<std::string> config_file;
  bool no_api = false;
  bool self_test = false;
  std::string id = std::string(kDefaultInstanceId);
  std::optional<std::string> log_path;
  std::optional<std::string> level;  // validated by logging::parse_log_level
  bool show_level = false;
  bool show_log_origin = false;
  std::optional<std::string> metrics_path;
  bool boot_timer = false;
  size_t http_api_max_payload_size = kDefaultMaxPayloadBytes;
  bool help = false;
  bool version = false;
  // kiln-vmm's own: seccomp off (wins over audit) or audit-only, and the SIGSYS test hook.
  bool no_seccomp = false;
  bool seccomp_audit = false;
  std::optional<std::uint32_t> debug_seccomp_violation_after_ms;
};

// argv[0] is the program name and is skipped. Accepts "--flag value" and "--flag=value"
// (the shared parser, common/cli). Errors name the flag: "--level: invalid log level ...".
Result<CliOptions> parse_cli_options(const std::vector<std::string>& args);
Result<CliOptions> parse_cli_options(int argc, const char* const* argv);

// The text printed by --help.
std::string cli_usage();

// Applies --id, --level, --log-path, --show-log-origin to logging::Logger::instance() and
// --metrics-path to logging::MetricsRegistry::global(). Call once, early in main.
Status apply_logging_options(const CliOptions& options);

}  // namespace kiln::vmm::config

// Command-line parsing for kiln-vmm (see cli_options.h).
#include "vmm/config/cli_options.h"

#include <charconv>
#include <cstdint>

#include "common/cli/option_parser.h"
#include "vmm/config/vm_config.h"
#include "vmm/logging/logger.h"
#include "vmm/logging/metrics.h"

namespace kiln::vmm::config {
namespace {

using cli::Value;

// Firecracker's flags, then kiln-vmm's seccomp flags (debugging and a test hook).
constexpr cli::Flag kFlags[] = {
    {"api-sock", 0, Value::kRequired},
    {"config-file", 0, Value::kRequired},
    {"no-api"},
    {"self-test"},
    {"id", 0, Value::kRequired},
    {"log-path", 0, Value::kRequired},
    {"level", 0, Value::kRequired},
    {"show-level"},
    {"show-log-origin"},
    {"metrics-path", 0, Value::kRequired},
    {"boot-timer"},
    {"http-api-max-payload-size", 0, Value::kRequired},
    {"help"},
    {"version"},
    {"no-seccomp"},
    {"seccomp-audit"},
    {"debug-seccomp-violation-after-ms", 0, Value::kRequired},
};

// The seccomp flags may repeat (kilnd's --vmm-arg adds them to whatever else is there).
bool may_repeat(std::string_view flag) {
  return flag == "no-seccomp" || flag == "seccomp-audit" || flag == "debug-seccomp-violation-after-ms";
}

// Firecracker's instance id rule: 1-64 characters of [A-Za-z0-9-].
Status check_instance_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return make_error("--id: must be 1 to 64 characters long");
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return make_error("--id: may only contain alphanumeric characters and '-'");
  }
  return ok_status();
}

Status apply(CliOptions& o, std::string_view flag, const std::string& value) {
  if (flag == "--api-sock") {
    KILN_TRY(check_path_string("--api-sock", value));
    o.api_sock = value;
  } else if (flag == "--config-file") {
    KILN_TRY(check_path_string("--config-file", value));
    o.config_file = value;
  } else if (flag == "--id") {
    KILN_TRY(check_instance_id(value));
    o.id = value;
  } else if (flag == "--log-path") {
    KILN_TRY(check_path_string("--log-path", value));
    o.log_path = value;
  } else if (flag == "--level") {
    auto level = logging::parse_log_level(value);
    if (!level.ok()) return level.error().wrap("--level");
    o.level = value;
  } else if (flag == "--metrics-path") {
    KILN_TRY(check_path_string("--metrics-path", value));
    o.metrics_path = value;
  } else if (flag == "--http-api-max-payload-size") {
    size_t n = 0;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, n);
    if (ec != std::errc() || ptr != end || n == 0 || n > (size_t{64} << 20)) {
      return make_error("--http-api-max-payload-size: must be a number of bytes between 1 and 67108864");
    }
    o.http_api_max_payload_size = n;
  } else if (flag == "--debug-seccomp-violation-after-ms") {
    std::uint32_t ms = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (value.empty() || ec != std::errc() || ptr != value.data() + value.size()) {
      return make_error(std::string(flag) + ": want a number of milliseconds, got \"" + value + "\"");
    }
    o.debug_seccomp_violation_after_ms = ms;
  }
  return ok_status();
}

void set_bool(CliOptions& o, std::string_view flag) {
  if (flag == "--no-api") o.no_api = true;
  if (flag == "--self-test") o.self_test = true;
  if (flag == "--show-level") o.show_level = true;
  if (flag == "--show-log-origin") o.show_log_origin = true;
  if (flag == "--boot-timer") o.boot_timer = true;
  if (flag == "--help") o.help = true;
  if (flag == "--version") o.version = true;
  if (flag == "--no-seccomp") o.no_seccomp = true;
  if (flag == "--seccomp-audit") o.seccomp_audit = true;
}

}  // namespace

Result<CliOptions> parse_cli_options(const std::vector<std::string>& args) {
  CliOptions o;
  const std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  KILN_ASSIGN_OR_RETURN(cli::ParsedArgs parsed, cli::parse(kFlags, rest));
  if (!parsed.rest.empty()) return make_error("unexpected argument \"" + parsed.rest[0] + "\" (see --help)");
  std::vector<std::string_view> seen;
  for (const cli::Arg& a : parsed.args) {
    if (a.flag == nullptr) return make_error("unexpected argument \"" + a.value + "\" (see --help)");
    const std::string flag = "--" + std::string(a.flag->name);
    if (!may_repeat(a.flag->name)) {
      for (std::string_view s : seen) {
        if (s == a.flag->name) return make_error(flag + ": given more than once");
      }
      seen.push_back(a.flag->name);
    }
    if (a.flag->value == Value::kNone) {
      set_bool(o, flag);
    } else {
      KILN_TRY(apply(o, flag, a.value));
    }
  }
  if (o.help || o.version) return o;  // nothing else matters
  if (o.no_api && !o.config_file) {
    return make_error("--no-api: requires --config-file (there would be no way to configure the VM)");
  }
  return o;
}

Result<CliOptions> parse_cli_options(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) args.emplace_back(argv[i] != nullptr ? argv[i] : "");
  return parse_cli_options(args);
}

std::string cli_usage() {
  return "usage: kiln-vmm [options]\n"
         "  --api-sock PATH          API Unix socket (default /run/kiln-vmm.socket); a stale file is removed\n"
         "  --config-file FILE       Firecracker-style JSON config; boots without API calls\n"
         "  --no-api                 do not start the API server (requires --config-file)\n"
         "  --self-test              report whether this host's KVM can run Linux guests, then exit\n"
         "  --id ID                  instance id (1-64 of [A-Za-z0-9-]; default anonymous-instance)\n"
         "  --log-path PATH          log to this file or fifo instead of stderr\n"
         "  --level LEVEL            Error, Warning, Info, Debug, Trace or Off (default Warning)\n"
         "  --show-level             (accepted for Firecracker compatibility; kiln always shows it)\n"
         "  --show-log-origin        add file:line to log lines\n"
         "  --metrics-path PATH      file or fifo that FlushMetrics appends JSON metrics to\n"
         "  --boot-timer             log the time from start to the guest's boot-complete write\n"
         "  --http-api-max-payload-size BYTES  API request body limit (default 51200)\n"
         "  --help                   print this text\n"
         "  --version                print the version\n"
         "  --no-seccomp             DEBUGGING ONLY: run without the per-thread seccomp filters\n"
         "  --seccomp-audit          DEBUGGING ONLY: log syscalls the filters would refuse (kernel audit\n"
         "                           log / dmesg) instead of killing kiln-vmm\n"
         "  --debug-seccomp-violation-after-ms N\n"
         "                           TEST HOOK: N ms after the VM starts, vCPU 0 makes a forbidden\n"
         "                           syscall, so kiln-vmm must die with SIGSYS\n";
}

Status apply_logging_options(const CliOptions& options) {
  auto& logger = logging::Logger::instance();
  logger.set_instance_id(options.id);
  if (options.level) {
    KILN_ASSIGN_OR_RETURN(auto level, logging::parse_log_level(*options.level));
    logger.set_level(level);
  }
  logger.set_show_origin(options.show_log_origin);
  if (options.log_path) {
    auto st = logger.open_output(*options.log_path);
    if (!st.ok()) return st.error().wrap("--log-path");
  }
  if (options.metrics_path) {
    auto st = logging::MetricsRegistry::global().open_output(*options.metrics_path);
    if (!st.ok()) return st.error().wrap("--metrics-path");
  }
  return ok_status();
}

}  // namespace kiln::vmm::config

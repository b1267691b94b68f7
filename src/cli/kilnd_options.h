// kilnd's command line, parsed into plain values with errors as values (every one a usage
// error: exit 2); kilnd_main.cc turns them into the daemon's and the backend's options.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "src/net/network_settings.h"

namespace kiln::kilnd::cli {

struct KilndOptions {
  bool help = false;
  // --listen HOST:PORT, split; tcp false for "none".
  bool tcp = true;
  std::string tcp_host = "127.0.0.1";
  std::uint16_t tcp_port = 8900;
  std::string unix_path;  // empty: <state-dir>/kilnd.sock; "none": no Unix socket
  std::string state_dir;  // as given (kilnd makes it absolute)
  std::string vmm_path;  // empty: next to kilnd, else $PATH
  std::string kernel_path, initrd_path, boot_args;
  std::vector<std::string> vmm_args;
  bool jail = false;
  bool snapshots = true;
  // Unset: the daemon's and the backend's own defaults.
  std::optional<bool> park_vmms;
  std::optional<std::chrono::milliseconds> boot_timeout, drain_timeout;
  std::optional<std::size_t> log_memory_bytes;
  std::string tenants_file;  // empty: no tenants
  // --network on|off: each instance gets its own network (needs the jail: its netns is the
  // jail's). network_defaults holds the operator's defaults exactly when network is on: those
  // of --network-config FILE, else NetworkDefaults{}.
  bool network = false;
  std::optional<net::NetworkDefaults> network_defaults;
  std::string network_config_file;  // as given; empty: none
  bool allow_second_schedules = false;  // tests only: rate(N seconds) timer triggers
  bool lazy_images = true;              // --lazy-images on|off
  std::uint64_t chunk_cache_gib = 10;   // --chunk-cache-gib N
  std::string config_file;  // the config file read; empty: none

  bool operator==(const KilndOptions&) const = default;
};

// Read when it exists and neither --config nor $KILN_CONFIG names another file.
inline constexpr const char* kDefaultConfigFile = "/etc/kiln/kilnd.json";

struct KilndDefaults {
  std::string state_dir;  // $KILN_STATE_DIR or /var/lib/kiln
  bool jail = false;  // on when kilnd runs as root
  bool network = false;  // on when kilnd runs as root, if the jail stays on
  // The config file without --config: $KILN_CONFIG (which must exist: config_required) or
  // kDefaultConfigFile (skipped when absent). Empty: none.
  std::string config_file{};
  bool config_required = false;
};

// `args` without argv[0]. The config file's keys are applied first, then the command line's
// flags, each of which replaces the file's value (every value of a repeatable flag). Errors name
// the file's key: "kilnd.json: key \"boot-timeout-ms\": must be at least 1".
Result<KilndOptions> parse_kilnd_args(const std::vector<std::string>& args, const KilndDefaults& defaults);
// $KILN_STATE_DIR (else /var/lib/kiln), $KILN_CONFIG (else /etc/kiln/kilnd.json), and the jail
// and instance networks on for root.
KilndDefaults kilnd_defaults();
std::string kilnd_usage();
// The keys a config file may hold: every flag but --help and --config.
std::vector<std::string> kilnd_config_keys();

}  // namespace kiln::kilnd::cli

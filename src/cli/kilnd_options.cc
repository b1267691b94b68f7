// kilnd's flags (see kilnd_options.h) on the shared option parser.
#include "src/cli/kilnd_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "common/cli/option_parser.h"
#include "common/io.h"
#include "common/json/field_reader.h"

namespace kiln::kilnd::cli {
namespace {

using kiln::cli::Value;

constexpr kiln::cli::Flag kFlags[] = {
    {"help", 'h'},
    {"listen", 0, Value::kRequired},
    {"unix", 0, Value::kRequired},
    {"state-dir", 0, Value::kRequired},
    {"vmm", 0, Value::kRequired},
    {"kernel", 0, Value::kRequired},
    {"initrd", 0, Value::kRequired},
    {"boot-args", 0, Value::kRequired},
    {"boot-timeout-ms", 0, Value::kRequired},
    {"drain-timeout-ms", 0, Value::kRequired},
    {"vmm-arg", 0, Value::kRequired},
    {"jail", 0, Value::kRequired},
    {"snapshots", 0, Value::kRequired},
    {"park-vmms", 0, Value::kRequired},
    {"log-memory-mib", 0, Value::kRequired},
    {"tenants", 0, Value::kRequired},
    {"network", 0, Value::kRequired},
    {"network-config", 0, Value::kRequired},
    {"allow-second-schedules", 0},
    {"lazy-images", 0, Value::kRequired},
    {"chunk-cache-gib", 0, Value::kRequired},
};

// Timeouts in ms: at most 12 digits, as kilnd has always taken them.
constexpr std::uint64_t kMaxMs = 999'999'999'999;
constexpr std::uint64_t kMaxLogMemoryMib = 65536;
constexpr std::uint64_t kMaxChunkCacheGib = 1 << 20;
constexpr std::size_t kMaxNetworkConfigBytes = 1 << 20;

Status set_listen(KilndOptions& o, const std::string& v) {
  if (v == "none") {
    o.tcp = false;
    return ok_status();
  }
  const auto colon = v.rfind(':');
  auto port = colon == std::string::npos ? Result<std::uint64_t>(make_error(""))
                                         : kiln::cli::parse_number("--listen", v.substr(colon + 1), 65535);
  if (!port.ok()) return make_error("--listen must be HOST:PORT (got " + v + ")");
  o.tcp = true;
  o.tcp_host = v.substr(0, colon);
  if (!o.tcp_host.empty() && o.tcp_host.front() == '[') o.tcp_host = o.tcp_host.substr(1, o.tcp_host.size() - 2);
  o.tcp_port = static_cast<std::uint16_t>(*port);
  return ok_status();
}

// --vmm, --kernel, --initrd: a file every instance needs, so a wrong one is refused at start
// (not at the first instance, as a jail error far from its cause): it must be a readable
// regular file (a script's `$(readlink -f MISSING)` passes an empty one).
Result<std::string> file_flag(const std::string& flag, const std::string& path) {
  if (path.empty()) return make_error(flag + ": empty path");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return errno_error(flag + " " + path);
  if (!S_ISREG(st.st_mode)) return make_error(flag + " " + path + ": not a regular file");
  if (::access(path.c_str(), R_OK) != 0) return errno_error(flag + " " + path);
  return path;
}

// --network-config FILE: the operator's network defaults (a JSON object); errors name the file
// and the field ("--network-config net.json: deny[0]: ...").
Result<net::NetworkDefaults> read_network_config(const std::string& path) {
  const std::string where = "--network-config " + path;
  auto text = io::read_file(path, kMaxNetworkConfigBytes);
  if (!text.ok()) return text.error().wrap(where);
  auto doc = kiln::json::parse(*text);
  if (!doc.ok()) return make_error(where + ": " + doc.error().message);
  auto defaults = net::parse_network_defaults(*doc);
  if (!defaults.ok()) return make_error(where + ": " + defaults.error().message);
  return std::move(defaults).value();
}

// Instance networks: on by default where the jail is (kilnd as root), never without it.
Status resolve_network(KilndOptions& o, std::optional<bool> flag, const KilndDefaults& defaults) {
  o.network = flag.value_or(defaults.network && o.jail);
  if (o.network && !o.jail) {
    return make_error("--network on needs --jail on (an instance's network is its jail's namespace)");
  }
  if (!o.network_config_file.empty()) {
    if (!o.network) return make_error("--network-config: instance networks are off (--network on)");
    KILN_ASSIGN_OR_RETURN(auto d, read_network_config(o.network_config_file));
    o.network_defaults = std::move(d);
  } else if (o.network) {
    o.network_defaults = net::NetworkDefaults{};
  }
  return ok_status();
}

Status apply(KilndOptions& o, const kiln::cli::Arg& a) {
  const std::string flag = "--" + std::string(a.flag->name);
  const std::string& v = a.value;
  if (a.is("listen")) return set_listen(o, v);
  if (a.is("unix")) o.unix_path = v;
  else if (a.is("state-dir")) o.state_dir = v;
  else if (a.is("vmm")) { KILN_ASSIGN_OR_RETURN(o.vmm_path, file_flag(flag, v)); }
  else if (a.is("kernel")) { KILN_ASSIGN_OR_RETURN(o.kernel_path, file_flag(flag, v)); }
  else if (a.is("initrd")) { KILN_ASSIGN_OR_RETURN(o.initrd_path, file_flag(flag, v)); }
  else if (a.is("boot-args")) o.boot_args = v;
  else if (a.is("vmm-arg")) o.vmm_args.push_back(v);
  else if (a.is("tenants")) o.tenants_file = v;
  else if (a.is("network-config")) o.network_config_file = v;
  else if (a.is("allow-second-schedules")) o.allow_second_schedules = true;
  else if (a.is("jail")) { KILN_ASSIGN_OR_RETURN(o.jail, kiln::cli::parse_on_off(flag, v)); }
  else if (a.is("snapshots")) { KILN_ASSIGN_OR_RETURN(o.snapshots, kiln::cli::parse_on_off(flag, v)); }
  else if (a.is("park-vmms")) { KILN_ASSIGN_OR_RETURN(o.park_vmms, kiln::cli::parse_on_off(flag, v)); }
  else if (a.is("lazy-images")) { KILN_ASSIGN_OR_RETURN(o.lazy_images, kiln::cli::parse_on_off(flag, v)); }
  else if (a.is("chunk-cache-gib")) {
    KILN_ASSIGN_OR_RETURN(o.chunk_cache_gib, kiln::cli::parse_number(flag, v, kMaxChunkCacheGib));
    if (o.chunk_cache_gib == 0) return make_error(flag + ": must be at least 1");
  }
  else if (a.is("boot-timeout-ms")) {
    KILN_ASSIGN_OR_RETURN(auto ms, kiln::cli::parse_number(flag, v, kMaxMs));
    if (ms == 0) return make_error(flag + ": must be at least 1");
    o.boot_timeout = std::chrono::milliseconds(ms);
  } else if (a.is("drain-timeout-ms")) {
    KILN_ASSIGN_OR_RETURN(auto ms, kiln::cli::parse_number(flag, v, kMaxMs));
    o.drain_timeout = std::chrono::milliseconds(ms);
  } else if (a.is("log-memory-mib")) {
    KILN_ASSIGN_OR_RETURN(auto mib, kiln::cli::parse_number(flag, v, kMaxLogMemoryMib));
    if (mib == 0) return make_error(flag + ": must be at least 1");
    o.log_memory_bytes = static_cast<std::size_t>(mib) << 20;
  }
  return ok_status();
}

}  // namespace

Result<KilndOptions> parse_kilnd_args(const std::vector<std::string>& args, const KilndDefaults& defaults) {
  KILN_ASSIGN_OR_RETURN(kiln::cli::ParsedArgs parsed, kiln::cli::parse(kFlags, args));
  KilndOptions o;
  o.state_dir = defaults.state_dir;
  o.jail = defaults.jail;
  std::optional<bool> network;  // decided once --jail is known
  for (const kiln::cli::Arg& a : parsed.args) {
    if (a.is("help")) {
      KilndOptions help;
      help.help = true;
      return help;
    }
    if (a.flag == nullptr) return make_error("unexpected argument " + a.value);
    if (a.is("network")) {
      KILN_ASSIGN_OR_RETURN(network, kiln::cli::parse_on_off("--network", a.value));
      continue;
    }
    KILN_TRY(apply(o, a));
  }
  if (!parsed.rest.empty()) return make_error("unexpected argument " + parsed.rest[0]);
  KILN_TRY(resolve_network(o, network, defaults));
  return o;
}

KilndDefaults kilnd_defaults() {
  const char* env_state = std::getenv("KILN_STATE_DIR");
  const bool root = ::geteuid() == 0;
  return KilndDefaults{env_state && *env_state ? env_state : "/var/lib/kiln", root, root};
}

std::string kilnd_usage() {
  return "usage: kilnd [options]\n"
         "  --listen HOST:PORT    TCP address (default 127.0.0.1:8900; loopback unless you say otherwise;\n"
         "                        PORT 0 picks a free port; 'none' disables TCP)\n"
         "  --unix PATH           Unix socket (default <state-dir>/kilnd.sock; 'none' disables it)\n"
         "  --state-dir DIR       state: functions, images, logs, VM run dirs (default $KILN_STATE_DIR\n"
         "                        or /var/lib/kiln)\n"
         "  --vmm PATH            kiln-vmm binary (default: next to kilnd, else $PATH)\n"
         "  --kernel PATH         guest kernel for every microVM\n"
         "  --initrd PATH         initramfs with kiln-init\n"
         "  --boot-args ARGS      guest kernel command line\n"
         "  --boot-timeout-ms N   boot to ready (default 60000)\n"
         "  --drain-timeout-ms N  on SIGTERM, how long in-flight requests may finish (default 30000)\n"
         "  --vmm-arg ARG         extra argument for every kiln-vmm (repeatable; debugging, e.g.\n"
         "                        --vmm-arg=--no-seccomp)\n"
         "  --jail on|off         run every kiln-vmm in its own jail (namespaces, pivot_root, cgroups,\n"
         "                        own uid/gid, no capabilities; default on when kilnd runs as root)\n"
         "  --snapshots on|off    warm starts: snapshot each VM shape's first instance once ready and\n"
         "                        restore later instances from it (default on; <state-dir>/snapshots)\n"
         "  --park-vmms on|off    with snapshots: keep one kiln-vmm per function started ahead, its\n"
         "                        snapshot bound, for the next instance (restore = one API call;\n"
         "                        default on)\n"
         "  --log-memory-mib N    memory for recent log lines, all functions together (default 8;\n"
         "                        older lines stay in <state-dir>/logs files)\n"
         "  --tenants FILE        tenants: bearer tokens and quotas (JSON, see src/README.md); without it\n"
         "                        every caller is the admin\n"
         "  --network on|off      give each instance its own network under an egress policy (needs the\n"
         "                        jail; default on when kilnd runs as root with the jail on); off: guests\n"
         "                        have loopback only and deploys naming `network` are refused\n"
         "  --network-config FILE the operator's network defaults (JSON: mode, allow_private, deny, dns,\n"
         "                        instance_range, link_prefix: one per kilnd on a host; see src/README.md)\n"
         "  --lazy-images on|off  start a function whose registry holds kiln's chunked-rootfs artifact for\n"
         "                        its image (kiln-rootfs convert --push) from chunks fetched on demand\n"
         "                        instead of pulling the image first (default off; docs/lazy-images.md)\n"
         "  --chunk-cache-gib N   the host's cache of lazy images' chunks (default 10;\n"
         "                        <state-dir>/lazy/chunks; least recently used chunks of idle images go)\n"
         "  --allow-second-schedules  tests only: deploys may schedule rate(N seconds)\n"
         "  -h, --help            print this text\n";
}

}  // namespace kiln::kilnd::cli

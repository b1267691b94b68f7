// kilnd's flags (see kilnd_options.h) on the shared option parser.
#include "src/cli/kilnd_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "common/cli/option_parser.h"
#include "common/io.h"
#include "common/json/field_reader.h"

namespace kiln::kilnd::cli {
namespace {

using kiln::cli::Value;

constexpr kiln::cli::Flag kFlags[] = {
    {"help", 'h'},
    {"config", 0, Value::kRequired},
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

// How a flag's value is written as a key of the config file (the key is the flag's name).
enum class FileKind {
  kNotInFile,  // help, config
  kString,
  kNumber,  // a JSON integer
  kOnOff,  // a JSON boolean for on|off
  kSwitch,  // a JSON boolean: true is the flag given, false the flag absent
  kStrings,  // a repeatable flag: an array of strings
};

FileKind file_kind(std::string_view name) {
  if (name == "help" || name == "config") return FileKind::kNotInFile;
  if (name == "boot-timeout-ms" || name == "drain-timeout-ms" || name == "log-memory-mib" ||
      name == "chunk-cache-gib") {
    return FileKind::kNumber;
  }
  if (name == "jail" || name == "snapshots" || name == "park-vmms" || name == "network" || name == "lazy-images") {
    return FileKind::kOnOff;
  }
  if (name == "allow-second-schedules") return FileKind::kSwitch;
  if (name == "vmm-arg") return FileKind::kStrings;
  return FileKind::kString;
}

// Timeouts in ms: at most 12 digits, as kilnd has always taken them.
constexpr std::uint64_t kMaxMs = 999'999'999'999;
constexpr std::uint64_t kMaxLogMemoryMib = 65536;
constexpr std::uint64_t kMaxChunkCacheGib = 1 << 20;
constexpr std::size_t kMaxNetworkConfigBytes = 1 << 20;
constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr std::size_t kMaxConfigArrayEntries = 1024;

Status set_listen(KilndOptions& o, const std::string& label, const std::string& v) {
  if (v == "none") {
    o.tcp = false;
    return ok_status();
  }
  const auto colon = v.rfind(':');
  auto port = colon == std::string::npos ? Result<std::uint64_t>(make_error(""))
                                         : kiln::cli::parse_number(label, v.substr(colon + 1), 65535);
  if (!port.ok()) return make_error(label + ": must be HOST:PORT (got " + v + ")");
  o.tcp = true;
  o.tcp_host = v.substr(0, colon);
  if (!o.tcp_host.empty() && o.tcp_host.front() == '[') o.tcp_host = o.tcp_host.substr(1, o.tcp_host.size() - 2);
  o.tcp_port = static_cast<std::uint16_t>(*port);
  return ok_status();
}

// --vmm, --kernel, --initrd: a file every instance needs, so a wrong one is refused at start
// (not at the first instance, as a jail error far from its cause): it must be a readable
// regular file (a script's `$(readlink -f MISSING)` passes an empty one).
Result<std::string> file_flag(const std::string& label, const std::string& path) {
  if (path.empty()) return make_error(label + ": empty path");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return errno_error(label + " " + path);
  if (!S_ISREG(st.st_mode)) return make_error(label + " " + path + ": not a regular file");
  if (::access(path.c_str(), R_OK) != 0) return errno_error(label + " " + path);
  return path;
}

// --network-config FILE: the operator's network defaults (a JSON object); errors name the file
// and the field ("--network-config net.json: deny[0]: ...").
Result<net::NetworkDefaults> read_network_config(const std::string& label, const std::string& path) {
  const std::string where = label + " " + path;
  auto text = io::read_file(path, kMaxNetworkConfigBytes);
  if (!text.ok()) return text.error().wrap(where);
  auto doc = kiln::json::parse(*text);
  if (!doc.ok()) return make_error(where + ": " + doc.error().message);
  auto defaults = net::parse_network_defaults(*doc);
  if (!defaults.ok()) return make_error(where + ": " + defaults.error().message);
  return std::move(defaults).value();
}

// What is decided once every flag is known.
struct Pending {
  std::optional<bool> network;  // --network; unset: the default, which depends on --jail
  std::string network_config_label = "--network-config";  // where --network-config came from
};

// Instance networks: on by default where the jail is (kilnd as root), never without it.
Status resolve_network(KilndOptions& o, const Pending& p, const KilndDefaults& defaults) {
  o.network = p.network.value_or(defaults.network && o.jail);
  if (o.network && !o.jail) {
    return make_error("--network on needs --jail on (an instance's network is its jail's namespace)");
  }
  if (!o.network_config_file.empty()) {
    if (!o.network) return make_error(p.network_config_label + ": instance networks are off (--network on)");
    KILN_ASSIGN_OR_RETURN(auto d, read_network_config(p.network_config_label, o.network_config_file));
    o.network_defaults = std::move(d);
  } else if (o.network) {
    o.network_defaults = net::NetworkDefaults{};
  }
  return ok_status();
}

// The one place that knows what each flag sets, for the command line and the config file alike.
// `label` names the value's origin in errors: "--boot-timeout-ms" or
// "kilnd.json: key \"boot-timeout-ms\"".
Status apply(KilndOptions& o, Pending& p, const kiln::cli::Arg& a, const std::string& label) {
  const std::string& v = a.value;
  if (a.is("listen")) return set_listen(o, label, v);
  if (a.is("unix")) o.unix_path = v;
  else if (a.is("state-dir")) o.state_dir = v;
  else if (a.is("vmm")) { KILN_ASSIGN_OR_RETURN(o.vmm_path, file_flag(label, v)); }
  else if (a.is("kernel")) { KILN_ASSIGN_OR_RETURN(o.kernel_path, file_flag(label, v)); }
  else if (a.is("initrd")) { KILN_ASSIGN_OR_RETURN(o.initrd_path, file_flag(label, v)); }
  else if (a.is("boot-args")) o.boot_args = v;
  else if (a.is("vmm-arg")) o.vmm_args.push_back(v);
  else if (a.is("tenants")) o.tenants_file = v;
  else if (a.is("network-config")) {
    o.network_config_file = v;
    p.network_config_label = label;
  }
  else if (a.is("allow-second-schedules")) o.allow_second_schedules = true;
  else if (a.is("network")) { KILN_ASSIGN_OR_RETURN(p.network, kiln::cli::parse_on_off(label, v)); }
  else if (a.is("jail")) { KILN_ASSIGN_OR_RETURN(o.jail, kiln::cli::parse_on_off(label, v)); }
  else if (a.is("snapshots")) { KILN_ASSIGN_OR_RETURN(o.snapshots, kiln::cli::parse_on_off(label, v)); }
  else if (a.is("park-vmms")) { KILN_ASSIGN_OR_RETURN(o.park_vmms, kiln::cli::parse_on_off(label, v)); }
  else if (a.is("lazy-images")) { KILN_ASSIGN_OR_RETURN(o.lazy_images, kiln::cli::parse_on_off(label, v)); }
  else if (a.is("chunk-cache-gib")) {
    KILN_ASSIGN_OR_RETURN(o.chunk_cache_gib, kiln::cli::parse_number(label, v, kMaxChunkCacheGib));
    if (o.chunk_cache_gib == 0) return make_error(label + ": must be at least 1");
  }
  else if (a.is("boot-timeout-ms")) {
    KILN_ASSIGN_OR_RETURN(auto ms, kiln::cli::parse_number(label, v, kMaxMs));
    if (ms == 0) return make_error(label + ": must be at least 1");
    o.boot_timeout = std::chrono::milliseconds(ms);
  } else if (a.is("drain-timeout-ms")) {
    KILN_ASSIGN_OR_RETURN(auto ms, kiln::cli::parse_number(label, v, kMaxMs));
    o.drain_timeout = std::chrono::milliseconds(ms);
  } else if (a.is("log-memory-mib")) {
    KILN_ASSIGN_OR_RETURN(auto mib, kiln::cli::parse_number(label, v, kMaxLogMemoryMib));
    if (mib == 0) return make_error(label + ": must be at least 1");
    o.log_memory_bytes = static_cast<std::size_t>(mib) << 20;
  }
  return ok_status();
}

const kiln::cli::Flag* flag_named(std::string_view name) {
  for (const kiln::cli::Flag& f : kFlags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// One value of the config file: the argument it stands for and the label for its errors.
struct FileArg {
  kiln::cli::Arg arg;
  std::string label;
};

std::string key_label(const std::string& file, std::string_view key) {
  return file + ": key \"" + std::string(key) + "\"";
}

// The config file's keys as the arguments they stand for (in key order: nlohmann sorts them).
// Unknown keys and values of the wrong type are refused, naming the key.
Result<std::vector<FileArg>> read_config_file(const std::string& path) {
  auto text = io::read_file(path, kMaxConfigBytes);
  if (!text.ok()) return text.error().wrap("--config");
  auto doc = kiln::json::parse(*text, {.refuse_duplicate_keys = true});
  if (!doc.ok()) return make_error(path + ": " + doc.error().message);
  if (!doc->is_object()) {
    return make_error(path + ": expected a JSON object, got " + std::string(kiln::json::type_name(*doc)));
  }
  std::vector<FileArg> out;
  for (const auto& [key, value] : doc->items()) {
    const std::string label = key_label(path, key);
    const kiln::cli::Flag* flag = flag_named(key);
    const FileKind kind = flag == nullptr ? FileKind::kNotInFile : file_kind(key);
    if (kind == FileKind::kNotInFile) return make_error(label + ": unknown key (not a kilnd flag; see kilnd --help)");
    auto one = [&](std::string v) { out.push_back({kiln::cli::Arg{flag, std::move(v), true}, label}); };
    // The reader's errors carry the key as their path; ours name the file too.
    auto wrong = [&](const kiln::json::FieldError& e) { return make_error(label + ": " + e.reason); };
    switch (kind) {
      case FileKind::kString: {
        auto s = kiln::json::read_string(value, key, {.allow_nul = false});
        if (!s.ok()) return wrong(s.error());
        one(*s);
        break;
      }
      case FileKind::kNumber: {
        auto n = kiln::json::read_u64(value, key);
        if (!n.ok()) return wrong(n.error());
        one(std::to_string(*n));
        break;
      }
      case FileKind::kOnOff: {
        auto b = kiln::json::read_bool(value, key);
        if (!b.ok()) return wrong(b.error());
        one(*b ? "on" : "off");
        break;
      }
      case FileKind::kSwitch: {
        auto b = kiln::json::read_bool(value, key);
        if (!b.ok()) return wrong(b.error());
        if (*b) out.push_back({kiln::cli::Arg{flag, "", false}, label});
        break;
      }
      case FileKind::kStrings: {
        auto list = kiln::json::read_strings(value, key, kMaxConfigArrayEntries, {.allow_nul = false});
        if (!list.ok()) return make_error(key_label(path, list.error().path) + ": " + list.error().reason);
        for (std::string& v : *list) one(std::move(v));
        break;
      }
      case FileKind::kNotInFile: break;
    }
  }
  return out;
}

// Which config file to read: --config FILE (must exist), else the default (KILN_CONFIG must
// exist, /etc/kiln/kilnd.json may be absent). Empty: none.
Result<std::string> config_path(const kiln::cli::ParsedArgs& parsed, const KilndDefaults& defaults) {
  std::string given;
  for (const kiln::cli::Arg& a : parsed.args) {
    if (a.is("config")) given = a.value;
  }
  if (!given.empty()) return given;
  if (defaults.config_file.empty()) return std::string();
  struct stat st{};
  if (!defaults.config_required && ::stat(defaults.config_file.c_str(), &st) != 0 && errno == ENOENT) {
    return std::string();
  }
  return defaults.config_file;
}

}  // namespace

Result<KilndOptions> parse_kilnd_args(const std::vector<std::string>& args, const KilndDefaults& defaults) {
  KILN_ASSIGN_OR_RETURN(kiln::cli::ParsedArgs parsed, kiln::cli::parse(kFlags, args));
  for (const kiln::cli::Arg& a : parsed.args) {
    if (a.is("help")) {
      KilndOptions help;
      help.help = true;
      return help;
    }
    if (a.flag == nullptr) return make_error("unexpected argument " + a.value);
    if (a.is("config") && a.value.empty()) return make_error("--config: empty path");
  }
  if (!parsed.rest.empty()) return make_error("unexpected argument " + parsed.rest[0]);
  KilndOptions o;
  o.state_dir = defaults.state_dir;
  o.jail = defaults.jail;
  KILN_ASSIGN_OR_RETURN(o.config_file, config_path(parsed, defaults));
  Pending pending;
  if (!o.config_file.empty()) {
    KILN_ASSIGN_OR_RETURN(std::vector<FileArg> file_args, read_config_file(o.config_file));
    // A flag on the command line replaces the file's value; for a repeatable flag, all of them.
    auto on_command_line = [&](const kiln::cli::Flag* f) {
      for (const kiln::cli::Arg& a : parsed.args) {
        if (a.flag == f) return true;
      }
      return false;
    };
    for (const FileArg& fa : file_args) {
      if (!on_command_line(fa.arg.flag)) KILN_TRY(apply(o, pending, fa.arg, fa.label));
    }
  }
  for (const kiln::cli::Arg& a : parsed.args) {
    if (!a.is("config")) KILN_TRY(apply(o, pending, a, "--" + std::string(a.flag->name)));
  }
  KILN_TRY(resolve_network(o, pending, defaults));
  return o;
}

KilndDefaults kilnd_defaults() {
  const char* env_state = std::getenv("KILN_STATE_DIR");
  const char* env_config = std::getenv("KILN_CONFIG");
  const bool root = ::geteuid() == 0;
  KilndDefaults d{env_state && *env_state ? env_state : "/var/lib/kiln", root, root};
  d.config_file = env_config && *env_config ? env_config : kDefaultConfigFile;
  d.config_required = env_config && *env_config;
  return d;
}

std::vector<std::string> kilnd_config_keys() {
  std::vector<std::string> keys;
  for (const kiln::cli::Flag& f : kFlags) {
    if (file_kind(f.name) != FileKind::kNotInFile) keys.emplace_back(f.name);
  }
  return keys;
}

std::string kilnd_usage() {
  return "usage: kilnd [options]\n"
         "  --config FILE         kilnd's flags as a JSON object, one key per flag (\"state-dir\": \"/srv\",\n"
         "                        \"jail\": true, \"vmm-arg\": [...]); flags given here win (default\n"
         "                        $KILN_CONFIG, else /etc/kiln/kilnd.json when it exists; src/README.md)\n"
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
         "                        instead of pulling the image first (default on; docs/lazy-images.md)\n"
         "  --chunk-cache-gib N   the host's cache of lazy images' chunks (default 10;\n"
         "                        <state-dir>/lazy/chunks; least recently used chunks of idle images go)\n"
         "  --allow-second-schedules  tests only: deploys may schedule rate(N seconds)\n"
         "  -h, --help            print this text\n";
}

}  // namespace kiln::kilnd::cli

// kiln-init's flags (see init_options.h) on the shared option parser.
#include "guest-agent/cli/init_options.h"

#include <cstdint>

#include "common/cli/option_parser.h"

namespace kiln::agent {
namespace {

using cli::Value;

constexpr cli::Flag kNoBootFlags[] = {
    {"no-boot"},
    {"help", 'h'},
    {"control", 0, Value::kRequired},
    {"proxy", 0, Value::kRequired},
    {"events", 0, Value::kRequired},
    {"spec-file", 0, Value::kRequired},
    {"config-drive", 0, Value::kRequired},
};

constexpr cli::Flag kWriteSpecFlags[] = {
    {"write-spec", 0, Value::kRequired},
    {"help", 'h'},
    {"env", 0, Value::kRequired},
    {"cwd", 0, Value::kRequired},
    {"user", 0, Value::kRequired},
    {"hostname", 0, Value::kRequired},
    {"instance-id", 0, Value::kRequired},
    {"port", 0, Value::kRequired},
    {"ready-timeout-ms", 0, Value::kRequired},
    {"stop-grace-ms", 0, Value::kRequired},
    {"overlay-mib", 0, Value::kRequired},
    {"wall-clock-ns", 0, Value::kRequired},
    // The launch spec's net_* keys (common/protocol/launch_spec.h), checked when encoding.
    {"net-mac", 0, Value::kRequired},
    {"net-address", 0, Value::kRequired},
    {"net-gateway", 0, Value::kRequired},
    {"net-address6", 0, Value::kRequired},
    {"net-gateway6", 0, Value::kRequired},
    {"net-mtu", 0, Value::kRequired},
    {"net-dns", 0, Value::kRequired},
    {"net-search", 0, Value::kRequired},
    {"net-hosts", 0, Value::kRequired},
};

Result<InitOptions> parse_no_boot(const std::vector<std::string>& args) {
  KILN_ASSIGN_OR_RETURN(cli::ParsedArgs parsed, cli::parse(kNoBootFlags, args));
  InitOptions o;
  o.mode = InitMode::kNoBoot;
  for (const cli::Arg& a : parsed.args) {
    if (a.is("help")) return InitOptions{};
    if (a.flag == nullptr) return make_error("unexpected argument " + a.value);
    if (a.is("control") || a.is("proxy") || a.is("events")) {
      auto ep = Endpoint::parse(a.value);
      if (!ep.ok()) return ep.error().wrap("--" + std::string(a.flag->name));
      (a.is("control") ? o.control : a.is("proxy") ? o.proxy : o.events) = *ep;
    } else if (a.is("spec-file") || a.is("config-drive")) {
      o.spec_file = a.value;
    }
  }
  if (!parsed.rest.empty()) return make_error("unexpected argument " + parsed.rest[0]);
  return o;
}

Result<InitOptions> parse_write_spec(const std::vector<std::string>& args) {
  KILN_ASSIGN_OR_RETURN(cli::ParsedArgs parsed, cli::parse(kWriteSpecFlags, args));
  InitOptions o;
  o.mode = InitMode::kWriteSpec;
  protocol::LaunchSpec& s = o.spec;
  for (const cli::Arg& a : parsed.args) {
    if (a.is("help")) return InitOptions{};
    if (a.flag == nullptr) return make_error("unexpected argument " + a.value + " (the command goes after --)");
    const std::string flag = "--" + std::string(a.flag->name);
    if (a.is("write-spec")) o.out_file = a.value;
    else if (a.is("env")) s.env.push_back(a.value);
    else if (a.is("cwd")) s.working_dir = a.value;
    else if (a.is("user")) s.user = a.value;
    else if (a.is("hostname")) s.hostname = a.value;
    else if (a.is("instance-id")) s.instance_id = a.value;
    else if (a.is("port")) { KILN_ASSIGN_OR_RETURN(auto n, cli::parse_number(flag, a.value, UINT16_MAX)); s.port = static_cast<std::uint16_t>(n); }
    else if (a.is("ready-timeout-ms")) { KILN_ASSIGN_OR_RETURN(s.ready_timeout_ms, cli::parse_number(flag, a.value)); }
    else if (a.is("stop-grace-ms")) { KILN_ASSIGN_OR_RETURN(s.stop_grace_ms, cli::parse_number(flag, a.value)); }
    else if (a.is("overlay-mib")) { KILN_ASSIGN_OR_RETURN(s.overlay_mib, cli::parse_number(flag, a.value)); }
    else if (a.is("wall-clock-ns")) { KILN_ASSIGN_OR_RETURN(s.wall_clock_ns, cli::parse_number(flag, a.value)); }
    else if (a.is("net-mac")) s.net.mac = a.value;
    else if (a.is("net-address")) s.net.address = a.value;
    else if (a.is("net-gateway")) s.net.gateway = a.value;
    else if (a.is("net-address6")) s.net.address6 = a.value;
    else if (a.is("net-gateway6")) s.net.gateway6 = a.value;
    else if (a.is("net-mtu")) { KILN_ASSIGN_OR_RETURN(auto n, cli::parse_number(flag, a.value, protocol::kMaxMtu)); s.net.mtu = static_cast<std::uint32_t>(n); }
    else if (a.is("net-dns")) s.net.dns.push_back(a.value);
    else if (a.is("net-search")) s.net.search.push_back(a.value);
    else if (a.is("net-hosts")) s.net.hosts.push_back(a.value);
  }
  s.argv = parsed.rest;
  return o;
}

}  // namespace

Result<InitOptions> parse_init_args(const std::vector<std::string>& args) {
  if (args.empty()) return make_error("kiln-init runs as PID 1 in a kiln microVM; outside one, pass --no-boot");
  const std::string& first = args[0];
  if (first == "--help" || first == "-h") return InitOptions{};
  if (first == "--no-boot") return parse_no_boot(args);
  if (first == "--write-spec" || first.starts_with("--write-spec=")) return parse_write_spec(args);
  return make_error("kiln-init runs as PID 1 in a kiln microVM; outside one, pass --no-boot (got " + first + ")");
}

std::string init_usage() {
  return "usage: kiln-init                  (as PID 1: boot the guest, agent on vsock)\n"
         "       kiln-init --no-boot [--control EP] [--proxy EP] [--events EP]\n"
         "                 [--spec-file FILE] [--config-drive DEV]\n"
         "       kiln-init --write-spec FILE [--env K=V]... [--cwd DIR] [--user U] [--hostname H]\n"
         "                 [--port N] [--ready-timeout-ms N] [--stop-grace-ms N] [--overlay-mib N]\n"
         "                 [--instance-id ID] [--wall-clock-ns N]\n"
         "                 [--net-mac MAC [--net-address CIDR] [--net-gateway IP] [--net-address6 CIDR]\n"
         "                  [--net-gateway6 IP] [--net-mtu N] [--net-dns IP]... [--net-search DOMAIN]...\n"
         "                  [--net-hosts 'IP NAME...']...] -- COMMAND [ARG]...\n"
         "                 (writes a config drive image: one launch-spec frame, 512-byte padded)\n"
         "EP is vsock:CID:PORT (CID may be 'any') or unix:PATH. Defaults: control vsock:any:10000,\n"
         "proxy vsock:any:9000, events vsock:2:10001. FILE/DEV hold one launch-spec frame.\n";
}

}  // namespace kiln::agent

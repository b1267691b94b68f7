// The `kiln` command line (see kiln_options.h) on the shared option parser.
#include "src/cli/kiln_options.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <span>

#include "common/cli/option_parser.h"
#include "common/io.h"
#include "common/unique_fd.h"

namespace kiln::kilnd::cli {
namespace {

using nlohmann::json;
using kiln::cli::Arg;
using kiln::cli::Flag;
using kiln::cli::Value;

constexpr const char* kGlobalUsage =
    "usage: kiln [--endpoint EP] [--token T] [--tenant NAME] [--json] COMMAND ...\n"
    "  EP: host:port or a Unix socket path (default $KILN_ENDPOINT, else 127.0.0.1:8900)\n"
    "  T: the bearer token of a kilnd with tenants (default $KILN_TOKEN)\n"
    "  NAME: (admins) act in that tenant's namespace\n"
    "  --json: the API's JSON instead of readable output\n"
    "commands (kiln COMMAND --help for details):\n";

constexpr const char* kDeployLine =
    "  deploy NAME --image REF [--memory MIB] [--vcpus N] [--timeout-ms N] [--concurrency N]\n"
    "         [--min N] [--max N] [--queue N] [--idle-timeout-s N] [--env K=V]... [--command ARG]...\n"
    "         [--arg ARG]... [--workdir DIR] [--user U] [--username U --password P]\n"
    "         [--insecure-registry] [--network none|egress] [--allow CIDR]... [--deny CIDR]...\n"
    "         [--dns IP]... [--file CONFIG.json] [--no-wait]\n";
constexpr const char* kInvokeLine =
    "  invoke NAME [--data TEXT | --data-file FILE]      event invocation (POST /event-invoke)\n"
    "  invoke NAME --web PATH [--method M] [--data ...]  web invocation\n"
    "  invoke NAME --lambda [--data ...]                 the Lambda-compatible path\n";
constexpr const char* kLogsLine = "  logs NAME [-f] [--since TIME] [--request-id ID] [--limit N]\n";
constexpr const char* kLsLine = "  ls\n";
constexpr const char* kRmLine = "  rm NAME\n";
constexpr const char* kStatusLine = "  status [NAME]\n";
constexpr const char* kDoctorLine = "  doctor [--config FILE] [--state-dir DIR] [--vmm PATH]\n";

constexpr const char* kDeployDetails =
    "Creates or updates function NAME and waits until its image is built (or failed).\n"
    "  --image REF           OCI image: [docker://]host/name[:tag|@digest], oci:DIR[:TAG], ...\n"
    "  --memory MIB, --vcpus N, --timeout-ms N, --concurrency N (requests per instance)\n"
    "  --min N, --max N      instances kept warm / at most; --queue N waiting requests at most\n"
    "  --idle-timeout-s N    stop an idle instance after N s\n"
    "  --env K=V, --command ARG, --arg ARG, --workdir DIR, --user U: override the image's config\n"
    "  --username U --password P  registry credentials\n"
    "  --insecure-registry   allow plain HTTP and unverified certificates for this registry\n"
    "  --network none|egress the guest's network: egress reaches public addresses, none only what\n"
    "                        --allow names (unset: kilnd's defaults)\n"
    "  --allow CIDR, --deny CIDR  destinations the guest may / may not reach (repeatable)\n"
    "  --dns IP              the guest's DNS server (repeatable; unset: kilnd's)\n"
    "  --file CONFIG.json    fields of the API's function config (later flags override them)\n"
    "  --no-wait             return once the function is stored\n";
constexpr const char* kInvokeDetails =
    "Invokes function NAME and prints its answer; the request id goes to stderr.\n"
    "  -d, --data TEXT       the request body; --data-file FILE reads it (\"-\": stdin)\n"
    "  --web PATH            an HTTP request to the function (method GET, POST with data)\n"
    "  -X, --method M        the web request's method\n"
    "  --lambda              the Lambda Invoke API (POST /2015-03-31/functions/NAME/invocations)\n";
constexpr const char* kDoctorDetails =
    "Checks this host for kilnd (run it as root, as kilnd runs): KVM (kiln-vmm's self-test), cgroup v2\n"
    "controllers, namespaces, /dev/net/tun, veth, TAP and nftables, the state dir, open-file limits,\n"
    "and kilnd's config file. One line per check (ok, warn or FAIL), a fix under each warning and\n"
    "failure; exit status 0 when no check failed.\n"
    "  --config FILE         kilnd's config file (default $KILN_CONFIG, else /etc/kiln/kilnd.json)\n"
    "  --state-dir DIR       the state dir to check (default: the config file's, else kilnd's default)\n"
    "  --vmm PATH            the kiln-vmm for the KVM self-test (default: the config file's, else next\n"
    "                        to kiln, /usr/lib/kiln, $PATH)\n";
constexpr const char* kLogsDetails =
    "Prints function NAME's newest log lines (1000 unless --limit).\n"
    "  -f, --follow          keep printing new lines\n"
    "  --since TIME          lines from TIME on (RFC 3339 UTC or ms since the epoch)\n"
    "  --request-id ID       one request's lines\n"
    "  --limit N             the newest N lines (at most 100000)\n";

// "usage: kiln [global flags] invoke NAME ...", one such line per form of the command.
std::string usage_of(std::string_view name, std::string_view lines, const char* details) {
  std::string out;
  const std::string form = "  " + std::string(name);
  while (!lines.empty()) {
    const std::size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl == std::string_view::npos ? lines.size() : nl + 1);
    lines.remove_prefix(line.size());
    if (line.size() > form.size() && line.starts_with(form) && (line[form.size()] == ' ' || line[form.size()] == '\n')) {
      out += out.empty() ? "usage: kiln [global flags] " : "       kiln [global flags] ";
      line.remove_prefix(2);
    }
    out += line;
  }
  return out + details;
}

constexpr Flag kGlobalFlags[] = {
    {"help", 'h'},
    {"json"},
    {"endpoint", 'e', Value::kRequired},
    {"token", 0, Value::kRequired},
    {"tenant", 0, Value::kRequired},
};

constexpr Flag kDeployFlags[] = {
    {"help", 'h'},
    {"json"},
    {"file", 0, Value::kRequired},
    {"image", 0, Value::kRequired},
    {"memory", 0, Value::kRequired},
    {"vcpus", 0, Value::kRequired},
    {"timeout-ms", 0, Value::kRequired},
    {"concurrency", 0, Value::kRequired},
    {"min", 0, Value::kRequired},
    {"max", 0, Value::kRequired},
    {"queue", 0, Value::kRequired},
    {"idle-timeout-s", 0, Value::kRequired},
    {"workdir", 0, Value::kRequired},
    {"user", 0, Value::kRequired},
    {"command", 0, Value::kRequired},
    {"arg", 0, Value::kRequired},
    {"username", 0, Value::kRequired},
    {"password", 0, Value::kRequired},
    {"insecure-registry"},
    {"no-wait"},
    {"env", 0, Value::kRequired},
    {"network", 0, Value::kRequired},
    {"allow", 0, Value::kRequired},
    {"deny", 0, Value::kRequired},
    {"dns", 0, Value::kRequired},
};

constexpr Flag kInvokeFlags[] = {
    {"help", 'h'},
    {"json"},
    {"data", 'd', Value::kRequired},
    {"data-file", 0, Value::kRequired},
    {"web", 0, Value::kRequired},
    {"method", 'X', Value::kRequired},
    {"lambda"},
};

constexpr Flag kLogsFlags[] = {
    {"help", 'h'},
    {"json"},
    {"follow", 'f'},
    {"since", 0, Value::kRequired},
    {"request-id", 0, Value::kRequired},
    {"limit", 0, Value::kRequired},
};

constexpr Flag kDoctorFlags[] = {
    {"help", 'h'},
    {"json"},
    {"config", 0, Value::kRequired},
    {"state-dir", 0, Value::kRequired},
    {"vmm", 0, Value::kRequired},
};

// Every command takes --help and --json besides its own flags.
constexpr Flag kPlainFlags[] = {{"help", 'h'}, {"json"}};

// Numeric deploy flags and the config field each sets.
struct NumberField {
  std::string_view flag, field;
};
constexpr NumberField kNumberFields[] = {
    {"memory", "memory_mib"}, {"vcpus", "vcpus"}, {"timeout-ms", "timeout_ms"}, {"concurrency", "concurrency"},
    {"min", "min_instances"}, {"max", "max_instances"}, {"queue", "max_queue"}, {"idle-timeout-s", "idle_timeout_s"},
};

// The body's `network` object, made if missing (a --file may have set it to something else:
// an error, not nlohmann's exception).
Result<json*> network_object(json& body, const std::string& flag) {
  json& network = body["network"];
  if (network.is_null()) network = json::object();
  if (!network.is_object()) return make_error(flag + ": the config's network is not an object");
  return &network;
}

Status apply_deploy(DeployArgs& d, const Arg& a, const FileReader& read_file) {
  json& body = d.body;
  const std::string flag = "--" + std::string(a.flag->name);
  for (const NumberField& f : kNumberFields) {
    if (a.is(f.flag)) {
      KILN_ASSIGN_OR_RETURN(auto n, kiln::cli::parse_number(flag, a.value));
      body[std::string(f.field)] = n;
      return ok_status();
    }
  }
  if (a.is("file")) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(a.value));
    auto f = json::parse(text, nullptr, false);
    if (!f.is_object()) return make_error("--file must hold a JSON object");
    for (auto it = f.begin(); it != f.end(); ++it) body[it.key()] = it.value();
  } else if (a.is("image")) {
    body["image"] = a.value;
  } else if (a.is("workdir")) {
    body["working_dir"] = a.value;
  } else if (a.is("user")) {
    body["user"] = a.value;
  } else if (a.is("command")) {
    body["command"].push_back(a.value);
  } else if (a.is("arg")) {
    body["args"].push_back(a.value);
  } else if (a.is("username")) {
    body["registry_credentials"]["username"] = a.value;
  } else if (a.is("password")) {
    body["registry_credentials"]["password"] = a.value;
  } else if (a.is("insecure-registry")) {
    body["tls_verify"] = false;
  } else if (a.is("network")) {
    if (a.value != "none" && a.value != "egress") {
      return make_error(flag + ": want none or egress, got '" + a.value + "'");
    }
    KILN_ASSIGN_OR_RETURN(json * network, network_object(body, flag));
    (*network)["mode"] = a.value;
  } else if (a.is("allow") || a.is("deny") || a.is("dns")) {
    KILN_ASSIGN_OR_RETURN(json * network, network_object(body, flag));
    const std::string field(a.flag->name);  // allow, deny, dns: the flag is the field
    json& list = (*network)[field];
    if (!list.is_null() && !list.is_array()) return make_error(flag + ": the config's network." + field + " is not a list");
    list.push_back(a.value);  // kilnd checks each entry (errors name network.allow[N])
  } else if (a.is("no-wait")) {
    d.wait = false;
  } else if (a.is("env")) {
    const auto eq = a.value.find('=');
    if (eq == std::string::npos) return make_error("--env needs NAME=VALUE");
    body["env"][a.value.substr(0, eq)] = a.value.substr(eq + 1);
  }
  return ok_status();
}

void apply_invoke(InvokeArgs& v, const Arg& a) {
  if (a.is("data")) {
    v.data = a.value;
    v.data_file.reset();
  } else if (a.is("data-file")) {
    v.data_file = a.value;
    v.data.reset();
  } else if (a.is("web")) {
    v.web = a.value;
  } else if (a.is("method")) {
    v.method = a.value;
  } else if (a.is("lambda")) {
    v.lambda = true;
  }
}

Status apply_logs(LogsArgs& l, const Arg& a) {
  if (a.is("follow")) l.follow = true;
  else if (a.is("since")) l.since = a.value;
  else if (a.is("request-id")) l.request_id = a.value;
  else if (a.is("limit")) { KILN_ASSIGN_OR_RETURN(l.limit, kiln::cli::parse_number("--limit", a.value)); }
  return ok_status();
}

struct CommandSpec {
  std::string_view name;
  KilnAction action;
  std::span<const Flag> flags;
  const char* line;
  const char* details;
  std::size_t min_positionals, max_positionals;  // NAME
};

const CommandSpec kCommands[] = {
    {"deploy", KilnAction::kDeploy, kDeployFlags, kDeployLine, kDeployDetails, 1, 1},
    {"invoke", KilnAction::kInvoke, kInvokeFlags, kInvokeLine, kInvokeDetails, 1, 1},
    {"logs", KilnAction::kLogs, kLogsFlags, kLogsLine, kLogsDetails, 1, 1},
    {"ls", KilnAction::kLs, kPlainFlags, kLsLine, "Lists the functions.\n", 0, 0},
    {"rm", KilnAction::kRm, kPlainFlags, kRmLine, "Removes function NAME (its instances stop).\n", 1, 1},
    {"status", KilnAction::kStatus, kPlainFlags, kStatusLine, "kilnd's status, or function NAME's.\n", 0, 1},
    {"doctor", KilnAction::kDoctor, kDoctorFlags, kDoctorLine, kDoctorDetails, 0, 0},
};

Status parse_command(KilnCommand& c, const CommandSpec& spec, const std::vector<std::string>& args,
                     const FileReader& read_file) {
  const std::string where = std::string(spec.name) + ": ";
  auto parsed_or = kiln::cli::parse(spec.flags, args);
  if (!parsed_or.ok()) return make_error(where + parsed_or.error().message);
  const kiln::cli::ParsedArgs& parsed = *parsed_or;
  // --help first: `kiln deploy --bogus --help` still shows the usage.
  for (const Arg& a : parsed.args) {
    if (a.is("help")) {
      c.action = KilnAction::kHelp;
      c.help = usage_of(spec.name, spec.line, spec.details);
      return ok_status();
    }
  }
  std::vector<std::string> positionals;
  for (const Arg& a : parsed.args) {
    if (a.flag == nullptr) {
      positionals.push_back(a.value);
    } else if (a.is("json")) {
      c.globals.json = true;
    } else if (spec.action == KilnAction::kDeploy) {
      if (auto st = apply_deploy(c.deploy, a, read_file); !st.ok()) {
        return st.error().sys_errno != 0 ? st.error() : Error{where + st.error().message};
      }
    } else if (spec.action == KilnAction::kInvoke) {
      apply_invoke(c.invoke, a);
    } else if (spec.action == KilnAction::kLogs) {
      if (auto st = apply_logs(c.logs, a); !st.ok()) return make_error(where + st.error().message);
    } else if (a.is("config")) {
      c.doctor.config = a.value;
    } else if (a.is("state-dir")) {
      c.doctor.state_dir = a.value;
    } else if (a.is("vmm")) {
      c.doctor.vmm = a.value;
    }
  }
  positionals.insert(positionals.end(), parsed.rest.begin(), parsed.rest.end());
  if (positionals.size() < spec.min_positionals) return make_error(where + "needs a NAME");
  if (positionals.size() > spec.max_positionals) return make_error(where + "unexpected argument " + positionals[spec.max_positionals]);
  const std::string name = positionals.empty() ? std::string() : positionals[0];
  c.action = spec.action;
  c.name = name;
  c.deploy.name = c.invoke.name = c.logs.name = name;
  return ok_status();
}

}  // namespace

KilnEnvironment kiln_environment() {
  KilnEnvironment env;
  if (const char* ep = std::getenv("KILN_ENDPOINT"); ep && *ep) env.endpoint = ep;
  if (const char* token = std::getenv("KILN_TOKEN")) env.token = token;
  return env;
}

Result<std::string> read_whole_file(const std::string& path) {
  // Any readable file, pipes too (--data-file <(...)): read_fd, not read_file, which wants a
  // regular file. The cap is far above any body kilnd accepts.
  constexpr std::size_t kMaxFileBytes = 256 * 1024 * 1024;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("cannot read " + path);
  auto text = io::read_fd(fd.get(), kMaxFileBytes, path);
  // Every failure to read the file carries errno, as kiln_options.h promises (exit status 1).
  if (!text.ok() && text.error().sys_errno == 0) return Error{text.error().message, EFBIG};
  return text;
}

Result<KilnCommand> parse_kiln_args(const std::vector<std::string>& args, const KilnEnvironment& env,
                                    const FileReader& read_file) {
  KilnCommand c;
  c.globals.endpoint = env.endpoint.empty() ? kDefaultEndpoint : env.endpoint;
  c.globals.token = env.token;
  KILN_ASSIGN_OR_RETURN(kiln::cli::ParsedArgs parsed,
                        kiln::cli::parse(kGlobalFlags, args, kiln::cli::Order::kStopAtPositional));
  for (const Arg& a : parsed.args) {
    if (a.is("help")) {
      c.help = kiln_usage();
      return c;
    }
    if (a.is("json")) c.globals.json = true;
    else if (a.is("endpoint")) c.globals.endpoint = a.value;
    else if (a.is("token")) c.globals.token = a.value;
    else if (a.is("tenant")) c.globals.tenant = a.value;
  }
  if (parsed.rest.empty()) return make_error("missing command");
  const std::string& command = parsed.rest[0];
  for (const CommandSpec& spec : kCommands) {
    if (spec.name == command) {
      KILN_TRY(parse_command(c, spec, std::vector<std::string>(parsed.rest.begin() + 1, parsed.rest.end()), read_file));
      return c;
    }
  }
  return make_error("unknown command " + command);
}

int exit_code_of(const Error& e) { return e.sys_errno != 0 ? 1 : kiln::cli::kUsageExit; }

std::string kiln_usage_for(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    for (const CommandSpec& spec : kCommands) {
      if (spec.name == a) return usage_of(spec.name, spec.line, spec.details);
    }
  }
  return kiln_usage();
}

std::string kiln_usage() {
  std::string u = kGlobalUsage;
  for (const CommandSpec& spec : kCommands) u += spec.line;
  return u;
}

}  // namespace kiln::kilnd::cli

// Parses kiln-jailer's flags into a JailSpec with the shared option parser (common/cli). Both
// "--flag value" and "--flag=value" work; everything after "--" goes to the VMM unchanged.
#include "src/jail/jailer_cli.h"

#include <charconv>
#include <limits>

#include "common/cli/option_parser.h"

namespace kiln::jail {
namespace {

template <typename T>
Result<T> parse_number(const std::string& flag, const std::string& text) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return make_error(flag + ": expected a non-negative integer, got '" + text + "'");
  return v;
}

Status parse_cgroup(JailerCommand& c, const std::string& v) {
  size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0) return make_error("--cgroup: expected <file>=<value>, e.g. memory.max=134217728");
  c.spec.cgroup_settings.push_back({v.substr(0, eq), v.substr(eq + 1)});
  return ok_status();
}

Status parse_resource_limit(JailerCommand& c, const std::string& v) {
  size_t eq = v.find('=');
  if (eq == std::string::npos) return make_error("--resource-limit: expected <resource>=<value> (fsize or no-file)");
  const std::string name = v.substr(0, eq);
  KILN_ASSIGN_OR_RETURN(uint64_t n, parse_number<uint64_t>("--resource-limit " + name, v.substr(eq + 1)));
  if (name == "fsize") {
    c.spec.rlimit_fsize = n;
  } else if (name == "no-file") {
    c.spec.rlimit_nofile = n;
  } else {
    return make_error("--resource-limit: unknown resource '" + name + "' (fsize or no-file)");
  }
  return ok_status();
}

// --bind HOST:JAIL[:ro|:rw] (read-only unless :rw).
Status parse_bind(JailerCommand& c, const std::string& v) {
  JailFile f;
  std::string rest = v;
  if (rest.size() > 3 && (rest.ends_with(":ro") || rest.ends_with(":rw"))) {
    f.read_only = rest.ends_with(":ro");
    rest.resize(rest.size() - 3);
  }
  size_t colon = rest.find(':');
  if (colon == std::string::npos) return make_error("--bind: expected HOST_PATH:JAIL_PATH[:ro|:rw]");
  f.host_path = rest.substr(0, colon);
  f.jail_path = rest.substr(colon + 1);
  c.spec.files.push_back(std::move(f));
  return ok_status();
}

Status apply_value(JailerCommand& c, const std::string& flag, const std::string& v) {
  JailSpec& s = c.spec;
  if (flag == "--id") {
    KILN_TRY(validate_id(v));
    s.id = v;
  } else if (flag == "--exec-file") {
    s.exec_file = v;
  } else if (flag == "--uid") {
    KILN_ASSIGN_OR_RETURN(s.uid, parse_number<uid_t>(flag, v));
  } else if (flag == "--gid") {
    KILN_ASSIGN_OR_RETURN(s.gid, parse_number<gid_t>(flag, v));
  } else if (flag == "--chroot-base-dir") {
    s.chroot_base_dir = v;
  } else if (flag == "--netns") {
    s.netns = v;
  } else if (flag == "--cgroup") {
    return parse_cgroup(c, v);
  } else if (flag == "--cgroup-version") {
    if (v != "1" && v != "2") return make_error("--cgroup-version: must be 1 or 2");
    s.cgroup_version = v == "1" ? CgroupVersion::kV1 : CgroupVersion::kV2;
  } else if (flag == "--parent-cgroup") {
    s.parent_cgroup = v;
  } else if (flag == "--resource-limit") {
    return parse_resource_limit(c, v);
  } else if (flag == "--bind") {
    return parse_bind(c, v);
  } else {
    return make_error("unknown flag " + flag);
  }
  return ok_status();
}

using cli::Value;

constexpr cli::Flag kFlags[] = {
    {"help", 'h'},
    {"id", 0, Value::kRequired},
    {"exec-file", 0, Value::kRequired},
    {"uid", 0, Value::kRequired},
    {"gid", 0, Value::kRequired},
    {"chroot-base-dir", 0, Value::kRequired},
    {"netns", 0, Value::kRequired},
    {"cgroup", 0, Value::kRequired},
    {"cgroup-version", 0, Value::kRequired},
    {"parent-cgroup", 0, Value::kRequired},
    {"resource-limit", 0, Value::kRequired},
    {"bind", 0, Value::kRequired},
    {"daemonize"},
    {"new-pid-ns"},  // always on: the VMM is its pid namespace's init
    {"cleanup"},
};

}  // namespace

Result<JailerCommand> parse_jailer_args(const std::vector<std::string>& args) {
  KILN_ASSIGN_OR_RETURN(cli::ParsedArgs parsed, cli::parse(kFlags, args));
  JailerCommand c;
  c.spec.cgroup_version = CgroupVersion::kV1;  // Firecracker's default
  bool have_uid = false, have_gid = false;
  for (const cli::Arg& a : parsed.args) {
    if (a.is("help")) {
      c.help = true;
      return c;
    }
    if (a.flag == nullptr) return make_error("unexpected argument " + a.value + " (VMM arguments go after --)");
    if (a.is("daemonize")) {
      c.spec.daemonize = true;
    } else if (a.is("cleanup")) {
      c.cleanup = true;
    } else if (a.flag->value == Value::kRequired) {
      KILN_TRY(apply_value(c, "--" + std::string(a.flag->name), a.value));
      have_uid = have_uid || a.is("uid");
      have_gid = have_gid || a.is("gid");
    }
  }
  if (c.spec.id.empty()) return make_error("--id is required");
  if (c.spec.exec_file.empty()) return make_error("--exec-file is required");
  if (!c.cleanup && (!have_uid || !have_gid)) return make_error("--uid and --gid are required");
  c.vmm_args.push_back("--id=" + c.spec.id);
  c.vmm_args.insert(c.vmm_args.end(), parsed.rest.begin(), parsed.rest.end());
  return c;
}

std::string jailer_usage() {
  return "usage: kiln-jailer --id ID --exec-file PATH --uid UID --gid GID\n"
         "                   [--chroot-base-dir DIR] [--netns PATH] [--cgroup FILE=VALUE]...\n"
         "                   [--cgroup-version 1|2] [--parent-cgroup REL] [--resource-limit fsize=N|no-file=N]...\n"
         "                   [--bind HOST_PATH:JAIL_PATH[:ro|:rw]]... [--daemonize] [--new-pid-ns]\n"
         "                   [-- VMM ARGS...]\n"
         "       kiln-jailer --cleanup --id ID --exec-file PATH [--chroot-base-dir DIR] [--parent-cgroup REL]\n"
         "\n"
         "Runs EXEC-FILE jailed, Firecracker-jailer style: in new mount, pid, ipc, uts and network\n"
         "namespaces (or --netns), pivot_root'ed into CHROOT-BASE-DIR/<exec name>/ID/root (default base\n"
         "/srv/jailer) holding only the exec file, its shared libraries, the --bind files and /dev/kvm\n"
         "(+ /dev/net/tun), in cgroups PARENT/ID (default parent: the exec name), as UID:GID with no\n"
         "capabilities and no_new_privs, rlimits applied (no-file defaults to 2048), fds above 2\n"
         "closed, empty environment. The VMM gets --id=ID and the arguments after --.\n"
         "Without --daemonize kiln-jailer waits, forwards SIGINT/SIGTERM/SIGHUP, removes the jail and\n"
         "cgroups when the VMM ends and exits with its status. With --daemonize the VMM's stdio goes\n"
         "to /dev/null, its pid is written to <jail root>/<exec name>.pid and kiln-jailer exits;\n"
         "remove the jail later with --cleanup. Usage errors exit 2.\n";
}

}  // namespace kiln::jail

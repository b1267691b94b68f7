// kiln doctor's checks (see checks.h): each reads the host only through its HostView.
#include "src/doctor/checks.h"

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "src/jail/host_files.h"

namespace kiln::doctor {
namespace {

CheckResult ok(std::string check, std::string finding) {
  return {std::move(check), Verdict::kOk, std::move(finding), ""};
}
CheckResult warn(std::string check, std::string finding, std::string fix) {
  return {std::move(check), Verdict::kWarn, std::move(finding), std::move(fix)};
}
CheckResult fail(std::string check, std::string finding, std::string fix) {
  return {std::move(check), Verdict::kFail, std::move(finding), std::move(fix)};
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  return buf;
}

// Does the kernel have module `name` (loaded, built in, or installed to be loaded)? Without root
// this is what can be known without trying.
bool module_known(const HostView& host, const std::string& name, std::string& where) {
  if (host.stat("/sys/module/" + name).exists) {
    where = "/sys/module/" + name;
    return true;
  }
  auto release = host.read_file("/proc/sys/kernel/osrelease");
  if (!release.ok()) return false;
  const std::string dir = "/lib/modules/" + trimmed(*release);
  for (const char* list : {"/modules.builtin", "/modules.dep"}) {
    auto text = host.read_file(dir + list);
    if (!text.ok()) continue;
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
      const std::string file = line.substr(0, line.find(':'));
      const auto slash = file.rfind('/');
      if (file.substr(slash == std::string::npos ? 0 : slash + 1) == name + ".ko" ||
          file.substr(slash == std::string::npos ? 0 : slash + 1).rfind(name + ".ko.", 0) == 0) {
        where = dir + list;
        return true;
      }
    }
  }
  return false;
}

constexpr const char* kNotRootFix = "run `sudo kiln doctor` to try it (kilnd runs as root for its jail)";

}  // namespace

CheckResult check_kvm(const HostView& host) {
  const std::string name = "kvm";
  const FileInfo dev = host.stat("/dev/kvm");
  if (!dev.exists) {
    return fail(name, "/dev/kvm is missing",
                "enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd; in a VM, "
                "enable nested virtualization");
  }
  if (!dev.char_device) return fail(name, "/dev/kvm is not a character device", "recreate it: mknod /dev/kvm c 10 232");
  if (auto s = host.open_read_write("/dev/kvm"); !s.ok()) {
    return fail(name, "cannot open /dev/kvm: " + s.error().message,
                "run kilnd as root, or add its user to the group owning /dev/kvm (usually kvm)");
  }
  auto test = host.kvm_self_test();
  if (!test.ok()) {
    return warn(name, "/dev/kvm opens; the self-test did not run: " + test.error().message,
                "install kiln-vmm next to kiln or on $PATH (or pass --vmm PATH)");
  }
  if (!test->can_run_linux) {
    return fail(name, "self-test: " + test->sentence,
                "use a host (or a VM with nested virtualization) whose KVM passes `kiln-vmm --self-test`");
  }
  return ok(name, "self-test: " + test->sentence);
}

CheckResult check_cgroup_v2(const HostView& host) {
  const std::string name = "cgroup v2";
  auto mounts = host.read_file("/proc/self/mounts");
  if (!mounts.ok()) return fail(name, "cannot read the mount table: " + mounts.error().message, "mount /proc");
  const std::vector<std::string> wanted = {"cpu", "memory", "pids"};
  // As the jail (src/jail/cgroups.cc): the first cgroup2 mount offering every controller, else
  // cgroup v1 hierarchies with them.
  std::string root, lacking;
  std::vector<std::string> v1;
  for (const jail::MountEntry& m : jail::parse_mounts(*mounts)) {
    if (m.fstype == "cgroup") {
      for (const auto& c : wanted) {
        if (contains(m.options, c) && !contains(v1, c)) v1.push_back(c);
      }
    }
    if (m.fstype != "cgroup2" || !root.empty()) continue;
    auto offered = host.read_file(m.target + "/cgroup.controllers");
    std::vector<std::string> missing;
    for (const auto& c : wanted) {
      if (!offered.ok() || !contains(words(*offered), c)) missing.push_back(c);
    }
    if (missing.empty()) {
      root = m.target;
    } else if (lacking.empty()) {
      lacking = m.target + " lacks the " + join(missing) + " controller(s)";
    }
  }
  const std::string unified_fix =
      "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2 only) and without cgroup_disable=";
  if (root.empty()) {
    const std::string why = lacking.empty() ? "cgroup2 is not mounted" : lacking;
    if (v1.size() == wanted.size()) {
      return warn(name, why + "; the jail uses cgroup v1 (cpu, memory, pids hierarchies mounted)", unified_fix);
    }
    return fail(
        name,
        why + ", and cgroup v1 has only " + (v1.empty() ? std::string("none") : join(v1)) + " of cpu, memory, pids",
        unified_fix);
  }
  auto enabled = host.read_file(root + "/cgroup.subtree_control");
  std::vector<std::string> off;
  for (const auto& c : wanted) {
    if (!enabled.ok() || !contains(words(*enabled), c)) off.push_back(c);
  }
  if (off.empty()) return ok(name, root + ": cpu, memory, pids available and delegated (cgroup.subtree_control)");
  auto w = host.writable(root + "/cgroup.subtree_control");
  if (w.ok()) {
    return ok(name, root + ": cpu, memory, pids available; kilnd enables " + join(off) + " in cgroup.subtree_control");
  }
  return fail(
      name,
      root + ": " + join(off) + " not delegated and cgroup.subtree_control is not writable (" + w.error().message + ")",
      host.root() ? "give kilnd a delegated cgroup (systemd: Delegate=yes)" : kNotRootFix);
}

CheckResult check_namespaces(const HostView& host) {
  const std::string name = "namespaces";
  struct Ns {
    int flag;
    const char* name;
  };
  static constexpr Ns kJailNamespaces[] = {{CLONE_NEWNS, "mount"},
                                           {CLONE_NEWPID, "pid"},
                                           {CLONE_NEWIPC, "ipc"},
                                           {CLONE_NEWUTS, "uts"},
                                           {CLONE_NEWNET, "net"}};
  if (!host.root()) return warn(name, "not root: cannot try mount, pid, ipc, uts, net namespaces", kNotRootFix);
  std::vector<std::string> refused;
  std::string why;
  for (const Ns& ns : kJailNamespaces) {
    if (auto s = host.try_unshare(ns.flag); !s.ok()) {
      refused.push_back(ns.name);
      if (why.empty()) why = s.error().message;
    }
  }
  if (refused.empty()) return ok(name, "mount, pid, ipc, uts, net: can unshare");
  return fail(name, "cannot unshare " + join(refused) + ": " + why,
              "boot a kernel with CONFIG_NAMESPACES (and its *_NS options); outside a container, or in one "
              "that allows unshare (no seccomp/AppArmor denial)");
}

CheckResult check_user_namespaces(const HostView& host) {
  const std::string name = "user namespaces";
  auto max = host.read_file("/proc/sys/user/max_user_namespaces");
  if (max.ok() && trimmed(*max) == "0") {
    return warn(name, "disabled (user.max_user_namespaces = 0); kiln's jail does not need them",
                "sysctl -w user.max_user_namespaces=15000 if other sandboxes on this host need them");
  }
  if (auto s = host.try_unshare(CLONE_NEWUSER); !s.ok()) {
    return warn(name, "cannot unshare: " + s.error().message + "; kiln's jail does not need them",
                "allow user namespaces (kernel.unprivileged_userns_clone, AppArmor's "
                "kernel.apparmor_restrict_unprivileged_userns) if other sandboxes need them");
  }
  return ok(name, "can unshare");
}

CheckResult check_tun_device(const HostView& host) {
  const std::string name = "/dev/net/tun";
  const FileInfo dev = host.stat("/dev/net/tun");
  if (!dev.exists || !dev.char_device) {
    return fail(name, dev.exists ? "not a character device" : "missing",
                "modprobe tun (and mkdir -p /dev/net; mknod /dev/net/tun c 10 200)");
  }
  if (auto s = host.open_read_write("/dev/net/tun"); !s.ok()) {
    return fail(name, "cannot open: " + s.error().message, host.root() ? "modprobe tun" : kNotRootFix);
  }
  return ok(name, "opens read-write");
}

CheckResult check_net_feature(const HostView& host, NetFeature feature) {
  const char* name = feature == NetFeature::kVeth ? "veth" : feature == NetFeature::kTap ? "tap" : "nftables";
  const char* module = feature == NetFeature::kVeth ? "veth" : feature == NetFeature::kTap ? "tun" : "nf_tables";
  const char* object = feature == NetFeature::kVeth  ? "a veth pair"
                       : feature == NetFeature::kTap ? "a TAP device"
                                                     : "an nftables table";
  const std::string fix = std::string("load it (modprobe ") + module + ") or boot a kernel with CONFIG_" +
                          (feature == NetFeature::kVeth  ? "VETH"
                           : feature == NetFeature::kTap ? "TUN"
                                                         : "NF_TABLES and CONFIG_NF_TABLES_INET") +
                          "; without it run kilnd --network off";
  if (host.root()) {
    if (auto s = host.try_net_feature(feature); !s.ok()) {
      return fail(name, std::string("cannot create ") + object + " in a new network namespace: " + s.error().message,
                  fix);
    }
    return ok(name, std::string("created ") + object + " in a new network namespace");
  }
  std::string where;
  if (module_known(host, module, where)) {
    return ok(name, std::string("kernel module ") + module + " present (" + where + "); not tried: not root");
  }
  return warn(name, std::string("not root, and no sign of kernel module ") + module, kNotRootFix);
}

CheckResult check_state_dir(const HostView& host, const std::string& state_dir) {
  const std::string name = "state dir";
  std::string at = state_dir;
  std::string finding;
  const FileInfo info = host.stat(state_dir);
  if (info.exists) {
    if (!info.directory)
      return fail(name, state_dir + " is not a directory", "remove it or choose another --state-dir");
    if (auto w = host.writable(state_dir); !w.ok()) {
      return fail(name, state_dir + " is not writable (" + w.error().message + ")",
                  host.root() ? "choose a --state-dir on a writable filesystem" : kNotRootFix);
    }
    finding = state_dir + " exists";
  } else {
    // The nearest existing parent: kilnd creates the rest.
    while (!host.stat(at).exists && at != "/" && !at.empty()) {
      const auto slash = at.find_last_of('/');
      at = slash == 0 || slash == std::string::npos ? "/" : at.substr(0, slash);
    }
    if (auto w = host.writable(at); !w.ok()) {
      return fail(name, state_dir + " is missing and " + at + " is not writable (" + w.error().message + ")",
                  host.root() ? "choose a --state-dir on a writable filesystem (or create " + state_dir + " there)"
                              : kNotRootFix);
    }
    finding = state_dir + " is missing; kilnd creates it (" + at + " is writable)";
  }
  auto fs = host.filesystem(at);
  if (!fs.ok()) return warn(name, finding + "; statfs: " + fs.error().message, "check the filesystem");
  finding += ", " + filesystem_name(fs->magic) + ", " + gib(fs->free_bytes) + " free";
  if (fs->free_bytes < kMinFreeBytes) {
    return warn(name, finding + " (under 5 GiB)",
                "free space or point --state-dir at a larger filesystem (images, snapshots and logs live there)");
  }
  if (filesystem_name(fs->magic) == "tmpfs") {
    return warn(name, finding + " (in memory: functions and images are lost at reboot)",
                "point --state-dir at a disk filesystem (ext4, xfs)");
  }
  return ok(name, finding);
}

CheckResult check_open_files(const HostView& host) {
  const std::string name = "open files";
  const NofileLimit l = host.nofile();
  auto text = [](std::uint64_t v) { return v == UINT64_MAX ? std::string("unlimited") : std::to_string(v); };
  const std::string finding = "RLIMIT_NOFILE " + text(l.soft) + " (hard " + text(l.hard) + ")";
  if (l.soft < kMinNofile) {
    return warn(name, finding + ", under 65536",
                "raise it for kilnd: LimitNOFILE=1048576 in its systemd unit, or ulimit -n 65536 before starting it");
  }
  return ok(name, finding);
}

std::vector<CheckResult> run_checks(const HostView& host, const std::string& state_dir) {
  return {check_kvm(host),
          check_cgroup_v2(host),
          check_namespaces(host),
          check_user_namespaces(host),
          check_tun_device(host),
          check_net_feature(host, NetFeature::kVeth),
          check_net_feature(host, NetFeature::kTap),
          check_net_feature(host, NetFeature::kNftables),
          check_state_dir(host, state_dir),
          check_open_files(host)};
}

std::string format_report(const std::vector<CheckResult>& results) {
  std::string out;
  for (const CheckResult& r : results) {
    out += r.verdict == Verdict::kOk ? "ok    " : r.verdict == Verdict::kWarn ? "warn  " : "FAIL  ";
    out += r.check + ": " + r.finding + "\n";
    if (r.verdict != Verdict::kOk && !r.fix.empty()) out += "  fix: " + r.fix + "\n";
  }
  return out;
}

int exit_status(const std::vector<CheckResult>& results) {
  return std::any_of(results.begin(), results.end(), [](const CheckResult& r) { return r.verdict == Verdict::kFail; })
             ? 1
             : 0;
}

std::string filesystem_name(std::uint64_t magic) {
  switch (magic) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    case 0x6969:
      return "nfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    case 0x65735546:
      return "fuse";
    case 0x858458F6:
      return "ramfs";
    case 0x01021997:
      return "9p";
    case 0x62656572:
      return "sysfs";
    default: {
      char buf[24];
      std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(magic));
      return buf;
    }
  }
}

}  // namespace kiln::doctor

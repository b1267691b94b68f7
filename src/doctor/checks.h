// `kiln doctor`'s checks: one function per requirement of a kilnd host, each a pure function of
// a HostView, and the report (one line per check, a fix under each failure) with its exit rule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/doctor/host_view.h"

namespace kiln::doctor {

// kFail: kilnd (as root, with its jail and instance networks) cannot work on this host.
// kWarn: it can, but something is likely to hurt or could not be tried.
enum class Verdict { kOk, kWarn, kFail };

struct CheckResult {
  std::string check;  // "kvm", "cgroup v2", ...
  Verdict verdict = Verdict::kOk;
  std::string finding;
  std::string fix;  // what to do (for kWarn and kFail)
};

inline constexpr std::uint64_t kMinFreeBytes = std::uint64_t{5} << 30;  // state dir: warn below
inline constexpr std::uint64_t kMinNofile = 65536;                      // RLIMIT_NOFILE soft limit: warn below

// /dev/kvm present and openable, and kiln-vmm's self-test runs a Linux-like guest on it.
CheckResult check_kvm(const HostView& host);
// cgroup2 mounted, its root offering cpu, memory and pids, and those enabled (or enableable)
// for children in cgroup.subtree_control: the jail makes <cgroup2>/kiln-vmm/<id>.
CheckResult check_cgroup_v2(const HostView& host);
// The namespaces kilnd's jail makes for each kiln-vmm: mount, PID, IPC, UTS, network.
CheckResult check_namespaces(const HostView& host);
// User namespaces (kiln's jail does not use them; other sandboxes on the host may).
CheckResult check_user_namespaces(const HostView& host);
// /dev/net/tun: each instance's TAP device.
CheckResult check_tun_device(const HostView& host);
// veth pairs, TAP devices, nftables: tried in a new network namespace as root, else looked up
// in /sys/module, /proc/modules and /lib/modules/<release>/modules.{builtin,dep}.
CheckResult check_net_feature(const HostView& host, NetFeature feature);
// The state dir exists (or its nearest existing parent is writable), its free space and its
// filesystem type.
CheckResult check_state_dir(const HostView& host, const std::string& state_dir);
// RLIMIT_NOFILE: every instance holds several fds in kilnd.
CheckResult check_open_files(const HostView& host);

// Every check above, in the order the report prints them.
std::vector<CheckResult> run_checks(const HostView& host, const std::string& state_dir);

// "ok    kvm: ..." per check; "  fix: ..." under each warning and failure.
std::string format_report(const std::vector<CheckResult>& results);
// 0 when no check failed, else 1.
int exit_status(const std::vector<CheckResult>& results);

// "ext4", "xfs", "tmpfs", ... for a statfs f_type; "0x..." for one not named here.
std::string filesystem_name(std::uint64_t magic);

}  // namespace kiln::doctor

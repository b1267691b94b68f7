// JailSpec: everything the jail needs to know about one VMM process (id, uid/gid, chroot,
// namespaces, cgroup limits, rlimits, files), and the checks run on it before anything exists.
// Layout and flag semantics follow Firecracker's jailer (docs/jailer.md).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::jail {

// Which cgroup hierarchy holds the limits. kAuto: v2 when a mounted cgroup2 offers every
// controller needed, v1 otherwise (this is what a hybrid host such as systemd's needs).
enum class CgroupVersion { kAuto, kV1, kV2 };

// Limits derived from a function's size; translated into the files of the chosen version.
struct CgroupLimits {
  std::optional<uint64_t> memory_bytes;    // v2 memory.max, v1 memory.limit_in_bytes
  std::optional<uint32_t> cpu_millicores;  // 1000 = one CPU: v2 cpu.max, v1 cpu.cfs_quota_us
  std::optional<uint32_t> pids_max;        // pids.max in both
};

// One raw cgroup file write, as Firecracker's `--cgroup <file>=<value>` (e.g. cpuset.cpus=0).
struct CgroupSetting {
  std::string file;
  std::string value;
};

// A host file made visible inside the jail by a bind mount (kernel, initramfs, drive, config).
struct JailFile {
  std::string host_path;  // absolute, existing
  std::string jail_path;  // absolute path as the VMM sees it, e.g. "/vmlinux"
  bool read_only = true;
  // Hand the host file to the VMM's uid/gid first (a per-instance writable drive the VMM
  // must open read-write); never set it for files shared between VMs.
  bool chown_to_vmm = false;
};

struct JailSpec {
  std::string id;         // 1-64 of [A-Za-z0-9-]
  std::string exec_file;  // the VMM binary (absolute); appears in the jail as /<file name>
  uid_t uid = 0;          // per-VM, non-zero
  gid_t gid = 0;          // per-VM, non-zero
  std::string chroot_base_dir = "/srv/jailer";
  std::string netns;      // path of a network namespace to join; empty: a new, empty one

  CgroupVersion cgroup_version = CgroupVersion::kAuto;
  std::string parent_cgroup;  // relative; empty: the exec file's name (as Firecracker)
  // Place <parent>/<id> under the caller's own cgroup of each hierarchy instead of the
  // hierarchy's root (v1 only in practice: v2 forbids controllers below a cgroup with processes).
  bool nest_under_caller_cgroup = false;
  CgroupLimits limits;
  std::vector<CgroupSetting> cgroup_settings;

  std::optional<uint64_t> rlimit_nofile;  // RLIMIT_NOFILE; Firecracker's default 2048 when unset
  std::optional<uint64_t> rlimit_fsize;   // RLIMIT_FSIZE in bytes

  std::vector<JailFile> files;
  bool dev_kvm = true;              // mknod /dev/kvm inside the jail
  bool dev_net_tun = false;         // mknod /dev/net/tun inside the jail
  bool bind_exec_libraries = true;  // a dynamic exec file gets its loader and libraries (read-only)
  bool daemonize = false;           // setsid() and stdio to /dev/null before exec
  // PR_SET_PDEATHSIG(SIGKILL): the VMM dies with the thread that spawned it. Only for a
  // single-threaded launcher such as kiln-jailer (a thread pool's worker may exit any time).
  bool kill_with_parent = false;
  // false: refuse when <chroot_base>/<exec-name>/<id> exists (a stale jail would leak old files
  // into the new VM). true: Firecracker's behaviour, files linked into the root beforehand stay.
  bool reuse_existing_dir = false;
};

inline constexpr size_t kMaxIdLength = 64;
inline constexpr uint64_t kDefaultNoFile = 2048;

// Firecracker's id rule: 1-64 characters, alphanumeric or '-'.
Status validate_id(std::string_view id);
// A path string: non-empty, absolute, no NUL, no "." or ".." components, no empty component.
Status validate_path_string(std::string_view what, std::string_view path);
// Every field of the spec, including that the host paths exist and have the right type.
// Creates nothing; spawn() runs it before it creates anything.
Status validate_spec(const JailSpec& spec);

std::string exec_name(const JailSpec& spec);   // last component of exec_file
std::string jail_dir(const JailSpec& spec);    // <chroot_base>/<exec-name>/<id>
std::string chroot_dir(const JailSpec& spec);  // <jail_dir>/root: "/" for the VMM
std::string parent_cgroup(const JailSpec& spec);  // parent_cgroup or exec-name

}  // namespace kiln::jail

// VmmBackendOptions: how kilnd's real backend runs kiln-vmm (binaries, boot files, timeouts,
// snapshots and parked VMMs, the jail), as kilnd_main fills it from its flags.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::net {
class InstanceNetworks;
}

namespace kiln::kilnd::pool {

struct VmmBackendOptions {
  std::string vmm_path;  // kiln-vmm binary
  std::string kernel_path;  // guest kernel (vmlinux / bzImage)
  std::string initrd_path;  // initramfs holding kiln-init
  std::string boot_args = "console=ttyS0 reboot=k panic=1 quiet";
  std::string run_dir;  // per-VM directories <run_dir>/<instance id>/
  std::uint32_t guest_cid = 3;
  std::vector<std::string> extra_vmm_args;  // appended to kiln-vmm's argv
  std::chrono::milliseconds api_timeout{30000};  // spawn to a configured, started VM (slow under nesting)
  std::chrono::milliseconds boot_timeout{60000};  // InstanceStart to the agent's ready event
  // A hybrid-vsock connect (invocations, launch spec, identity); invocations are bounded by
  // their own deadline too. Generous: under load a slow guest is not a dead one.
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds check_timeout{5000};
  std::chrono::milliseconds stop_grace{2000};
  std::string snapshot_dir;  // empty: no snapshots, every instance cold-boots
  // With snapshots: keep one kiln-vmm per function spawned ahead (jailed, its snapshot bound,
  // API up) for the function's next instance, so a restore skips the process start.
  bool park_vmms = true;

  // The jail: kilnd turns it on by default when it runs as root (`--jail on|off`).
  bool jail = false;
  std::string jail_base;  // chroot base; empty: <run_dir>/../jail (beside run/ in the state dir)
  // Instance n runs as uid = gid = jail_uid_base + n % jail_uid_count.
  std::uint32_t jail_uid_base = 60000;
  std::uint32_t jail_uid_count = 5000;
  std::uint32_t jail_memory_margin_mib = 256;  // cgroup memory = guest RAM + this (VMM, page cache)
  std::uint32_t jail_pids_margin = 32;  // pids.max = vCPUs + this (main, API, loop threads)
  std::uint64_t jail_nofile = 2048;  // RLIMIT_NOFILE; RLIMIT_FSIZE = guest RAM + margin (snapshot file)
  // Instance networks (jailed only): each instance with InstanceSpec::network gets its own
  // namespace, TAP and egress rules. Null: instances have loopback only.
  std::shared_ptr<net::InstanceNetworks> networks;
  // Lazy root disks (InstanceSpec::rootfs_index_digest): the chunks the image's instances read
  // so far, recorded with a snapshot of one of them (SNAPSHOT/prefetch), and fetching such a
  // list ahead when a snapshot is about to be restored (its chunks may not be on this host).
  std::function<std::vector<std::uint32_t>(const std::string& index_digest)> lazy_read_order;
  std::function<void(const std::string& index_digest, std::vector<std::uint32_t> chunks)> lazy_prefetch;
};

}  // namespace kiln::kilnd::pool

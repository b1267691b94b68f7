// VmmBackend: the real VmBackend. Per instance it creates a run dir, listens for the agent's
// event connection (<vsock.sock>_10001), spawns kiln-vmm --api-sock, configures it over the
// Firecracker-compatible API (machine-config, boot-source, drives, vsock, InstanceStart),
// sends kiln-init the launch spec on control port 10000 when the agent says hello, and turns
// the agent's events (ready, log, exit) and the VMM's own exit into InstanceCallbacks.
// With a snapshot dir: the first instance of a VM shape is paused once ready and snapshotted
// (PUT /snapshot/create), later ones start with PUT /snapshot/load and get their own identity
// (instance id, hostname, wall clock, fresh entropy) over the control port; a snapshot that
// does not load is set aside and that instance cold-boots.
// With `jail` on, each kiln-vmm runs in src/jail's jail (namespaces, pivot_root, cgroups,
// per-VM uid/gid): its config names jail paths, its sockets live under the jail's root.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/jail/jail_spec.h"
#include "src/pool/snapshot_store.h"
#include "src/pool/vm_backend.h"

namespace kiln::kilnd::pool {

class Vm;  // one microVM (vmm_backend.cc)

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

  // The jail (issue 8): kilnd turns it on by default when it runs as root (`--jail on|off`).
  bool jail = false;
  std::string jail_base;  // chroot base; empty: <run_dir>/../jail (beside run/ in the state dir)
  // Instance n runs as uid = gid = jail_uid_base + n % jail_uid_count.
  std::uint32_t jail_uid_base = 60000;
  std::uint32_t jail_uid_count = 5000;
  std::uint32_t jail_memory_margin_mib = 256;  // cgroup memory = guest RAM + this (VMM, page cache)
  std::uint32_t jail_pids_margin = 32;  // pids.max = vCPUs + this (main, API, loop threads)
  std::uint64_t jail_nofile = 2048;  // RLIMIT_NOFILE; RLIMIT_FSIZE = guest RAM + margin (snapshot file)
};

// <run_dir>/../jail, or options.jail_base when set.
std::string jail_base_dir(const VmmBackendOptions& options);

// The jail of the instance with sequence number `index`: kernel, initramfs and rootfs bound
// read-only as /vmlinux, /initrd, /rootfs.img; limits from its memory and vCPUs.
jail::JailSpec vmm_jail_spec(const VmmBackendOptions& options, const InstanceSpec& spec, std::uint64_t index);

class VmmBackend : public VmBackend {
 public:
  VmmBackend(asio::io_context& io, VmmBackendOptions options);
  ~VmmBackend() override;  // kills the parked VMMs
  VmmBackend(const VmmBackend&) = delete;
  VmmBackend& operator=(const VmmBackend&) = delete;
  // Adopts the VMM parked for `spec.instance_id` when there is one (restore = load + identity).
  std::unique_ptr<VmInstance> start(const InstanceSpec& spec, InstanceCallbacks callbacks) override;
  // Parks a kiln-vmm for `next` once a snapshot for its key exists (now, or when an instance
  // commits one); replaces the owner's parked VMM.
  void prepare(std::uint64_t owner, const InstanceSpec& next) override;
  void forget(std::uint64_t owner) override;

  // Restart recovery: kills kiln-vmm processes an earlier kilnd left running (found through
  // <run_dir>/*/vmm.pid, checked against /proc/<pid>/cmdline), removes their run dirs, and
  // removes leftover jails (<jail_base>/<exec-name>/<id> and their cgroups; empty jail_base:
  // <run_dir>/../jail).
  static std::vector<std::string> reap_stale(const std::string& run_dir, const std::string& jail_base = "");

  // Snapshot counters (all zero without a snapshot dir).
  SnapshotStats snapshot_stats() const override;

 private:
  asio::io_context& io_;
  VmmBackendOptions options_;
  std::shared_ptr<SnapshotStore> snapshots_;
  std::string snapshot_error_;  // why snapshots are off although a dir was given
  std::uint64_t next_index_ = 0;  // instance sequence number (jail uid/gid)
  struct Parked {
    InstanceSpec spec;  // the instance it is for
    std::string key;  // its snapshot key
    std::shared_ptr<Vm> vm;  // null until a snapshot for `key` exists
  };
  std::map<std::uint64_t, Parked> parked_;  // by pool (prepare's owner)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // Vm callbacks check it
  std::shared_ptr<asio::thread_pool> spawner_ = std::make_shared<asio::thread_pool>(1);  // jail building

  std::shared_ptr<Vm> make_vm(const InstanceSpec& spec, InstanceCallbacks callbacks);
  // Parks a VMM for every entry waiting on `key` ("": on any key) whose snapshot exists, unless
  // an instance is starting.
  void park_waiting(const std::string& key);
  // Wraps an instance's callbacks so that it counts in starting_ until ready, ended or dropped.
  InstanceCallbacks track_start(InstanceCallbacks cb);
  std::size_t starting_ = 0;  // instances between start() and ready/ended/dropped
};

}  // namespace kiln::kilnd::pool

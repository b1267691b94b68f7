// VmmBackend: the real VmBackend. Per instance it creates a run dir, listens for the agent's
// event connection (<vsock.sock>_10001), spawns kiln-vmm --api-sock, configures it over the
// Firecracker-compatible API (machine-config, boot-source, drives, vsock, InstanceStart),
// sends kiln-init the launch spec on control port 10000 when the agent says hello, and turns
// the agent's events (ready, log, exit) and the VMM's own exit into InstanceCallbacks.
// With a snapshot dir: the first instance of a VM shape is paused once ready and snapshotted
// (PUT /snapshot/create), later ones start with PUT /snapshot/load and get their own identity
// (instance id, hostname, wall clock, fresh entropy) over the control port; a snapshot that
// does not load is set aside and that instance cold-boots.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/pool/snapshot_store.h"
#include "src/pool/vm_backend.h"

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
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds check_timeout{5000};
  std::chrono::milliseconds stop_grace{2000};
  std::string snapshot_dir;  // empty: no snapshots, every instance cold-boots
};

class VmmBackend : public VmBackend {
 public:
  VmmBackend(asio::io_context& io, VmmBackendOptions options);
  std::unique_ptr<VmInstance> start(const InstanceSpec& spec, InstanceCallbacks callbacks) override;

  // Restart recovery: kills kiln-vmm processes an earlier kilnd left running (found through
  // <run_dir>/*/vmm.pid, checked against /proc/<pid>/cmdline) and removes their run dirs.
  static std::vector<std::string> reap_stale(const std::string& run_dir);

  // Snapshot counters (all zero without a snapshot dir).
  SnapshotStats snapshot_stats() const override;

 private:
  asio::io_context& io_;
  VmmBackendOptions options_;
  std::shared_ptr<SnapshotStore> snapshots_;
  std::string snapshot_error_;  // why snapshots are off although a dir was given
};

}  // namespace kiln::kilnd::pool

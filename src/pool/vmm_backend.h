// VmmBackend: the real VmBackend. Per instance it creates a run dir, listens for the agent's
// event connection (<vsock.sock>_10001), spawns kiln-vmm --api-sock, configures it over the
// Firecracker-compatible API (machine-config, boot-source, drives, vsock, InstanceStart),
// sends kiln-init the launch spec on control port 10000 when the agent says hello, and turns
// the agent's events (ready, log, exit) and the VMM's own exit into InstanceCallbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

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
};

class VmmBackend : public VmBackend {
 public:
  VmmBackend(asio::io_context& io, VmmBackendOptions options);
  std::unique_ptr<VmInstance> start(const InstanceSpec& spec, InstanceCallbacks callbacks) override;

  // Restart recovery: kills kiln-vmm processes an earlier kilnd left running (found through
  // <run_dir>/*/vmm.pid, checked against /proc/<pid>/cmdline) and removes their run dirs.
  static std::vector<std::string> reap_stale(const std::string& run_dir);

 private:
  asio::io_context& io_;
  VmmBackendOptions options_;
};

}  // namespace kiln::kilnd::pool

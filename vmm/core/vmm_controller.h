// VmmController: the API's view of the VMM process. Builds and starts the Vmm on InstanceStart
// (or from a snapshot on PUT /snapshot/load), pauses, resumes and snapshots it, and lets main()
// wait for the VM's end.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "vmm/api/vm_controller.h"
#include "vmm/core/vmm.h"

namespace kiln::vmm {

class VmmController : public api::VmController {
 public:
  explicit VmmController(Vmm::Options options) : options_(options) {}

  Status start_instance(const config::VmConfig& config) override;
  Status send_ctrl_alt_del() override;
  Status pause() override;
  Status resume() override;
  Status create_snapshot(const config::SnapshotCreate& params) override;
  Result<config::VmConfig> load_snapshot(const config::SnapshotLoad& params) override;
  Status check_network_interface(const config::NetworkInterface& iface) override;
  Status update_network_interface(const std::string& iface_id, const std::optional<config::RateLimiterConfig>& rx,
                                  const std::optional<config::RateLimiterConfig>& tx) override;
  nlohmann::json metrics() override;

  // Blocks until a VM has been started and has ended, or shutdown() was called; returns the
  // process exit code.
  int wait_for_exit();
  // Ends the VM (if any) and releases wait_for_exit().
  void shutdown(VmExit code);

 private:
  Vmm::Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  UniqueFd serial_file_;  // declared before vmm_ so the Vmm (its writer) is destroyed first
  std::unique_ptr<Vmm> vmm_;
  bool shutdown_ = false;
  VmExit shutdown_code_ = VmExit::kGuestShutdown;
};

}  // namespace kiln::vmm

// VmmController implementation.
#include "vmm/core/vmm_controller.h"

#include <fcntl.h>

#include "vmm/devices/tap.h"

namespace kiln::vmm {

Status VmmController::start_instance(const config::VmConfig& config) {
  std::lock_guard lock(mu_);
  if (vmm_) return make_error("the microVM is already running");
  Vmm::Options options = options_;
  UniqueFd serial_file;
  if (config.serial && config.serial->serial_out_path) {
    // Non-blocking: a slow reader must cost dropped console bytes, never a stalled vCPU.
    serial_file.reset(::open(config.serial->serial_out_path->c_str(),
                             O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0600));
    if (!serial_file) return errno_error("open serial output " + *config.serial->serial_out_path);
    options.serial_out_fd = serial_file.get();
  }
  KILN_ASSIGN_OR_RETURN(auto vmm, Vmm::build_for_boot(config, options));
  KILN_TRY(vmm->start());
  vmm_ = std::move(vmm);
  serial_file_ = std::move(serial_file);
  cv_.notify_all();
  return ok_status();
}

Status VmmController::send_ctrl_alt_del() {
  std::lock_guard lock(mu_);
  if (!vmm_) return make_error("the microVM is not running");
  return vmm_->send_ctrl_alt_del();
}

Status VmmController::pause() {
  std::lock_guard lock(mu_);
  if (!vmm_) return make_error("the microVM is not running");
  return vmm_->pause();
}

Status VmmController::resume() {
  std::lock_guard lock(mu_);
  if (!vmm_) return make_error("the microVM is not running");
  return vmm_->resume();
}

Status VmmController::create_snapshot(const config::SnapshotCreate& params) {
  std::lock_guard lock(mu_);
  if (!vmm_) return make_error("the microVM is not running");
  return vmm_->create_snapshot(params);
}

Result<config::VmConfig> VmmController::load_snapshot(const config::SnapshotLoad& params) {
  std::lock_guard lock(mu_);
  if (vmm_) return make_error("a microVM is already running");
  KILN_ASSIGN_OR_RETURN(auto vmm, Vmm::build_from_snapshot(params, options_));
  KILN_TRY(vmm->start());
  config::VmConfig config = vmm->config();
  vmm_ = std::move(vmm);
  cv_.notify_all();
  return config;
}

Status VmmController::check_network_interface(const config::NetworkInterface& iface) {
  // Opened and closed again: InstanceStart opens it for good. A TAP that does not exist is
  // created by a caller allowed to (CAP_NET_ADMIN) and vanishes with the close.
  KILN_ASSIGN_OR_RETURN(auto tap, devices::Tap::open(iface.host_dev_name));
  return ok_status();
}

Status VmmController::update_network_interface(const std::string& iface_id,
                                              const std::optional<config::RateLimiterConfig>& rx,
                                              const std::optional<config::RateLimiterConfig>& tx) {
  std::lock_guard lock(mu_);
  if (!vmm_) return make_error("the microVM is not running");
  return vmm_->update_network_interface(iface_id, rx, tx);
}

nlohmann::json VmmController::metrics() {
  nlohmann::json j = api::VmController::metrics();  // process-wide counters (API, logger)
  std::lock_guard lock(mu_);
  if (vmm_) j["devices"] = vmm_->metrics();
  return j;
}

int VmmController::wait_for_exit() {
  Vmm* vmm = nullptr;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return vmm_ != nullptr || shutdown_; });
    if (!vmm_) return static_cast<int>(shutdown_code_);
    vmm = vmm_.get();
  }
  return vmm->wait();
}

void VmmController::shutdown(VmExit code) {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  shutdown_code_ = code;
  if (vmm_) vmm_->stop(code);
  cv_.notify_all();
}

}  // namespace kiln::vmm

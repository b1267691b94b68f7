// The Firecracker-compatible REST API as a pure function (method, target, body) ->
// (status, body) over a VmController, so it is unit-tested and fuzzed without sockets.
// Owns the pre-boot VmConfig and the lifecycle state machine. handle(), set_config() and
// start_instance() are serialized by a mutex, so main may boot a --config-file while the
// server thread already answers requests; controller calls never overlap.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "vmm/api/vm_controller.h"
#include "vmm/api/vm_state_machine.h"
#include "vmm/config/vm_config.h"
#include "vmm/logging/metrics.h"

namespace kiln::vmm::api {

// kiln-vmm's version, reported as vmm_version by GET / and by GET /version.
std::string_view vmm_version();

struct ApiResponse {
  int status = 200;
  std::string body;  // empty for 204

  static ApiResponse no_content() { return ApiResponse{204, {}}; }
  static ApiResponse json(int status, const nlohmann::json& body);
  // Firecracker's error body: {"fault_message": "..."}.
  static ApiResponse fault(int status, std::string_view message);
};

struct RouterOptions {
  std::string instance_id = "anonymous-instance";
  // API request counters ("api_server.requests", "api_server.errors", ...) go here.
  logging::MetricsRegistry* metrics = &logging::MetricsRegistry::global();
};

class ApiRouter {
 public:
  ApiRouter(VmController& controller, RouterOptions options);

  // Handles one request. `target` is the request target ("/drives/rootfs", a query string
  // is ignored); an empty `body` means the request had none. Never throws.
  ApiResponse handle(std::string_view method, std::string_view target, std::string_view body);

  // --config-file: installs a parsed configuration (pre-boot only) ...
  Status set_config(config::VmConfig vm);
  // ... and boots it, exactly as PUT /actions {"action_type": "InstanceStart"} would.
  Status start_instance();

  // Snapshots for main and tests (taken under the mutex).
  config::VmConfig config() const;
  InstanceState state() const;
  bool boot_resources_configured() const;

 private:
  Status start_instance_locked();
  ApiResponse dispatch(std::string_view method, std::string_view path, std::string_view body);
  ApiResponse get_instance_info() const;
  ApiResponse put_actions(const nlohmann::json& body);
  ApiResponse put_boot_source(const nlohmann::json& body);
  ApiResponse put_machine_config(const nlohmann::json& body);
  ApiResponse patch_machine_config(const nlohmann::json& body);
  ApiResponse put_drive(std::string_view id, const nlohmann::json& body);
  ApiResponse put_network_interface(std::string_view id, const nlohmann::json& body);
  ApiResponse patch_network_interface(std::string_view id, const nlohmann::json& body);
  ApiResponse put_vsock(const nlohmann::json& body);
  ApiResponse put_entropy(const nlohmann::json& body);
  ApiResponse put_serial(const nlohmann::json& body);
  ApiResponse put_logger(const nlohmann::json& body);
  ApiResponse put_metrics(const nlohmann::json& body);
  ApiResponse patch_vm(const nlohmann::json& body);
  ApiResponse put_snapshot_create(const nlohmann::json& body);
  ApiResponse put_snapshot_load(const nlohmann::json& body);

  mutable std::mutex mu_;
  VmController& controller_;
  RouterOptions options_;
  config::VmConfig config_;
  VmStateMachine state_;
};

}  // namespace kiln::vmm::api

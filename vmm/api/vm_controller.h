// The seam between the API layer and the VMM core: the router validates requests and owns
// the pre-boot configuration; the core implements these actions. Every call is made from
// the API server's thread (or main's thread before the server starts), one at a time.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "vmm/config/snapshot_config.h"
#include "vmm/config/vm_config.h"

namespace kiln::vmm::api {

class VmController {
 public:
  virtual ~VmController() = default;

  // InstanceStart: build the VM from `config` and run it. The router has already checked
  // the state (called at most once, never after load_snapshot) and config::validate_for_start.
  // On error the router stays in "Not started", so the client may fix the config and retry:
  // undo whatever was built.
  virtual Status start_instance(const config::VmConfig& config) = 0;

  // SendCtrlAltDel: inject the i8042 Ctrl+Alt+Del key sequence (VM started).
  virtual Status send_ctrl_alt_del() = 0;

  // PATCH /network-interfaces/{iface_id} (VM started: running or paused; `iface_id` is one of
  // the VM's interfaces). For each direction: nullopt leaves its limiter as it is; a value is
  // the direction's whole new limiter (the router has merged the request into the current one;
  // a value with neither bucket lifts the limit). On error nothing may have changed.
  virtual Status update_network_interface(const std::string& iface_id,
                                          const std::optional<config::RateLimiterConfig>& rx,
                                          const std::optional<config::RateLimiterConfig>& tx) = 0;

  // PUT /network-interfaces (pre-boot): whether the host device can be used, as Firecracker
  // checks it when the interface is added (the default accepts; kiln-vmm opens the TAP).
  virtual Status check_network_interface(const config::NetworkInterface&) { return ok_status(); }

  // PATCH /vm: called only on an actual change (Running -> Paused, Paused -> Running).
  virtual Status pause() = 0;
  virtual Status resume() = 0;

  // PUT /snapshot/create: called only while Paused.
  virtual Status create_snapshot(const config::SnapshotCreate& params) = 0;

  // PUT /snapshot/load: called only on a fresh VMM (nothing but logger/metrics configured).
  // Returns the restored configuration, which GET /vm/config reports from then on
  // (boot-source may be left empty, as in Firecracker). If params.resume_vm, the VM must be
  // running when this returns; otherwise it stays paused.
  virtual Result<config::VmConfig> load_snapshot(const config::SnapshotLoad& params) = 0;

  // Defaults act on logging::Logger::instance() and logging::MetricsRegistry::global();
  // override only to add behaviour.
  // PUT /logger (pre-boot): output path, level, origin display.
  virtual Status configure_logger(const config::LoggerConfig& logger);
  // PUT /metrics (pre-boot): opens the metrics file/fifo.
  virtual Status configure_metrics(const config::MetricsConfig& metrics);
  // Action FlushMetrics: append the current metrics as one JSON line to the metrics file.
  virtual Status flush_metrics();
  // GET /metrics (kiln addition): the counters as JSON.
  virtual nlohmann::json metrics();
};

}  // namespace kiln::vmm::api

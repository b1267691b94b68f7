// A VmController that records calls and fails on demand, for router and server tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vmm/api/vm_controller.h"

namespace kiln::vmm::api {

class FakeController : public VmController {
 public:
  Status start_instance(const config::VmConfig& c) override {
    calls.push_back("start");
    started_with = c;
    return next(fail_start);
  }
  Status send_ctrl_alt_del() override {
    calls.push_back("ctrl_alt_del");
    return ok_status();
  }
  Status pause() override {
    calls.push_back("pause");
    return next(fail_pause);
  }
  Status resume() override {
    calls.push_back("resume");
    return ok_status();
  }
  Status create_snapshot(const config::SnapshotCreate& p) override {
    calls.push_back("create_snapshot");
    snapshot_created = p;
    return next(fail_snapshot);
  }
  Result<config::VmConfig> load_snapshot(const config::SnapshotLoad& p) override {
    calls.push_back("load_snapshot");
    snapshot_loaded = p;
    if (fail_load) return make_error("bad magic");
    return restored;
  }
  Status update_network_interface(const std::string& iface_id, const std::optional<config::RateLimiterConfig>& rx,
                                  const std::optional<config::RateLimiterConfig>& tx) override {
    calls.push_back("update_network_interface");
    updated_iface = iface_id;
    updated_rx = rx;
    updated_tx = tx;
    return next(fail_update);
  }
  Status configure_logger(const config::LoggerConfig&) override {
    calls.push_back("configure_logger");
    return ok_status();
  }
  Status configure_metrics(const config::MetricsConfig&) override {
    calls.push_back("configure_metrics");
    return ok_status();
  }
  Status flush_metrics() override {
    calls.push_back("flush_metrics");
    return next(fail_flush);
  }
  nlohmann::json metrics() override { return nlohmann::json{{"block_rootfs", {{"read_count", 7}}}}; }

  size_t count(const std::string& name) const {
    size_t n = 0;
    for (const auto& c : calls) n += (c == name);
    return n;
  }

  std::vector<std::string> calls;
  config::VmConfig started_with;
  config::SnapshotCreate snapshot_created;
  config::SnapshotLoad snapshot_loaded;
  config::VmConfig restored;
  std::string updated_iface;
  std::optional<config::RateLimiterConfig> updated_rx, updated_tx;
  bool fail_start = false;
  bool fail_pause = false;
  bool fail_snapshot = false;
  bool fail_load = false;
  bool fail_flush = false;
  bool fail_update = false;

 private:
  static Status next(bool fail) { return fail ? Status(make_error("injected failure")) : ok_status(); }
};

}  // namespace kiln::vmm::api

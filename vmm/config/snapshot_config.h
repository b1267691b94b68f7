// Request bodies of Firecracker's snapshot API: PUT /snapshot/create, PUT /snapshot/load
// (SnapshotCreateParams, SnapshotLoadParams, MemoryBackend, NetworkOverride) and PATCH /vm
// (Vm), and how a load's host-path overrides change the snapshot's configuration.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kiln::vmm::config {

// Only "Full" snapshots exist in kiln (Firecracker also has "Diff").
enum class SnapshotType { kFull };

struct SnapshotCreate {
  SnapshotType snapshot_type = SnapshotType::kFull;
  std::string snapshot_path;
  std::string mem_file_path;
  bool operator==(const SnapshotCreate&) const = default;
};

// Only the "File" memory backend exists in kiln (Firecracker also has "Uffd").
enum class MemBackendType { kFile };

struct MemBackend {
  MemBackendType backend_type = MemBackendType::kFile;
  std::string backend_path;
  bool operator==(const MemBackend&) const = default;
};

// kiln extension (issue 7: host paths can be overridden at load).
struct DriveOverride {
  std::string drive_id;
  std::string path_on_host;
  bool operator==(const DriveOverride&) const = default;
};

// Firecracker's NetworkOverride: the TAP a restored interface opens instead of the saved one.
struct NetworkOverride {
  std::string iface_id;
  std::string host_dev_name;
  bool operator==(const NetworkOverride&) const = default;
};

struct SnapshotLoad {
  std::string snapshot_path;
  // Exactly one of mem_backend / the deprecated mem_file_path is given in the request;
  // parse_snapshot_load() folds mem_file_path into mem_backend, so this is always set.
  MemBackend mem_backend;
  bool used_deprecated_mem_file_path = false;
  bool resume_vm = false;
  // enable_diff_snapshots (deprecated) and track_dirty_pages both land here.
  bool track_dirty_pages = false;
  bool clock_realtime = false;
  std::optional<std::string> vsock_uds_path_override;  // Firecracker's vsock_override.uds_path
  std::vector<DriveOverride> drive_overrides;          // kiln's drive_overrides
  std::vector<NetworkOverride> network_overrides;      // Firecracker's network_overrides
  bool operator==(const SnapshotLoad&) const = default;
};

// PATCH /vm {"state": "Paused" | "Resumed"}
enum class VmStateRequest { kPaused, kResumed };

Result<SnapshotCreate> parse_snapshot_create(const nlohmann::json& j);
Result<SnapshotLoad> parse_snapshot_load(const nlohmann::json& j);
Result<VmStateRequest> parse_vm_state(const nlohmann::json& j);

nlohmann::json to_json(const SnapshotCreate& s);
nlohmann::json to_json(const SnapshotLoad& s);

struct VmConfig;
// Applies a load's overrides (vsock uds_path, drive paths, TAP names) to the configuration
// read from the snapshot: host paths may differ between the machine that took it and this
// one. An override for a device the snapshot lacks is an error; on error `vm` is unchanged.
Status apply_load_overrides(VmConfig& vm, const SnapshotLoad& load);

}  // namespace kiln::vmm::config

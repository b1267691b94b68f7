// Parsing of the snapshot request bodies (Firecracker swagger: SnapshotCreateParams,
// SnapshotLoadParams, MemoryBackend, VsockOverride, NetworkOverride, Vm) and the load overrides.
#include "vmm/config/snapshot_config.h"

#include <string_view>
#include <utility>

#include "common/json/field_reader.h"
#include "vmm/config/vm_config.h"

namespace kiln::vmm::config {

using nlohmann::json;
using kiln::json::member_path;
using kiln::json::ObjectReader;

Result<SnapshotCreate> parse_snapshot_create(const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "", {"snapshot_type", "snapshot_path", "mem_file_path",
                                                          "version"}));
  SnapshotCreate s;
  KILN_ASSIGN_OR_RETURN(s.snapshot_path, r.req_string("snapshot_path"));
  KILN_TRY(check_path_string("snapshot_path", s.snapshot_path));
  KILN_ASSIGN_OR_RETURN(s.mem_file_path, r.req_string("mem_file_path"));
  KILN_TRY(check_path_string("mem_file_path", s.mem_file_path));
  KILN_ASSIGN_OR_RETURN(auto type, r.opt_string("snapshot_type"));
  if (type && *type != "Full") {
    if (*type == "Diff") return make_error("snapshot_type: Diff snapshots are not supported by kiln-vmm");
    return make_error("snapshot_type: must be \"Full\" or \"Diff\", got \"" + *type + "\"");
  }
  if (s.snapshot_path == s.mem_file_path) {
    return make_error("mem_file_path: must differ from snapshot_path");
  }
  // "version" was removed from Firecracker's API; refused like an unknown field.
  if (r.opt_value("version") != nullptr) {
    return make_error("version: no longer supported (the snapshot format version is kiln-vmm's)");
  }
  KILN_TRY(r.check_unknown());
  return s;
}

json to_json(const SnapshotCreate& s) {
  return json{{"snapshot_type", "Full"}, {"snapshot_path", s.snapshot_path}, {"mem_file_path", s.mem_file_path}};
}

namespace {
Result<MemBackend> parse_mem_backend(const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "mem_backend", {"backend_type", "backend_path"}));
  MemBackend b;
  KILN_ASSIGN_OR_RETURN(auto type, r.req_string("backend_type"));
  if (type == "Uffd") return make_error("mem_backend.backend_type: Uffd is not supported by kiln-vmm");
  if (type != "File") {
    return make_error("mem_backend.backend_type: must be \"File\" or \"Uffd\", got \"" + type + "\"");
  }
  KILN_ASSIGN_OR_RETURN(b.backend_path, r.req_string("backend_path"));
  KILN_TRY(check_path_string("mem_backend.backend_path", b.backend_path));
  KILN_TRY(r.check_unknown());
  return b;
}

// One overrides array, [{"<id>": ..., "<value>": ...}]: at most `max_entries`, ids valid and
// unique, each value checked by `check_value`.
template <typename Override>
Status read_overrides(const ObjectReader& r, std::string_view key, size_t max_entries,
                      std::pair<std::string_view, std::string Override::*> id,
                      std::pair<std::string_view, std::string Override::*> value,
                      Status (*check_value)(const std::string& field, const std::string& value),
                      std::vector<Override>& out) {
  KILN_ASSIGN_OR_RETURN(const json* list, r.opt_array(key));
  if (list == nullptr) return ok_status();
  if (list->size() > max_entries) {
    return make_error(std::string(key) + ": at most " + std::to_string(max_entries) + " entries");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string at = kiln::json::element_path(key, i);
    KILN_ASSIGN_OR_RETURN(auto er, ObjectReader::make((*list)[i], at, {std::string(id.first), std::string(value.first)}));
    Override o;
    KILN_ASSIGN_OR_RETURN(o.*id.second, er.req_string(id.first));
    KILN_TRY(check_resource_id(er.field(id.first), o.*id.second));
    KILN_ASSIGN_OR_RETURN(o.*value.second, er.req_string(value.first));
    KILN_TRY(check_value(er.field(value.first), o.*value.second));
    KILN_TRY(er.check_unknown());
    for (const Override& seen : out) {
      if (seen.*id.second == o.*id.second) {
        return er.error(id.first, "duplicate " + std::string(id.first) + " \"" + o.*id.second + "\"");
      }
    }
    out.push_back(std::move(o));
  }
  return ok_status();
}

}  // namespace

Result<SnapshotLoad> parse_snapshot_load(const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "", {"snapshot_path", "mem_backend", "mem_file_path",
                                                          "enable_diff_snapshots", "track_dirty_pages",
                                                          "resume_vm", "network_overrides", "vsock_override",
                                                          "clock_realtime", "drive_overrides"}));
  SnapshotLoad s;
  KILN_ASSIGN_OR_RETURN(s.snapshot_path, r.req_string("snapshot_path"));
  KILN_TRY(check_path_string("snapshot_path", s.snapshot_path));

  const json* backend = r.opt_value("mem_backend");
  KILN_ASSIGN_OR_RETURN(auto mem_file, r.opt_string("mem_file_path"));
  if (backend != nullptr && mem_file) {
    return make_error("mem_backend: only one of mem_backend and mem_file_path may be given");
  }
  if (backend == nullptr && !mem_file) {
    return make_error("mem_backend: missing required field (or the deprecated mem_file_path)");
  }
  if (backend != nullptr) {
    KILN_ASSIGN_OR_RETURN(s.mem_backend, parse_mem_backend(*backend));
  } else {
    KILN_TRY(check_path_string("mem_file_path", *mem_file));
    s.mem_backend.backend_path = *mem_file;
    s.used_deprecated_mem_file_path = true;
  }

  KILN_ASSIGN_OR_RETURN(auto diff, r.opt_bool("enable_diff_snapshots"));
  KILN_ASSIGN_OR_RETURN(auto dirty, r.opt_bool("track_dirty_pages"));
  s.track_dirty_pages = diff.value_or(false) || dirty.value_or(false);
  KILN_ASSIGN_OR_RETURN(auto resume, r.opt_bool("resume_vm"));
  s.resume_vm = resume.value_or(false);
  KILN_ASSIGN_OR_RETURN(auto realtime, r.opt_bool("clock_realtime"));
  s.clock_realtime = realtime.value_or(false);

  KILN_TRY(read_overrides(r, "network_overrides", kMaxNetworkInterfaces, {"iface_id", &NetworkOverride::iface_id},
                          {"host_dev_name", &NetworkOverride::host_dev_name}, check_host_dev_name,
                          s.network_overrides));
  if (const json* vo = r.opt_value("vsock_override")) {
    KILN_ASSIGN_OR_RETURN(auto vr, ObjectReader::make(*vo, "vsock_override", {"uds_path"}));
    KILN_ASSIGN_OR_RETURN(auto uds, vr.req_string("uds_path"));
    KILN_TRY(check_path_string("vsock_override.uds_path", uds));
    KILN_TRY(vr.check_unknown());
    s.vsock_uds_path_override = std::move(uds);
  }
  KILN_TRY(read_overrides(r, "drive_overrides", kMaxDrives, {"drive_id", &DriveOverride::drive_id},
                          {"path_on_host", &DriveOverride::path_on_host}, check_path_string, s.drive_overrides));
  KILN_TRY(r.check_unknown());
  return s;
}

json to_json(const SnapshotLoad& s) {
  json out{{"snapshot_path", s.snapshot_path},
           {"mem_backend", {{"backend_type", "File"}, {"backend_path", s.mem_backend.backend_path}}},
           {"track_dirty_pages", s.track_dirty_pages},
           {"resume_vm", s.resume_vm},
           {"clock_realtime", s.clock_realtime}};
  if (s.vsock_uds_path_override) out["vsock_override"] = {{"uds_path", *s.vsock_uds_path_override}};
  if (!s.drive_overrides.empty()) {
    json arr = json::array();
    for (const auto& o : s.drive_overrides) arr.push_back({{"drive_id", o.drive_id}, {"path_on_host", o.path_on_host}});
    out["drive_overrides"] = std::move(arr);
  }
  if (!s.network_overrides.empty()) {
    json arr = json::array();
    for (const auto& o : s.network_overrides) arr.push_back({{"iface_id", o.iface_id}, {"host_dev_name", o.host_dev_name}});
    out["network_overrides"] = std::move(arr);
  }
  return out;
}

namespace {
template <typename T>
T* find_by_id(std::vector<T>& items, std::string T::*id, const std::string& want) {
  for (T& item : items) {
    if (item.*id == want) return &item;
  }
  return nullptr;
}
}  // namespace

Status apply_load_overrides(VmConfig& vm, const SnapshotLoad& load) {
  VmConfig next = vm;
  if (load.vsock_uds_path_override) {
    if (!next.vsock) return make_error("vsock_override given but the snapshot has no vsock device");
    next.vsock->uds_path = *load.vsock_uds_path_override;
  }
  for (const DriveOverride& o : load.drive_overrides) {
    Drive* d = find_by_id(next.drives, &Drive::drive_id, o.drive_id);
    if (d == nullptr) return make_error("drive override for unknown drive '" + o.drive_id + "'");
    d->path_on_host = o.path_on_host;
  }
  for (const NetworkOverride& o : load.network_overrides) {
    NetworkInterface* n = find_by_id(next.network_interfaces, &NetworkInterface::iface_id, o.iface_id);
    if (n == nullptr) return make_error("network override for unknown network interface '" + o.iface_id + "'");
    n->host_dev_name = o.host_dev_name;
  }
  // Two interfaces moved onto one TAP would share it.
  auto nets = check_network_interfaces(next.network_interfaces);
  if (!nets.ok()) return nets.error().wrap("network_overrides");
  vm = std::move(next);
  return ok_status();
}

Result<VmStateRequest> parse_vm_state(const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "", {"state"}));
  KILN_ASSIGN_OR_RETURN(auto state, r.req_string("state"));
  KILN_TRY(r.check_unknown());
  if (state == "Paused") return VmStateRequest::kPaused;
  if (state == "Resumed") return VmStateRequest::kResumed;
  return make_error("state: must be \"Paused\" or \"Resumed\", got \"" + state + "\"");
}

}  // namespace kiln::vmm::config

// Parsing of the snapshot request bodies (Firecracker swagger: SnapshotCreateParams,
// SnapshotLoadParams, MemoryBackend, VsockOverride, Vm).
#include "vmm/config/snapshot_config.h"

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

  if (const json* nets = r.opt_value("network_overrides")) {
    if (!(nets->is_array() && nets->empty())) {
      return make_error("network_overrides: not supported by kiln-vmm (kiln VMs have no network devices)");
    }
  }
  if (const json* vo = r.opt_value("vsock_override")) {
    KILN_ASSIGN_OR_RETURN(auto vr, ObjectReader::make(*vo, "vsock_override", {"uds_path"}));
    KILN_ASSIGN_OR_RETURN(auto uds, vr.req_string("uds_path"));
    KILN_TRY(check_path_string("vsock_override.uds_path", uds));
    KILN_TRY(vr.check_unknown());
    s.vsock_uds_path_override = std::move(uds);
  }
  KILN_ASSIGN_OR_RETURN(const json* drives, r.opt_array("drive_overrides"));
  if (drives != nullptr) {
    if (drives->size() > kMaxDrives) {
      return make_error("drive_overrides: at most " + std::to_string(kMaxDrives) + " entries");
    }
    for (size_t i = 0; i < drives->size(); ++i) {
      const std::string at = kiln::json::element_path("drive_overrides", i);
      KILN_ASSIGN_OR_RETURN(auto dr, ObjectReader::make((*drives)[i], at, {"drive_id", "path_on_host"}));
      DriveOverride o;
      KILN_ASSIGN_OR_RETURN(o.drive_id, dr.req_string("drive_id"));
      KILN_TRY(check_resource_id(member_path(at, "drive_id"), o.drive_id));
      KILN_ASSIGN_OR_RETURN(o.path_on_host, dr.req_string("path_on_host"));
      KILN_TRY(check_path_string(member_path(at, "path_on_host"), o.path_on_host));
      KILN_TRY(dr.check_unknown());
      for (const DriveOverride& seen : s.drive_overrides) {
        if (seen.drive_id == o.drive_id) return dr.error("drive_id", "duplicate drive_id \"" + o.drive_id + "\"");
      }
      s.drive_overrides.push_back(std::move(o));
    }
  }
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
  return out;
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

// Parsing, validation and serialization of the pre-boot VM configuration (Firecracker's
// swagger definitions MachineConfiguration, BootSource, Drive, Vsock, EntropyDevice,
// SerialDevice, Logger, Metrics, FullVmConfiguration; NetworkInterface in network_config.cc).
#include "vmm/config/vm_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/io.h"
#include "common/json/field_reader.h"
#include "vmm/config/nbd_uri.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm::config {

using nlohmann::json;
using kiln::json::member_path;
using kiln::json::ObjectReader;

namespace {

// A field kiln does not implement: accepted when absent/null or equal to `allowed`.
Status only_value(const ObjectReader& r, std::string_view key, std::string_view allowed) {
  KILN_ASSIGN_OR_RETURN(auto v, r.opt_string(key));
  if (v && *v != allowed) {
    return r.error(key, "only \"" + std::string(allowed) + "\" is supported by kiln-vmm, got \"" + *v + "\"");
  }
  return ok_status();
}

Status only_null(const ObjectReader& r, std::string_view key) {
  if (r.has(key)) return r.error(key, "not supported by kiln-vmm (must be absent or null)");
  return ok_status();
}

Status check_optional_path(const std::string& field, const std::optional<std::string>& v) {
  if (v) return check_path_string(field, *v);
  return ok_status();
}

json opt_json(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

Result<json> parse_json_text(std::string_view text) {
  auto j = kiln::json::parse(text, {.refuse_duplicate_keys = true});
  if (!j.ok()) {
    const std::string& why = j.error().reason;
    return make_error("An error occurred when deserializing the json body of a request: " + why +
                      (why.empty() || why.back() != '.' ? "." : ""));
  }
  return std::move(j).value();
}

Status check_path_string(const std::string& field, const std::string& value) {
  if (value.empty()) return make_error(field + ": must not be empty");
  if (value.find('\0') != std::string::npos) return make_error(field + ": must not contain NUL bytes");
  return ok_status();
}

const Drive* VmConfig::root_drive() const {
  for (const Drive& d : drives) {
    if (d.is_root_device) return &d;
  }
  return nullptr;
}

bool is_valid_resource_id(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

Status check_resource_id(std::string_view field, std::string_view id) {
  // Same texts as Firecracker's checked_id().
  if (id.empty()) return make_error(std::string(field) + ": The ID cannot be empty.");
  if (!is_valid_resource_id(id)) {
    return make_error(std::string(field) +
                      ": API Resource IDs can only contain alphanumeric characters and underscores.");
  }
  return ok_status();
}

// ---------------------------------------------------------------- machine-config

namespace {
const std::vector<std::string> kMachineFields = {"vcpu_count", "mem_size_mib", "smt",
                                                 "track_dirty_pages", "cpu_template", "huge_pages"};

// Applies the fields present in `r` onto `mc`.
Status read_machine_fields(const ObjectReader& r, MachineConfig& mc) {
  KILN_ASSIGN_OR_RETURN(auto vcpus, r.opt_u64("vcpu_count"));
  if (vcpus) {
    if (*vcpus < 1 || *vcpus > kMaxVcpus) return r.error("vcpu_count", "must be between 1 and " + std::to_string(kMaxVcpus));
    mc.vcpu_count = static_cast<uint32_t>(*vcpus);
  }
  KILN_ASSIGN_OR_RETURN(auto mem, r.opt_u64("mem_size_mib"));
  if (mem) mc.mem_size_mib = *mem;
  KILN_ASSIGN_OR_RETURN(auto smt, r.opt_bool("smt"));
  if (smt) mc.smt = *smt;
  KILN_ASSIGN_OR_RETURN(auto dirty, r.opt_bool("track_dirty_pages"));
  if (dirty) mc.track_dirty_pages = *dirty;
  KILN_TRY(only_value(r, "cpu_template", "None"));
  KILN_TRY(only_value(r, "huge_pages", "None"));
  return r.check_unknown();
}
}  // namespace

Status validate_machine_config(const MachineConfig& mc, const std::string& path) {
  if (mc.vcpu_count < 1 || mc.vcpu_count > kMaxVcpus) {
    return make_error(member_path(path, "vcpu_count") + ": must be between 1 and " + std::to_string(kMaxVcpus));
  }
  if (mc.smt && mc.vcpu_count != 1 && mc.vcpu_count % 2 != 0) {
    return make_error(member_path(path, "vcpu_count") + ": must be 1 or an even number when smt is enabled");
  }
  if (mc.mem_size_mib == 0 || mc.mem_size_mib > kMaxMemSizeMib) {
    return make_error(member_path(path, "mem_size_mib") + ": must be between 1 and " + std::to_string(kMaxMemSizeMib));
  }
  return ok_status();
}

Result<MachineConfig> parse_machine_config(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, kMachineFields));
  // Required first, so a missing field is reported before a bad optional one.
  KILN_TRY(r.req_u64("vcpu_count"));
  KILN_TRY(r.req_u64("mem_size_mib"));
  MachineConfig mc;  // omitted optionals take their defaults (PUT semantics)
  KILN_TRY(read_machine_fields(r, mc));
  KILN_TRY(validate_machine_config(mc, path));
  return mc;
}

Result<MachineConfig> patch_machine_config(const MachineConfig& base, const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "", kMachineFields));
  MachineConfig mc = base;
  KILN_TRY(read_machine_fields(r, mc));
  KILN_TRY(validate_machine_config(mc));
  return mc;
}

json to_json(const MachineConfig& mc) {
  return json{{"vcpu_count", mc.vcpu_count},
              {"mem_size_mib", mc.mem_size_mib},
              {"smt", mc.smt},
              {"track_dirty_pages", mc.track_dirty_pages},
              {"huge_pages", "None"}};
}

// ---------------------------------------------------------------- boot-source

Result<BootSource> parse_boot_source(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"kernel_image_path", "initrd_path", "boot_args"}));
  BootSource bs;
  KILN_ASSIGN_OR_RETURN(bs.kernel_image_path, r.req_string("kernel_image_path"));
  KILN_TRY(check_path_string(r.field("kernel_image_path"), bs.kernel_image_path));
  KILN_ASSIGN_OR_RETURN(bs.initrd_path, r.opt_string("initrd_path"));
  KILN_TRY(check_optional_path(r.field("initrd_path"), bs.initrd_path));
  KILN_ASSIGN_OR_RETURN(bs.boot_args, r.opt_string("boot_args"));
  if (bs.boot_args && bs.boot_args->find('\0') != std::string::npos) return r.error("boot_args", "must not contain NUL bytes");
  KILN_TRY(r.check_unknown());
  return bs;
}

json to_json(const BootSource& bs) {
  return json{{"kernel_image_path", bs.kernel_image_path},
              {"initrd_path", opt_json(bs.initrd_path)},
              {"boot_args", opt_json(bs.boot_args)}};
}

// ---------------------------------------------------------------- drives

Result<Drive> parse_drive(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path,
                                                   {"drive_id", "path_on_host", "is_root_device", "is_read_only",
                                                    "partuuid", "cache_type", "io_engine", "rate_limiter",
                                                    "socket"}));
  Drive d;
  KILN_ASSIGN_OR_RETURN(d.drive_id, r.req_string("drive_id"));
  KILN_TRY(check_resource_id(r.field("drive_id"), d.drive_id));
  KILN_ASSIGN_OR_RETURN(d.is_root_device, r.req_bool("is_root_device"));
  // Optional in Firecracker's schema only for vhost-user drives, which kiln does not have.
  KILN_ASSIGN_OR_RETURN(d.path_on_host, r.req_string("path_on_host"));
  KILN_TRY(check_path_string(r.field("path_on_host"), d.path_on_host));
  KILN_ASSIGN_OR_RETURN(auto ro, r.opt_bool("is_read_only"));
  d.is_read_only = ro.value_or(false);
  KILN_ASSIGN_OR_RETURN(d.partuuid, r.opt_string("partuuid"));
  KILN_ASSIGN_OR_RETURN(auto cache, r.opt_string("cache_type"));
  if (cache) {
    if (*cache == "Unsafe") {
      d.cache_type = CacheType::kUnsafe;
    } else if (*cache == "Writeback") {
      d.cache_type = CacheType::kWriteback;
    } else {
      return r.error("cache_type", "must be \"Unsafe\" or \"Writeback\", got \"" + *cache + "\"");
    }
  }
  KILN_TRY(only_value(r, "io_engine", "Sync"));
  KILN_ASSIGN_OR_RETURN(d.rate_limiter, parse_rate_limiter(r.opt_value("rate_limiter"), r.field("rate_limiter")));
  KILN_TRY(only_null(r, "socket"));
  KILN_TRY(r.check_unknown());
  return d;
}

json to_json(const Drive& d) {
  return json{{"drive_id", d.drive_id},
              {"partuuid", opt_json(d.partuuid)},
              {"is_root_device", d.is_root_device},
              {"cache_type", d.cache_type == CacheType::kWriteback ? "Writeback" : "Unsafe"},
              {"is_read_only", d.is_read_only},
              {"path_on_host", d.path_on_host},
              {"rate_limiter", rate_limiter_json(d.rate_limiter)},
              {"io_engine", "Sync"},
              {"socket", nullptr}};
}

Status upsert_drive(VmConfig& vm, Drive drive) {
  Drive* existing = nullptr;
  for (Drive& d : vm.drives) {
    if (d.drive_id == drive.drive_id) existing = &d;
  }
  if (drive.is_root_device) {
    const Drive* root = vm.root_drive();
    if (root != nullptr && root->drive_id != drive.drive_id) {
      return make_error("A root block device already exists!");  // Firecracker's text
    }
  }
  if (existing != nullptr) {
    *existing = std::move(drive);
    return ok_status();
  }
  if (vm.drives.size() >= kMaxDrives) {
    return make_error("drives: at most " + std::to_string(kMaxDrives) + " drives are supported");
  }
  // Firecracker puts the root device first so it becomes /dev/vda.
  if (drive.is_root_device) {
    vm.drives.insert(vm.drives.begin(), std::move(drive));
  } else {
    vm.drives.push_back(std::move(drive));
  }
  return ok_status();
}

// ---------------------------------------------------------------- vsock, entropy, serial

Result<VsockConfig> parse_vsock(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"guest_cid", "uds_path", "vsock_id"}));
  VsockConfig v;
  KILN_ASSIGN_OR_RETURN(auto cid, r.req_u64("guest_cid"));
  if (cid < kMinGuestCid || cid > kMaxGuestCid) {
    return r.error("guest_cid", "must be between " + std::to_string(kMinGuestCid) + " and " + std::to_string(kMaxGuestCid));
  }
  v.guest_cid = static_cast<uint32_t>(cid);
  KILN_ASSIGN_OR_RETURN(v.uds_path, r.req_string("uds_path"));
  KILN_TRY(check_path_string(r.field("uds_path"), v.uds_path));
  KILN_ASSIGN_OR_RETURN(v.vsock_id, r.opt_string("vsock_id"));
  if (v.vsock_id) KILN_TRY(check_resource_id(r.field("vsock_id"), *v.vsock_id));
  KILN_TRY(r.check_unknown());
  return v;
}

json to_json(const VsockConfig& v) {
  json out{{"guest_cid", v.guest_cid}, {"uds_path", v.uds_path}};
  if (v.vsock_id) out["vsock_id"] = *v.vsock_id;
  return out;
}

Result<EntropyConfig> parse_entropy(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"rate_limiter"}));
  KILN_TRY(only_null(r, "rate_limiter"));
  KILN_TRY(r.check_unknown());
  return EntropyConfig{};
}

json to_json(const EntropyConfig&) { return json{{"rate_limiter", nullptr}}; }

Result<SerialConfig> parse_serial(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"serial_out_path", "rate_limiter"}));
  SerialConfig s;
  KILN_ASSIGN_OR_RETURN(s.serial_out_path, r.opt_string("serial_out_path"));
  KILN_TRY(check_optional_path(r.field("serial_out_path"), s.serial_out_path));
  KILN_TRY(only_null(r, "rate_limiter"));
  KILN_TRY(r.check_unknown());
  return s;
}

json to_json(const SerialConfig& s) { return json{{"serial_out_path", opt_json(s.serial_out_path)}}; }

// ---------------------------------------------------------------- logger, metrics

Result<LoggerConfig> parse_logger(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"log_path", "level", "show_level", "show_log_origin",
                                                             "module"}));
  LoggerConfig l;
  KILN_ASSIGN_OR_RETURN(l.log_path, r.opt_string("log_path"));
  KILN_TRY(check_optional_path(r.field("log_path"), l.log_path));
  KILN_ASSIGN_OR_RETURN(l.level, r.opt_string("level"));
  if (l.level) {
    auto level = logging::parse_log_level(*l.level);
    if (!level.ok()) return level.error().wrap(r.field("level"));
  }
  KILN_ASSIGN_OR_RETURN(auto show_level, r.opt_bool("show_level"));
  l.show_level = show_level.value_or(false);
  KILN_ASSIGN_OR_RETURN(auto show_origin, r.opt_bool("show_log_origin"));
  l.show_log_origin = show_origin.value_or(false);
  KILN_ASSIGN_OR_RETURN(l.module, r.opt_string("module"));
  KILN_TRY(r.check_unknown());
  return l;
}

json to_json(const LoggerConfig& l) {
  return json{{"log_path", opt_json(l.log_path)},
              {"level", opt_json(l.level)},
              {"show_level", l.show_level},
              {"show_log_origin", l.show_log_origin},
              {"module", opt_json(l.module)}};
}

Result<MetricsConfig> parse_metrics(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"metrics_path"}));
  MetricsConfig m;
  KILN_ASSIGN_OR_RETURN(m.metrics_path, r.req_string("metrics_path"));
  KILN_TRY(check_path_string(r.field("metrics_path"), m.metrics_path));
  KILN_TRY(r.check_unknown());
  return m;
}

json to_json(const MetricsConfig& m) { return json{{"metrics_path", m.metrics_path}}; }

// ---------------------------------------------------------------- whole VM / config file

json to_json(const VmConfig& vm) {
  json drives = json::array();
  for (const Drive& d : vm.drives) drives.push_back(to_json(d));
  json nets = json::array();
  for (const NetworkInterface& n : vm.network_interfaces) nets.push_back(to_json(n));
  return json{{"balloon", nullptr},
              {"drives", std::move(drives)},
              {"boot-source", vm.boot_source ? to_json(*vm.boot_source) : json(nullptr)},
              {"cpu-config", nullptr},
              {"logger", vm.logger ? to_json(*vm.logger) : json(nullptr)},
              {"machine-config", to_json(vm.machine_config)},
              {"metrics", vm.metrics ? to_json(*vm.metrics) : json(nullptr)},
              {"mmds-config", nullptr},
              {"network-interfaces", std::move(nets)},
              {"vsock", vm.vsock ? to_json(*vm.vsock) : json(nullptr)},
              {"entropy", vm.entropy ? to_json(*vm.entropy) : json(nullptr)},
              {"serial", vm.serial ? to_json(*vm.serial) : json(nullptr)}};
}

namespace {
// A config file array of resources with ids ("drives"): each element parsed, a repeated id
// refused, then added by `upsert` (which applies the set's own rules).
template <typename T, typename Upsert>
Status read_resources(const ObjectReader& r, std::string_view key, std::string_view id_key,
                      std::string T::*id, const std::vector<T>& seen,
                      Result<T> (*parse)(const json&, const std::string&), Upsert upsert) {
  KILN_ASSIGN_OR_RETURN(const json* list, r.opt_array(key));
  for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
    const std::string at = kiln::json::element_path(key, i);
    KILN_ASSIGN_OR_RETURN(T item, parse((*list)[i], at));
    for (const T& other : seen) {
      if (other.*id == item.*id) {
        return make_error(member_path(at, id_key) + ": duplicate " + std::string(id_key) + " \"" + item.*id + "\"");
      }
    }
    auto st = upsert(std::move(item));
    if (!st.ok()) return st.error().wrap(at);
  }
  return ok_status();
}
}  // namespace

Result<VmConfig> parse_vm_config(const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "", {"boot-source", "drives", "machine-config", "vsock",
                                                          "entropy", "serial", "logger", "metrics", "balloon",
                                                          "network-interfaces", "mmds-config", "cpu-config",
                                                          "pmem", "memory-hotplug"}));
  VmConfig vm;
  // Firecracker requires a boot source in a config file; a snapshot is loaded via the API.
  const json* bs = r.opt_value("boot-source");
  if (bs == nullptr) return r.error("boot-source", "missing required field");
  KILN_ASSIGN_OR_RETURN(vm.boot_source, parse_boot_source(*bs, "boot-source"));
  if (const json* mc = r.opt_value("machine-config")) {
    KILN_ASSIGN_OR_RETURN(vm.machine_config, parse_machine_config(*mc, "machine-config"));
  }
  KILN_TRY(read_resources(r, "drives", "drive_id", &Drive::drive_id, vm.drives, parse_drive,
                          [&vm](Drive d) { return upsert_drive(vm, std::move(d)); }));
  KILN_TRY(read_resources(r, "network-interfaces", "iface_id", &NetworkInterface::iface_id, vm.network_interfaces,
                          parse_network_interface,
                          [&vm](NetworkInterface n) { return upsert_network_interface(vm, std::move(n)); }));
  if (const json* v = r.opt_value("vsock")) {
    KILN_ASSIGN_OR_RETURN(vm.vsock, parse_vsock(*v, "vsock"));
  }
  if (const json* e = r.opt_value("entropy")) {
    KILN_ASSIGN_OR_RETURN(vm.entropy, parse_entropy(*e, "entropy"));
  }
  if (const json* s = r.opt_value("serial")) {
    KILN_ASSIGN_OR_RETURN(vm.serial, parse_serial(*s, "serial"));
  }
  if (const json* l = r.opt_value("logger")) {
    KILN_ASSIGN_OR_RETURN(vm.logger, parse_logger(*l, "logger"));
  }
  if (const json* m = r.opt_value("metrics")) {
    KILN_ASSIGN_OR_RETURN(vm.metrics, parse_metrics(*m, "metrics"));
  }
  for (const char* key : {"balloon", "mmds-config", "cpu-config", "memory-hotplug"}) KILN_TRY(only_null(r, key));
  if (const json* v = r.opt_value("pmem"); v != nullptr && !(v->is_array() && v->empty())) {
    return r.error("pmem", "not supported by kiln-vmm (must be absent, null or [])");
  }
  KILN_TRY(r.check_unknown());
  return vm;
}

Result<VmConfig> parse_vm_config_text(std::string_view text) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json_text(text));
  return parse_vm_config(j);
}

Result<VmConfig> load_vm_config_file(const std::string& file) {
  auto text = io::read_file(file, kMaxConfigFileBytes);
  if (!text.ok()) return text.error().wrap("config file");
  auto vm = parse_vm_config_text(*text);
  if (!vm.ok()) return vm.error().wrap("config file " + file);
  return vm;
}

// ---------------------------------------------------------------- start-time checks

namespace {
Status check_access(const std::string& what, const std::string& path, int mode) {
  if (::access(path.c_str(), mode) != 0) return errno_error(what + " " + path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(what + " " + path);
  if (S_ISDIR(st.st_mode)) return make_error(what + " " + path + ": is a directory");
  return ok_status();
}
}  // namespace

Status check_boot_source_files(const BootSource& bs) {
  KILN_TRY(check_access("kernel_image_path:", bs.kernel_image_path, R_OK));
  if (bs.initrd_path) KILN_TRY(check_access("initrd_path:", *bs.initrd_path, R_OK));
  return ok_status();
}

Status check_drive_file(const Drive& d) {
  // An NBD drive is checked when it connects (the server may not be up yet); its URI now.
  if (is_nbd_uri(d.path_on_host)) {
    auto uri = parse_nbd_uri(d.path_on_host);
    if (!uri.ok()) return uri.error();
    return ok_status();
  }
  const int mode = d.is_read_only ? R_OK : (R_OK | W_OK);
  return check_access("drive " + d.drive_id + ": path_on_host:", d.path_on_host, mode);
}

Status validate_for_start(const VmConfig& vm) {
  // Firecracker: "Cannot start microvm without kernel configuration."
  if (!vm.boot_source) return make_error("Cannot start microvm without kernel configuration.");
  KILN_TRY(validate_machine_config(vm.machine_config));
  KILN_TRY(check_boot_source_files(*vm.boot_source));
  int roots = 0;
  for (const Drive& d : vm.drives) {
    if (d.is_root_device) ++roots;
    KILN_TRY(check_drive_file(d));
  }
  if (roots > 1) return make_error("A root block device already exists!");
  if (vm.drives.size() > kMaxDrives) {
    return make_error("drives: at most " + std::to_string(kMaxDrives) + " drives are supported");
  }
  KILN_TRY(check_network_interfaces(vm.network_interfaces));
  return ok_status();
}

}  // namespace kiln::vmm::config

// Firecracker-compatible pre-boot configuration model of one microVM: plain structs, their
// JSON parsing (strict, errors name the field) and serialization, and the config file shape
// (`--config-file`, same as Firecracker's; also what GET /vm/config returns).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "vmm/config/network_config.h"
#include "vmm/config/rate_limiter_config.h"

namespace kiln::vmm::config {

// Firecracker's MachineConfiguration bounds (swagger: vcpu_count minimum 1, maximum 32).
inline constexpr uint32_t kMaxVcpus = 32;
inline constexpr uint32_t kDefaultVcpus = 1;
inline constexpr uint64_t kDefaultMemSizeMib = 128;
// kiln's own sanity cap (1 TiB) so mem_size_mib << 20 can never overflow.
inline constexpr uint64_t kMaxMemSizeMib = uint64_t{1} << 20;
// Each drive takes a virtio-mmio slot and an IRQ line; kiln caps the count.
inline constexpr size_t kMaxDrives = 16;
// Vsock CIDs 0-2 are reserved (hypervisor, local, host); u32::MAX is VMADDR_CID_ANY.
inline constexpr uint64_t kMinGuestCid = 3;
inline constexpr uint64_t kMaxGuestCid = 0xFFFFFFFEull;

struct MachineConfig {
  uint32_t vcpu_count = kDefaultVcpus;
  uint64_t mem_size_mib = kDefaultMemSizeMib;
  bool smt = false;
  bool track_dirty_pages = false;
  // cpu_template and huge_pages are accepted only as "None" (kiln has neither).
  bool operator==(const MachineConfig&) const = default;
};

struct BootSource {
  std::string kernel_image_path;
  std::optional<std::string> initrd_path;
  std::optional<std::string> boot_args;
  bool operator==(const BootSource&) const = default;
};

enum class CacheType { kUnsafe, kWriteback };

struct Drive {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::optional<std::string> partuuid;
  CacheType cache_type = CacheType::kUnsafe;
  std::optional<RateLimiterConfig> rate_limiter;
  // io_engine is accepted only as "Sync"; socket only as null.
  bool operator==(const Drive&) const = default;
};

struct VsockConfig {
  uint32_t guest_cid = 0;
  std::string uds_path;
  std::optional<std::string> vsock_id;  // deprecated in Firecracker, kept for old clients
  bool operator==(const VsockConfig&) const = default;
};

// virtio-rng (Firecracker's /entropy). rate_limiter is accepted only as null.
struct EntropyConfig {
  bool operator==(const EntropyConfig&) const = default;
};

// Firecracker's /serial: where the 8250 console output goes (absent: stdout).
struct SerialConfig {
  std::optional<std::string> serial_out_path;
  bool operator==(const SerialConfig&) const = default;
};

struct LoggerConfig {
  std::optional<std::string> log_path;
  std::optional<std::string> level;  // validated by logging::parse_log_level
  bool show_level = false;
  bool show_log_origin = false;
  std::optional<std::string> module;
  bool operator==(const LoggerConfig&) const = default;
};

struct MetricsConfig {
  std::string metrics_path;
  bool operator==(const MetricsConfig&) const = default;
};

struct VmConfig {
  std::optional<BootSource> boot_source;
  MachineConfig machine_config;
  std::vector<Drive> drives;
  std::vector<NetworkInterface> network_interfaces;
  std::optional<VsockConfig> vsock;
  std::optional<EntropyConfig> entropy;
  std::optional<SerialConfig> serial;
  std::optional<LoggerConfig> logger;
  std::optional<MetricsConfig> metrics;
  bool operator==(const VmConfig&) const = default;

  // The root drive, if any.
  const Drive* root_drive() const;
};

// Parses a request body or config file (kiln_json, repeated keys refused as serde does); the
// error reads like Firecracker's: "An error occurred when deserializing the json body of a
// request: <detail>."
Result<nlohmann::json> parse_json_text(std::string_view text);

// Path-safe string: non-empty and free of NUL bytes (a NUL would silently cut the path at the
// open(2) boundary).
Status check_path_string(const std::string& field, const std::string& value);

// API resource ids (drive_id, vsock_id): non-empty, [A-Za-z0-9_] only.
bool is_valid_resource_id(std::string_view id);
Status check_resource_id(std::string_view field, std::string_view id);

// --- parsing: one function per request body (kiln_json's ObjectReader); `path` is where the
// object sits in a config file ("drives[0]"), "" for a request body, and prefixes its field
// names in errors.
// PUT /machine-config: vcpu_count and mem_size_mib required, omitted optionals reset to
// their defaults (Firecracker's PUT semantics).
Result<MachineConfig> parse_machine_config(const nlohmann::json& j, const std::string& path = "");
// PATCH /machine-config: every field optional, applied onto `base`, result re-validated.
Result<MachineConfig> patch_machine_config(const MachineConfig& base, const nlohmann::json& j);
Status validate_machine_config(const MachineConfig& mc, const std::string& path = "");
Result<BootSource> parse_boot_source(const nlohmann::json& j, const std::string& path = "");
Result<Drive> parse_drive(const nlohmann::json& j, const std::string& path = "");
Result<VsockConfig> parse_vsock(const nlohmann::json& j, const std::string& path = "");
Result<EntropyConfig> parse_entropy(const nlohmann::json& j, const std::string& path = "");
Result<SerialConfig> parse_serial(const nlohmann::json& j, const std::string& path = "");
Result<LoggerConfig> parse_logger(const nlohmann::json& j, const std::string& path = "");
Result<MetricsConfig> parse_metrics(const nlohmann::json& j, const std::string& path = "");

// --- serialization in Firecracker's shapes (absent optionals as null, like serde).
nlohmann::json to_json(const MachineConfig& mc);
nlohmann::json to_json(const BootSource& bs);
nlohmann::json to_json(const Drive& d);
nlohmann::json to_json(const VsockConfig& v);
nlohmann::json to_json(const EntropyConfig& e);
nlohmann::json to_json(const SerialConfig& s);
nlohmann::json to_json(const LoggerConfig& l);
nlohmann::json to_json(const MetricsConfig& m);
// GET /vm/config (Firecracker's FullVmConfiguration); parse_vm_config() reads it back.
nlohmann::json to_json(const VmConfig& vm);

// --- the config file (`--config-file`): {"boot-source", "drives", "machine-config",
// "network-interfaces", "vsock", "entropy", "serial", "logger", "metrics"}; Firecracker keys
// kiln lacks (balloon, mmds-config, cpu-config, pmem, memory-hotplug) are accepted only as null
// or an empty array.
Result<VmConfig> parse_vm_config(const nlohmann::json& j);
Result<VmConfig> parse_vm_config_text(std::string_view text);
// Reads FILE (at most kMaxConfigFileBytes) and parses it; errors name the file.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;
Result<VmConfig> load_vm_config_file(const std::string& file);

// --- mutations shared by the API and the config file.
// Inserts or replaces (same drive_id) a drive: at most one root device, at most kMaxDrives.
Status upsert_drive(VmConfig& vm, Drive drive);
// Host file checks, made by PUT /boot-source and PUT /drives (Firecracker answers 400 with the
// OS error there) and again at start: the kernel and initrd readable, a drive's file readable
// and writable unless read-only; an NBD URI (nbd_uri.h) well-formed (its server is reached when
// the drive connects). Errors name the field and carry the OS error
// ("kernel_image_path: /x: No such file or directory"). Touch the filesystem (access(2), stat(2)).
Status check_boot_source_files(const BootSource& bs);
Status check_drive_file(const Drive& d);
// What InstanceStart needs: a boot source and the host file checks above.
Status validate_for_start(const VmConfig& vm);

}  // namespace kiln::vmm::config

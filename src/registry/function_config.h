// FunctionConfig: what a user deploys (PUT /v1/functions/{name}), with validation that names
// the offending field, and FunctionRecord: the config plus its image-preparation status.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "src/net/network_settings.h"
#include "src/registry/runtime_api.h"

namespace kiln::kilnd::registry {

inline constexpr std::size_t kMaxNameLength = 64;
inline constexpr std::size_t kMaxTenantNameLength = 32;
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;
inline constexpr std::size_t kMaxSchedules = 16;

struct RegistryCredentials {
  std::string username;
  std::string password;
  bool empty() const { return username.empty() && password.empty(); }
};

struct FunctionConfig {
  std::string name;  // from the URL path
  std::string image;  // skopeo-style reference: tag or digest, oci:DIR[:TAG], ...
  std::optional<std::vector<std::string>> command;  // replaces the image's Entrypoint
  std::optional<std::vector<std::string>> args;  // replaces the image's Cmd
  std::map<std::string, std::string> env;  // merged over the image's Env
  std::string working_dir;  // "" = the image's WorkingDir
  std::string user;  // "" = the image's User
  std::uint32_t memory_mib = 128;
  std::uint32_t vcpus = 1;
  std::uint64_t timeout_ms = 3000;
  std::uint32_t concurrency = 1;  // in-flight invocations per instance
  std::uint32_t min_instances = 0;
  std::uint32_t max_instances = 10;
  std::uint32_t max_queue = 100;  // waiting invocations before 429
  std::uint64_t idle_timeout_s = 300;
  RegistryCredentials credentials;
  bool tls_verify = true;  // false: plain-HTTP or self-signed registry
  // The guest's network (`"network"`: mode, allow, deny, dns); nullopt: the operator's defaults.
  std::optional<net::NetworkSettings> network;
  // `"runtime_api"`: "http9000" or "lambda"; nullopt: detected from the image (runtime_detect.h).
  std::optional<RuntimeApi> runtime_api;
  // `"schedule"`: timer triggers, rate(...) / cron(...) in UTC (src/schedule/schedule.h), at most
  // kMaxSchedules. Parsed allowing rate(N seconds) (a state file may hold one); a deploy of one is
  // refused unless kilnd allows it (functions::schedule_refusal).
  std::vector<std::string> schedules;
};

// Where validation failed: the JSON field name (dotted for nested: "env.FOO") and why.
struct FieldError {
  std::string field;
  std::string message;
};

// Function names are file and URL path names: 1-64 characters of [A-Za-z0-9_-], starting with
// a letter or digit. The problem with `name` ("name: must not contain '..'"), or nullopt.
std::optional<std::string> function_name_problem(std::string_view name);
bool valid_function_name(std::string_view name);
// Tenant names are namespace and directory names: 1-32 of [a-z0-9-], starting with a letter
// or digit.
bool valid_tenant_name(std::string_view name);
// The key of a function in kilnd's maps, logs and metrics: its name in the admin namespace
// (tenant ""), "TENANT/NAME" otherwise.
std::string function_key(std::string_view tenant, std::string_view name);

// Parses and validates a deploy body. Unknown fields are refused (typos must not silently
// deploy defaults). Never throws.
Result<FunctionConfig> parse_function_config(std::string_view name, std::string_view body,
                                             FieldError* field_error);

enum class ImageState { kPending, kBuilding, kReady, kFailed };
const char* image_state_name(ImageState s);
std::optional<ImageState> parse_image_state(std::string_view s);

struct ImageStatus {
  ImageState state = ImageState::kPending;
  std::string reason;  // why it failed
  std::string stage;  // progress: resolve, fetch, unpack, mkfs, done
  std::string detail;
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  std::string manifest_digest;
  std::string rootfs_path;
  // A lazy image (docs/lazy-images.md; rootfs_path empty): its chunk index's pinned digest,
  // where kilnd keeps the verified index, the ext4's size, and the chunk data blob of its
  // artifact in the image's repository.
  struct Lazy {
    std::string index_digest;
    std::string index_path;
    std::uint64_t image_size = 0;
    std::string data_digest;
    std::uint64_t data_size = 0;
    bool operator==(const Lazy&) const = default;
  };
  std::optional<Lazy> lazy;
  // The image config, resolved when ready.
  std::vector<std::string> entrypoint, cmd, env;
  std::string working_dir, user;
  std::map<std::string, std::string> labels;  // runtime_api detection reads them
};

struct FunctionRecord {
  std::string tenant;  // its owner's namespace; "" = the admin namespace (kilnd without tenants)
  FunctionConfig config;
  ImageStatus image;
  std::uint64_t version = 1;  // bumped on every update
  std::uint64_t created_ms = 0;
  std::uint64_t updated_ms = 0;
  std::string key() const { return function_key(tenant, config.name); }
};

// Full JSON of a record (for the state file: includes credentials).
std::string record_to_state_json(const FunctionRecord& r);
Result<FunctionRecord> record_from_state_json(std::string_view text);
// JSON for API answers: credentials redacted.
nlohmann::json record_to_api_json(const FunctionRecord& r);

}  // namespace kiln::kilnd::registry

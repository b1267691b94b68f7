// The tenants file of kilnd (--tenants FILE): who may call the API (a bearer token per tenant,
// kept as its SHA-256), who is an admin, and each tenant's quotas. Parsing never throws and
// names the offending field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::kilnd::tenants {

inline constexpr std::size_t kMinTokenLength = 16;
inline constexpr std::size_t kMaxTenantsFileBytes = 1024 * 1024;

// Absent = unlimited.
struct Quotas {
  std::optional<std::uint32_t> max_functions;
  std::optional<std::uint32_t> max_instances;  // live instances over all of the tenant's functions
  std::optional<std::uint32_t> max_concurrent_invocations;
};

struct Tenant {
  std::string name;  // registry::valid_tenant_name
  std::string token_sha256;  // 64 lowercase hex characters
  bool admin = false;  // sees and manages every tenant's functions; no quotas
  Quotas quotas;
};

struct TenantsConfig {
  std::vector<Tenant> tenants;
  // Requests on kilnd's Unix socket (mode 0600: only its owner can connect) without a token
  // act as admin.
  bool unix_socket_admin = true;
};

// {"unix_socket_admin": bool, "tenants": [{"name", "token" | "token_sha256", "admin",
//  "quotas": {"max_functions", "max_instances", "max_concurrent_invocations"}}]}
Result<TenantsConfig> parse_tenants_config(std::string_view text);
Result<TenantsConfig> load_tenants_file(const std::string& path);

// SHA-256 of a token as 64 lowercase hex characters.
std::string token_digest(std::string_view token);

}  // namespace kiln::kilnd::tenants

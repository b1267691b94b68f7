// Authenticator: who a kilnd request acts as. Without a tenants file every request is the
// implicit admin (kilnd as before tenants existed); with one, a request needs
// "Authorization: Bearer TOKEN" (RFC 6750 §2.1), except on the Unix socket when the file trusts
// it. Tokens are compared as SHA-256 digests in constant time, against every tenant.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "src/tenants/tenant_config.h"

namespace kiln::kilnd::tenants {

// The name the implicit admin goes by (Unix socket, no tenants file) in messages.
inline constexpr const char* kImplicitAdmin = "admin";

struct Principal {
  std::string name;  // the tenant's name, or kImplicitAdmin
  // The namespace its requests act in: its own tenant name, "" for admins (the namespace of
  // kilnd without tenants; an admin may pick another one per request).
  std::string tenant;
  bool admin = false;
  Quotas quotas;  // none for admins
};

enum class AuthStatus {
  kOk,
  kMissing,  // no (Bearer) credentials: 401
  kInvalid,  // a token no tenant has: 401 with error="invalid_token"
};

struct AuthResult {
  AuthStatus status = AuthStatus::kOk;
  Principal principal;
};

class Authenticator {
 public:
  // nullopt: no tenants file.
  explicit Authenticator(std::optional<TenantsConfig> config = std::nullopt);

  bool enabled() const { return config_.has_value(); }
  // `authorization` is the request's Authorization header value ("" when absent).
  AuthResult authenticate(std::string_view authorization, bool from_unix_socket) const;
  // The tenant of that name in the file (quotas of a function's owner), or nullptr.
  const Tenant* find(std::string_view name) const;

 private:
  std::optional<TenantsConfig> config_;
};

// Equal-length strings compared without an early exit.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kiln::kilnd::tenants

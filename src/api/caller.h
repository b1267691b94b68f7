// Caller: who a request acts as (its principal) and the namespace (tenant) its function names
// live in. Resolved once per request, before dispatch: the bearer token (or the trusted Unix
// socket), then X-Kiln-Tenant for an admin acting in a tenant's namespace.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "src/registry/function_config.h"
#include "src/server/http_server.h"
#include "src/tenants/authenticator.h"

namespace kiln::kilnd::api {

// An admin picks the namespace (tenant) a request acts in with this header.
inline constexpr const char* kTenantHeader = "X-Kiln-Tenant";

struct Caller {
  tenants::Principal principal;
  std::string tenant;  // the namespace the request acts in
  bool all = false;  // an admin in its own namespace: listings show every tenant's functions
  bool sees(const registry::FunctionRecord& r) const { return all || r.tenant == tenant; }
  // The registry key of the caller's function `name` (a user's name: never the key itself).
  std::string key(std::string_view name) const { return registry::function_key(tenant, name); }
};

// The caller of `req`, or the answer refusing it: 401 (no or an unknown token, with the
// challenge of RFC 6750 §3), 403 (a non-admin naming another tenant), 400 (a malformed tenant).
std::variant<Caller, server::Response> resolve_caller(const tenants::Authenticator& auth, const server::Request& req,
                                                      bool from_unix_socket);

}  // namespace kiln::kilnd::api

// Authentication and the namespace a request acts in.
#include "src/api/caller.h"

#include <utility>

namespace kiln::kilnd::api {
namespace {

server::Response unauthorized(const server::Request& req, tenants::AuthStatus status) {
  bool invalid = status == tenants::AuthStatus::kInvalid;
  auto res = server::json_error(req, http::status::unauthorized, "unauthorized",
                                invalid ? "the bearer token is not valid"
                                        : "this kilnd needs a bearer token (Authorization: Bearer TOKEN)");
  res.set(http::field::www_authenticate,
          invalid ? R"(Bearer realm="kiln", error="invalid_token")" : R"(Bearer realm="kiln")");
  return res;
}

}  // namespace

std::variant<Caller, server::Response> resolve_caller(const tenants::Authenticator& auth, const server::Request& req,
                                                      bool from_unix_socket) {
  auto result = auth.authenticate(sv(req[http::field::authorization]), from_unix_socket);
  if (result.status != tenants::AuthStatus::kOk) return unauthorized(req, result.status);
  Caller caller;
  caller.tenant = result.principal.tenant;
  caller.all = result.principal.admin;
  std::string_view as = sv(req[kTenantHeader]);
  if (!as.empty() && as != result.principal.tenant) {
    if (!result.principal.admin) {
      // Built with append: GCC 12 with the precompiled header reports a false -Warray-bounds on
      // std::string(...) + "..." here.
      std::string why = "only an admin may act for another tenant (";
      return server::json_error(req, http::status::forbidden, "forbidden", why.append(kTenantHeader).append(")"));
    }
    if (!registry::valid_tenant_name(as)) {
      std::string why = kTenantHeader;
      why.append(": must be 1-32 characters of [a-z0-9-], starting with a letter or digit");
      return server::json_error(req, http::status::bad_request, "invalid_field", why, kTenantHeader);
    }
    caller.tenant = std::string(as);
    caller.all = false;
  }
  caller.principal = std::move(result.principal);
  return caller;
}

}  // namespace kiln::kilnd::api

// Bearer-token authentication against the tenants file.
#include "src/tenants/authenticator.h"

namespace kiln::kilnd::tenants {
namespace {

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Principal implicit_admin() {
  Principal p;
  p.name = kImplicitAdmin;
  p.admin = true;
  return p;
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

Authenticator::Authenticator(std::optional<TenantsConfig> config) : config_(std::move(config)) {}

AuthResult Authenticator::authenticate(std::string_view authorization, bool from_unix_socket) const {
  AuthResult r;
  if (!config_) {
    r.principal = implicit_admin();
    return r;
  }
  authorization = trim(authorization);
  // auth-scheme is case-insensitive (RFC 7235 §2.1); the token follows one or more spaces.
  constexpr std::string_view kScheme = "bearer";
  bool bearer = authorization.size() > kScheme.size() && iequals_ascii(authorization.substr(0, kScheme.size()), kScheme) &&
                (authorization[kScheme.size()] == ' ' || authorization[kScheme.size()] == '\t');
  if (!bearer) {
    if (authorization.empty() && from_unix_socket && config_->unix_socket_admin) {
      r.principal = implicit_admin();
      return r;
    }
    r.status = AuthStatus::kMissing;
    return r;
  }
  std::string digest = token_digest(trim(authorization.substr(kScheme.size())));
  // Every tenant is compared, whatever matched: the time taken says nothing about the token.
  const Tenant* match = nullptr;
  for (const auto& t : config_->tenants) {
    if (constant_time_equal(digest, t.token_sha256)) match = &t;
  }
  if (!match) {
    r.status = AuthStatus::kInvalid;
    return r;
  }
  r.principal.name = match->name;
  r.principal.admin = match->admin;
  if (!match->admin) {
    r.principal.tenant = match->name;
    r.principal.quotas = match->quotas;
  }
  return r;
}

const Tenant* Authenticator::find(std::string_view name) const {
  if (!config_) return nullptr;
  for (const auto& t : config_->tenants) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace kiln::kilnd::tenants

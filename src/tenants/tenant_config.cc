// Parsing and validation of the tenants file; tokens are reduced to their SHA-256 at once.
#include "src/tenants/tenant_config.h"

#include <set>

#include <nlohmann/json.hpp>

#include "common/io.h"
#include "common/json/field_reader.h"
#include "rootfs-builder/digest/digest.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::tenants {
namespace {

using nlohmann::json;
using kiln::json::FieldResult;
using kiln::json::Nulls;
using kiln::json::ObjectReader;

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A quota: null (like absent) is unlimited.
FieldResult<std::optional<std::uint32_t>> read_quota(const ObjectReader& q, std::string_view key) {
  const json* v = q.opt_value(key);
  if (v == nullptr || v->is_null()) return std::optional<std::uint32_t>{};
  KILN_ASSIGN_OR_RETURN(auto n, kiln::json::read_uint_in(*v, q.field(key), 0, 1000000));
  return std::optional<std::uint32_t>{static_cast<std::uint32_t>(n)};
}

FieldResult<Quotas> read_quotas(const ObjectReader& q) {
  KILN_TRY(q.check_unknown());
  Quotas quotas;
  KILN_ASSIGN_OR_RETURN(quotas.max_functions, read_quota(q, "max_functions"));
  KILN_ASSIGN_OR_RETURN(quotas.max_instances, read_quota(q, "max_instances"));
  KILN_ASSIGN_OR_RETURN(quotas.max_concurrent_invocations, read_quota(q, "max_concurrent_invocations"));
  return quotas;
}

FieldResult<Tenant> read_tenant(const json& v, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r,
                        ObjectReader::make(v, path, {"name", "token", "token_sha256", "admin", "quotas"}, Nulls::kValue));
  KILN_TRY(r.check_unknown());
  Tenant t;
  const json* name = r.opt_value("name");
  if (name == nullptr) return r.error("name", "is required");
  if (!name->is_string() || !registry::valid_tenant_name(name->get<std::string>())) {
    return r.error("name", "must be 1-32 characters of [a-z0-9-], starting with a letter or digit");
  }
  t.name = name->get<std::string>();
  if (r.has("token") && r.has("token_sha256")) return r.error("token_sha256", "give either token or token_sha256, not both");
  KILN_ASSIGN_OR_RETURN(auto token, r.opt_string("token"));
  KILN_ASSIGN_OR_RETURN(auto digest, r.opt_string("token_sha256"));
  if (token) {
    if (token->size() < kMinTokenLength) {
      return r.error("token", "must be at least " + std::to_string(kMinTokenLength) + " characters");
    }
    t.token_sha256 = token_digest(*token);
  } else if (digest) {
    if (!is_hex64(*digest)) return r.error("token_sha256", "must be 64 lowercase hex characters");
    t.token_sha256 = std::move(*digest);
  } else {
    return r.error("token", "is required (or token_sha256)");
  }
  KILN_ASSIGN_OR_RETURN(auto admin, r.opt_bool("admin"));
  t.admin = admin.value_or(false);
  KILN_ASSIGN_OR_RETURN(auto quotas, r.opt_object("quotas", {"max_functions", "max_instances", "max_concurrent_invocations"}));
  if (quotas) {
    if (t.admin) return r.error("quotas", "an admin has no quotas");
    KILN_ASSIGN_OR_RETURN(t.quotas, read_quotas(*quotas));
  }
  return t;
}

FieldResult<TenantsConfig> read_tenants(std::string_view text) {
  auto doc = kiln::json::parse(text);
  if (!doc.ok() || !doc->is_object()) return kiln::json::field_error("", "must be a JSON object");
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(*doc, "", {"unix_socket_admin", "tenants"}, Nulls::kValue));
  KILN_TRY(r.check_unknown());
  TenantsConfig c;
  KILN_ASSIGN_OR_RETURN(auto unix_admin, r.opt_bool("unix_socket_admin"));
  c.unix_socket_admin = unix_admin.value_or(true);
  KILN_ASSIGN_OR_RETURN(const json* tenants, r.opt_array("tenants"));
  if (tenants == nullptr) return r.error("tenants", "is required");
  if (tenants->size() > 10000) return r.error("tenants", "has more than 10000 entries");
  std::set<std::string> names, tokens;
  for (std::size_t i = 0; i < tenants->size(); ++i) {
    const std::string path = kiln::json::element_path("tenants", i);
    KILN_ASSIGN_OR_RETURN(Tenant t, read_tenant((*tenants)[i], path));
    if (!names.insert(t.name).second) return kiln::json::field_error(path + ".name", "duplicate tenant " + t.name);
    if (!tokens.insert(t.token_sha256).second) {
      return kiln::json::field_error(path + ".token", "the same token as another tenant");
    }
    c.tenants.push_back(std::move(t));
  }
  return c;
}

}  // namespace

std::string token_digest(std::string_view token) { return rootfs::sha256_of(token).hex; }

Result<TenantsConfig> parse_tenants_config(std::string_view text) {
  auto c = read_tenants(text);
  if (!c.ok()) return c.error().wrap("tenants file");
  return std::move(c).value();
}

Result<TenantsConfig> load_tenants_file(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, io::read_file(path, kMaxTenantsFileBytes));
  return parse_tenants_config(text);
}

}  // namespace kiln::kilnd::tenants

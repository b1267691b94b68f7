// Parsing and validation of the tenants file; tokens are reduced to their SHA-256 at once.
#include "src/tenants/tenant_config.h"

#include <set>

#include <nlohmann/json.hpp>

#include "rootfs-builder/digest/digest.h"
#include "src/registry/atomic_file.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::tenants {
namespace {

using nlohmann::json;

Error field_error(const std::string& field, const std::string& message) {
  return make_error("tenants file: " + field + ": " + message);
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::optional<std::uint32_t>> parse_quota(const json& v, const std::string& field) {
  if (v.is_null()) return std::optional<std::uint32_t>{};
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() > 1000000) {
    return field_error(field, "must be an integer from 0 to 1000000 (or null: unlimited)");
  }
  return std::optional<std::uint32_t>{static_cast<std::uint32_t>(v.get<std::uint64_t>())};
}

Result<Quotas> parse_quotas(const json& v, const std::string& field) {
  if (!v.is_object()) return field_error(field, "must be an object");
  Quotas q;
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string f = field + "." + it.key();
    std::optional<std::uint32_t>* slot = nullptr;
    if (it.key() == "max_functions") slot = &q.max_functions;
    else if (it.key() == "max_instances") slot = &q.max_instances;
    else if (it.key() == "max_concurrent_invocations") slot = &q.max_concurrent_invocations;
    else return field_error(f, "unknown field");
    KILN_ASSIGN_OR_RETURN(*slot, parse_quota(it.value(), f));
  }
  return q;
}

Result<Tenant> parse_tenant(const json& v, const std::string& field) {
  if (!v.is_object()) return field_error(field, "must be an object");
  Tenant t;
  bool have_name = false, have_token = false, have_quotas = false;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    const json& val = it.value();
    std::string f = field + "." + k;
    if (k == "name") {
      if (!val.is_string() || !registry::valid_tenant_name(val.get<std::string>())) {
        return field_error(f, "must be 1-32 characters of [a-z0-9-], starting with a letter or digit");
      }
      t.name = val.get<std::string>();
      have_name = true;
    } else if (k == "token" || k == "token_sha256") {
      if (have_token) return field_error(f, "give either token or token_sha256, not both");
      if (!val.is_string()) return field_error(f, "must be a string");
      const auto& s = val.get_ref<const std::string&>();
      if (k == "token") {
        if (s.size() < kMinTokenLength) {
          return field_error(f, "must be at least " + std::to_string(kMinTokenLength) + " characters");
        }
        t.token_sha256 = token_digest(s);
      } else {
        if (!is_hex64(s)) return field_error(f, "must be 64 lowercase hex characters");
        t.token_sha256 = s;
      }
      have_token = true;
    } else if (k == "admin") {
      if (!val.is_boolean()) return field_error(f, "must be true or false");
      t.admin = val.get<bool>();
    } else if (k == "quotas") {
      KILN_ASSIGN_OR_RETURN(t.quotas, parse_quotas(val, f));
      have_quotas = true;
    } else {
      return field_error(f, "unknown field");
    }
  }
  if (!have_name) return field_error(field + ".name", "is required");
  if (!have_token) return field_error(field + ".token", "is required (or token_sha256)");
  if (t.admin && have_quotas) return field_error(field + ".quotas", "an admin has no quotas");
  return t;
}

}  // namespace

std::string token_digest(std::string_view token) { return rootfs::sha256_of(token).hex; }

Result<TenantsConfig> parse_tenants_config(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return make_error("tenants file: must be a JSON object");
  TenantsConfig c;
  bool have_tenants = false;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "unix_socket_admin") {
      if (!it.value().is_boolean()) return field_error(it.key(), "must be true or false");
      c.unix_socket_admin = it.value().get<bool>();
    } else if (it.key() == "tenants") {
      if (!it.value().is_array()) return field_error("tenants", "must be an array");
      if (it.value().size() > 10000) return field_error("tenants", "has more than 10000 entries");
      std::set<std::string> names, tokens;
      for (std::size_t i = 0; i < it.value().size(); ++i) {
        std::string field = "tenants[" + std::to_string(i) + "]";
        KILN_ASSIGN_OR_RETURN(Tenant t, parse_tenant(it.value()[i], field));
        if (!names.insert(t.name).second) return field_error(field + ".name", "duplicate tenant " + t.name);
        if (!tokens.insert(t.token_sha256).second) return field_error(field + ".token", "the same token as another tenant");
        c.tenants.push_back(std::move(t));
      }
      have_tenants = true;
    } else {
      return field_error(it.key(), "unknown field");
    }
  }
  if (!have_tenants) return field_error("tenants", "is required");
  return c;
}

Result<TenantsConfig> load_tenants_file(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, registry::read_file(path, kMaxTenantsFileBytes));
  return parse_tenants_config(text);
}

}  // namespace kiln::kilnd::tenants

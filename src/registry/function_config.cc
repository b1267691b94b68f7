// Deploy-body validation (every error names its field) and the record's JSON forms.
#include "src/registry/function_config.h"

#include <limits>

#include "rootfs-builder/reference/image_reference.h"

namespace kiln::kilnd::registry {
namespace {

using nlohmann::json;

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

bool valid_env_name(std::string_view n) {
  if (n.empty() || n.size() > 256) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

struct Parser {
  FieldError* err;
  bool fail(const std::string& field, const std::string& msg) {
    if (err) *err = FieldError{field, field + ": " + msg};
    return false;
  }
  bool get_string(const json& v, const std::string& field, std::string* out, std::size_t max = 4096) {
    if (!v.is_string()) return fail(field, "must be a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max) return fail(field, "longer than " + std::to_string(max) + " bytes");
    if (has_nul(s)) return fail(field, "must not contain NUL bytes");
    *out = s;
    return true;
  }
  bool get_strings(const json& v, const std::string& field, std::vector<std::string>* out) {
    if (!v.is_array()) return fail(field, "must be an array of strings");
    if (v.size() > 4096) return fail(field, "has more than 4096 entries");
    out->clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string s;
      if (!get_string(v[i], field + "[" + std::to_string(i) + "]", &s, 65536)) return false;
      out->push_back(std::move(s));
    }
    return true;
  }
  template <typename T>
  bool get_uint(const json& v, const std::string& field, std::uint64_t lo, std::uint64_t hi, T* out) {
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0) ||
        v.get<std::uint64_t>() < lo || v.get<std::uint64_t>() > hi) {
      return fail(field, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    *out = static_cast<T>(v.get<std::uint64_t>());
    return true;
  }
};

}  // namespace

std::optional<std::string> function_name_problem(std::string_view name) {
  if (name.empty()) return std::string("must not be empty");
  if (name.size() > kMaxNameLength) return "must be at most " + std::to_string(kMaxNameLength) + " characters";
  if (has_nul(name)) return std::string("must not contain NUL bytes");
  if (name.find('/') != std::string_view::npos) return std::string("must not contain '/'");
  if (name.find("..") != std::string_view::npos) return std::string("must not contain '..'");
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && !(i > 0 && (c == '-' || c == '_'))) {
      return std::string("must be 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit");
    }
  }
  return std::nullopt;
}

bool valid_function_name(std::string_view name) { return !function_name_problem(name); }

bool valid_tenant_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxTenantNameLength) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(i > 0 && c == '-')) return false;
  }
  return true;
}

std::string function_key(std::string_view tenant, std::string_view name) {
  return tenant.empty() ? std::string(name) : std::string(tenant) + "/" + std::string(name);
}

Result<FunctionConfig> parse_function_config(std::string_view name, std::string_view body,
                                             FieldError* field_error) {
  Parser p{field_error};
  auto failed = [&]() -> Error { return make_error(field_error ? field_error->message : "invalid"); };
  if (auto problem = function_name_problem(name)) {
    p.fail("name", *problem);
    return failed();
  }
  if (body.size() > kMaxConfigBytes) {
    p.fail("body", "larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    return failed();
  }
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    p.fail("body", "must be a JSON object");
    return failed();
  }
  FunctionConfig c;
  c.name = std::string(name);
  bool have_image = false;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    bool ok = true;
    if (k == "name") {
      std::string n;
      ok = p.get_string(v, k, &n, kMaxNameLength + 1) && (n == name || p.fail(k, "does not match the name in the path"));
    } else if (k == "image") {
      ok = p.get_string(v, k, &c.image, 2048);
      if (ok) {
        auto ref = rootfs::parse_reference(c.image);
        if (!ref.ok()) ok = p.fail(k, ref.error().message);
      }
      have_image = ok;
    } else if (k == "command") {
      std::vector<std::string> v2;
      ok = p.get_strings(v, k, &v2);
      if (ok && v2.empty()) ok = p.fail(k, "must not be empty (omit it to use the image's Entrypoint)");
      if (ok) c.command = std::move(v2);
    } else if (k == "args") {
      std::vector<std::string> v2;
      ok = p.get_strings(v, k, &v2);
      if (ok) c.args = std::move(v2);
    } else if (k == "env") {
      if (!v.is_object()) {
        ok = p.fail(k, "must be an object of string values");
      } else if (v.size() > 4096) {
        ok = p.fail(k, "has more than 4096 entries");
      } else {
        for (auto e = v.begin(); ok && e != v.end(); ++e) {
          std::string field = "env." + e.key();
          if (!valid_env_name(e.key())) {
            ok = p.fail(field, "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)");
          } else {
            std::string val;
            ok = p.get_string(e.value(), field, &val, 65536);
            if (ok) c.env[e.key()] = std::move(val);
          }
        }
      }
    } else if (k == "working_dir") {
      ok = p.get_string(v, k, &c.working_dir) &&
           (c.working_dir.empty() || c.working_dir[0] == '/' || p.fail(k, "must be an absolute path"));
    } else if (k == "user") {
      ok = p.get_string(v, k, &c.user, 256);
    } else if (k == "memory_mib") {
      ok = p.get_uint(v, k, 64, 32768, &c.memory_mib);
    } else if (k == "vcpus") {
      ok = p.get_uint(v, k, 1, 32, &c.vcpus);
    } else if (k == "timeout_ms") {
      ok = p.get_uint(v, k, 1, 900000, &c.timeout_ms);
    } else if (k == "concurrency") {
      ok = p.get_uint(v, k, 1, 1000, &c.concurrency);
    } else if (k == "min_instances") {
      ok = p.get_uint(v, k, 0, 1000, &c.min_instances);
    } else if (k == "max_instances") {
      ok = p.get_uint(v, k, 1, 1000, &c.max_instances);
    } else if (k == "max_queue") {
      ok = p.get_uint(v, k, 0, 100000, &c.max_queue);
    } else if (k == "idle_timeout_s") {
      ok = p.get_uint(v, k, 0, 7 * 24 * 3600, &c.idle_timeout_s);
    } else if (k == "tls_verify") {
      if (!v.is_boolean()) ok = p.fail(k, "must be true or false");
      else c.tls_verify = v.get<bool>();
    } else if (k == "registry_credentials") {
      if (!v.is_object()) {
        ok = p.fail(k, "must be an object {\"username\", \"password\"}");
      } else {
        for (auto e = v.begin(); ok && e != v.end(); ++e) {
          std::string field = k + "." + e.key();
          if (e.key() == "username") ok = p.get_string(e.value(), field, &c.credentials.username, 1024);
          else if (e.key() == "password") ok = p.get_string(e.value(), field, &c.credentials.password, 8192);
          else ok = p.fail(field, "unknown field");
        }
        if (ok && c.credentials.username.find(':') != std::string::npos) {
          ok = p.fail(k + ".username", "must not contain ':'");
        }
      }
    } else {
      ok = p.fail(k, "unknown field");
    }
    if (!ok) return failed();
  }
  if (!have_image) {
    p.fail("image", "is required");
    return failed();
  }
  if (c.min_instances > c.max_instances) {
    p.fail("min_instances", "must not exceed max_instances (" + std::to_string(c.max_instances) + ")");
    return failed();
  }
  return c;
}

const char* image_state_name(ImageState s) {
  switch (s) {
    case ImageState::kPending: return "pending";
    case ImageState::kBuilding: return "building";
    case ImageState::kReady: return "ready";
    case ImageState::kFailed: return "failed";
  }
  return "unknown";
}

std::optional<ImageState> parse_image_state(std::string_view s) {
  for (auto st : {ImageState::kPending, ImageState::kBuilding, ImageState::kReady, ImageState::kFailed}) {
    if (s == image_state_name(st)) return st;
  }
  return std::nullopt;
}

namespace {

json config_json(const FunctionConfig& c, bool with_secrets) {
  json j;
  j["name"] = c.name;
  j["image"] = c.image;
  if (c.command) j["command"] = *c.command;
  if (c.args) j["args"] = *c.args;
  j["env"] = c.env;
  j["working_dir"] = c.working_dir;
  j["user"] = c.user;
  j["memory_mib"] = c.memory_mib;
  j["vcpus"] = c.vcpus;
  j["timeout_ms"] = c.timeout_ms;
  j["concurrency"] = c.concurrency;
  j["min_instances"] = c.min_instances;
  j["max_instances"] = c.max_instances;
  j["max_queue"] = c.max_queue;
  j["idle_timeout_s"] = c.idle_timeout_s;
  j["tls_verify"] = c.tls_verify;
  if (!c.credentials.empty()) {
    j["registry_credentials"] = {{"username", c.credentials.username},
                                 {"password", with_secrets ? c.credentials.password : "********"}};
  }
  return j;
}

json image_json(const ImageStatus& s) {
  json j;
  j["state"] = image_state_name(s.state);
  j["reason"] = s.reason;
  j["progress"] = {{"stage", s.stage}, {"detail", s.detail}, {"done", s.done}, {"total", s.total}};
  j["manifest_digest"] = s.manifest_digest;
  j["rootfs_path"] = s.rootfs_path;
  j["config"] = {{"entrypoint", s.entrypoint}, {"cmd", s.cmd}, {"env", s.env},
                 {"working_dir", s.working_dir}, {"user", s.user}};
  return j;
}

json record_json(const FunctionRecord& r, bool with_secrets) {
  json j;
  if (!r.tenant.empty()) j["tenant"] = r.tenant;
  j["config"] = config_json(r.config, with_secrets);
  j["image"] = image_json(r.image);
  j["version"] = r.version;
  j["created_ms"] = r.created_ms;
  j["updated_ms"] = r.updated_ms;
  return j;
}

}  // namespace

std::string record_to_state_json(const FunctionRecord& r) { return record_json(r, true).dump(2) + "\n"; }

nlohmann::json record_to_api_json(const FunctionRecord& r) { return record_json(r, false); }

Result<FunctionRecord> record_from_state_json(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("config") || !doc["config"].is_object()) {
    return make_error("not a function record");
  }
  // The config goes through the same validation as a deploy (a hand-edited file cannot
  // smuggle in what the API would refuse).
  json cfg = doc["config"];
  std::string name = cfg.value("name", "");
  FieldError fe;
  auto config = parse_function_config(name, cfg.dump(), &fe);
  if (!config.ok()) return make_error("config: " + fe.message);
  FunctionRecord r;
  r.config = std::move(*config);
  if (doc.contains("tenant")) {
    if (!doc["tenant"].is_string() || !valid_tenant_name(doc["tenant"].get<std::string>())) {
      return make_error("tenant: not a valid tenant name");
    }
    r.tenant = doc["tenant"].get<std::string>();
  }
  try {
    const json& im = doc.at("image");
    auto st = parse_image_state(im.at("state").get<std::string>());
    if (!st) return make_error("image.state: unknown");
    r.image.state = *st;
    r.image.reason = im.value("reason", "");
    if (im.contains("progress")) {
      const json& pr = im["progress"];
      r.image.stage = pr.value("stage", "");
      r.image.detail = pr.value("detail", "");
      r.image.done = pr.value("done", std::uint64_t{0});
      r.image.total = pr.value("total", std::uint64_t{0});
    }
    r.image.manifest_digest = im.value("manifest_digest", "");
    r.image.rootfs_path = im.value("rootfs_path", "");
    if (im.contains("config")) {
      const json& ic = im["config"];
      r.image.entrypoint = ic.value("entrypoint", std::vector<std::string>{});
      r.image.cmd = ic.value("cmd", std::vector<std::string>{});
      r.image.env = ic.value("env", std::vector<std::string>{});
      r.image.working_dir = ic.value("working_dir", "");
      r.image.user = ic.value("user", "");
    }
    r.version = doc.value("version", std::uint64_t{1});
    r.created_ms = doc.value("created_ms", std::uint64_t{0});
    r.updated_ms = doc.value("updated_ms", std::uint64_t{0});
  } catch (const json::exception& e) {
    return make_error(std::string("malformed record: ") + e.what());
  }
  return r;
}

}  // namespace kiln::kilnd::registry

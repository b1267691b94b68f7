// Deploy-body validation (every error names its field) and the record's JSON forms.
#include "src/registry/function_config.h"

#include <limits>

#include "common/json/field_reader.h"
#include "rootfs-builder/reference/image_reference.h"
#include "src/schedule/schedule.h"

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

using kiln::json::FieldResult;
using kiln::json::FieldStatus;
using kiln::json::Nulls;
using kiln::json::ObjectReader;
using kiln::json::StringRules;

constexpr StringRules kText{.max_bytes = 4096, .allow_nul = false};
constexpr StringRules kLongText{.max_bytes = 65536, .allow_nul = false};
constexpr std::size_t kMaxListEntries = 4096;

const std::vector<std::string> kConfigFields = {
    "name", "image", "command", "args", "env", "working_dir", "user", "memory_mib", "vcpus", "timeout_ms",
    "concurrency", "min_instances", "max_instances", "max_queue", "idle_timeout_s", "tls_verify",
    "registry_credentials", "network", "runtime_api", "schedule"};

template <typename T>
FieldStatus read_uint(const ObjectReader& r, std::string_view key, std::uint64_t lo, std::uint64_t hi, T& out) {
  KILN_ASSIGN_OR_RETURN(auto v, r.opt_uint_in(key, lo, hi));
  if (v) out = static_cast<T>(*v);
  return {};
}

FieldStatus read_env(const ObjectReader& r, FunctionConfig& c) {
  KILN_ASSIGN_OR_RETURN(auto env, r.opt_object("env"));
  if (!env) return {};
  if (env->value().size() > kMaxListEntries) return r.error("env", "has more than 4096 entries");
  for (const auto& e : env->value().items()) {
    if (!valid_env_name(e.key())) return env->error(e.key(), "is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)");
    KILN_ASSIGN_OR_RETURN(c.env[e.key()], kiln::json::read_string(e.value(), env->field(e.key()), kLongText));
  }
  return {};
}

FieldStatus read_credentials(const ObjectReader& r, RegistryCredentials& out) {
  KILN_ASSIGN_OR_RETURN(auto creds, r.opt_object("registry_credentials", {"username", "password"}));
  if (!creds) return {};
  KILN_TRY(creds->check_unknown());
  KILN_ASSIGN_OR_RETURN(auto username, creds->opt_string("username", {.max_bytes = 1024, .allow_nul = false}));
  KILN_ASSIGN_OR_RETURN(auto password, creds->opt_string("password", {.max_bytes = 8192, .allow_nul = false}));
  out.username = username.value_or("");
  out.password = password.value_or("");
  if (out.username.find(':') != std::string::npos) return creds->error("username", "must not contain ':'");
  return {};
}

FieldStatus read_schedules(const ObjectReader& r, std::vector<std::string>& out) {
  KILN_ASSIGN_OR_RETURN(auto list, r.opt_strings("schedule", kMaxSchedules, {.max_bytes = 256, .allow_nul = false}));
  if (!list) return {};
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto s = schedule::parse((*list)[i], {.allow_seconds = true});
    if (!s.ok()) return kiln::json::field_error(kiln::json::element_path(r.field("schedule"), i), s.error().message);
    out.push_back(s->expression);
  }
  return {};
}

// Nulls are values here: "memory_mib": null is a wrong type, not a request for the default.
FieldResult<FunctionConfig> read_config(std::string_view name, std::string_view body) {
  if (auto problem = function_name_problem(name)) return kiln::json::field_error("name", *problem);
  if (body.size() > kMaxConfigBytes) {
    return kiln::json::field_error("body", "larger than " + std::to_string(kMaxConfigBytes) + " bytes");
  }
  auto doc = kiln::json::parse(body);
  if (!doc.ok() || !doc->is_object()) return kiln::json::field_error("body", "must be a JSON object");
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(*doc, "", kConfigFields, Nulls::kValue));
  KILN_TRY(r.check_unknown());  // a typo must not silently deploy defaults
  FunctionConfig c;
  c.name = std::string(name);
  KILN_ASSIGN_OR_RETURN(auto body_name, r.opt_string("name", {.max_bytes = kMaxNameLength + 1, .allow_nul = false}));
  if (body_name && *body_name != name) return r.error("name", "does not match the name in the path");
  KILN_ASSIGN_OR_RETURN(auto image, r.opt_string("image", {.max_bytes = 2048, .allow_nul = false}));
  if (!image) return r.error("image", "is required");
  if (auto ref = rootfs::parse_reference(*image); !ref.ok()) return r.error("image", ref.error().message);
  c.image = std::move(*image);
  KILN_ASSIGN_OR_RETURN(c.command, r.opt_strings("command", kMaxListEntries, kLongText));
  if (c.command && c.command->empty()) {
    return r.error("command", "must not be empty (omit it to use the image's Entrypoint)");
  }
  KILN_ASSIGN_OR_RETURN(c.args, r.opt_strings("args", kMaxListEntries, kLongText));
  KILN_TRY(read_env(r, c));
  KILN_ASSIGN_OR_RETURN(auto working_dir, r.opt_string("working_dir", kText));
  c.working_dir = working_dir.value_or("");
  if (!c.working_dir.empty() && c.working_dir[0] != '/') return r.error("working_dir", "must be an absolute path");
  KILN_ASSIGN_OR_RETURN(auto user, r.opt_string("user", {.max_bytes = 256, .allow_nul = false}));
  c.user = user.value_or("");
  KILN_TRY(read_uint(r, "memory_mib", 64, 32768, c.memory_mib));
  KILN_TRY(read_uint(r, "vcpus", 1, 32, c.vcpus));
  KILN_TRY(read_uint(r, "timeout_ms", 1, 900000, c.timeout_ms));
  KILN_TRY(read_uint(r, "concurrency", 1, 1000, c.concurrency));
  KILN_TRY(read_uint(r, "min_instances", 0, 1000, c.min_instances));
  KILN_TRY(read_uint(r, "max_instances", 1, 1000, c.max_instances));
  KILN_TRY(read_uint(r, "max_queue", 0, 100000, c.max_queue));
  KILN_TRY(read_uint(r, "idle_timeout_s", 0, 7 * 24 * 3600, c.idle_timeout_s));
  KILN_ASSIGN_OR_RETURN(auto tls_verify, r.opt_bool("tls_verify"));
  c.tls_verify = tls_verify.value_or(true);
  KILN_TRY(read_credentials(r, c.credentials));
  if (const json* network = r.opt_value("network")) {
    KILN_ASSIGN_OR_RETURN(c.network, net::parse_network_settings(*network, "network"));
  }
  KILN_ASSIGN_OR_RETURN(auto runtime_api, r.opt_string("runtime_api", {.max_bytes = 64, .allow_nul = false}));
  if (runtime_api) {
    c.runtime_api = parse_runtime_api(*runtime_api);
    if (!c.runtime_api) return r.error("runtime_api", "must be \"http9000\" or \"lambda\" (omit it to detect from the image)");
  }
  KILN_TRY(read_schedules(r, c.schedules));
  if (c.min_instances > c.max_instances) {
    return r.error("min_instances", "must not exceed max_instances (" + std::to_string(c.max_instances) + ")");
  }
  return c;
}

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
  auto c = read_config(name, body);
  if (c.ok()) return std::move(c).value();
  if (field_error) *field_error = FieldError{c.error().path, c.error().message};
  return make_error(c.error().message);
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
  if (c.network) j["network"] = net::network_settings_json(*c.network);
  if (c.runtime_api) j["runtime_api"] = runtime_api_name(*c.runtime_api);
  if (!c.schedules.empty()) j["schedule"] = c.schedules;
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
  if (s.lazy) {
    j["lazy"] = {{"index_digest", s.lazy->index_digest}, {"index_path", s.lazy->index_path},
                 {"image_size", s.lazy->image_size}, {"data_digest", s.lazy->data_digest},
                 {"data_size", s.lazy->data_size}};
  }
  j["config"] = {{"entrypoint", s.entrypoint}, {"cmd", s.cmd}, {"env", s.env},
                 {"working_dir", s.working_dir}, {"user", s.user}, {"labels", s.labels}};
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

namespace {

// The image status of a state file: lenient (absent fields take their defaults, unknown ones
// are ignored), but a field of the wrong type is an error.
FieldStatus read_image_status(const ObjectReader& doc, ImageStatus& s) {
  const json* im = doc.opt_value("image");
  if (im == nullptr) return doc.error("image", "missing required field");
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(*im, "image", {}, Nulls::kValue));
  KILN_ASSIGN_OR_RETURN(std::string state, r.req_string("state"));
  auto st = parse_image_state(state);
  if (!st) return r.error("state", "unknown");
  s.state = *st;
  auto text = [](const ObjectReader& o, std::string_view key, std::string& out) -> FieldStatus {
    KILN_ASSIGN_OR_RETURN(auto v, o.opt_string(key));
    out = v.value_or("");
    return {};
  };
  auto list = [](const ObjectReader& o, std::string_view key, std::vector<std::string>& out) -> FieldStatus {
    KILN_ASSIGN_OR_RETURN(auto v, o.opt_strings(key, std::numeric_limits<std::size_t>::max()));
    out = v.value_or(std::vector<std::string>{});
    return {};
  };
  KILN_TRY(text(r, "reason", s.reason));
  KILN_ASSIGN_OR_RETURN(auto progress, r.opt_object("progress"));
  if (progress) {
    KILN_TRY(text(*progress, "stage", s.stage));
    KILN_TRY(text(*progress, "detail", s.detail));
    KILN_ASSIGN_OR_RETURN(auto done, progress->opt_u64("done"));
    KILN_ASSIGN_OR_RETURN(auto total, progress->opt_u64("total"));
    s.done = done.value_or(0);
    s.total = total.value_or(0);
  }
  KILN_TRY(text(r, "manifest_digest", s.manifest_digest));
  KILN_TRY(text(r, "rootfs_path", s.rootfs_path));
  KILN_ASSIGN_OR_RETURN(auto lazy, r.opt_object("lazy"));
  if (lazy) {
    ImageStatus::Lazy l;
    KILN_TRY(text(*lazy, "index_digest", l.index_digest));
    KILN_TRY(text(*lazy, "index_path", l.index_path));
    KILN_TRY(text(*lazy, "data_digest", l.data_digest));
    KILN_ASSIGN_OR_RETURN(auto image_size, lazy->opt_u64("image_size"));
    KILN_ASSIGN_OR_RETURN(auto data_size, lazy->opt_u64("data_size"));
    l.image_size = image_size.value_or(0);
    l.data_size = data_size.value_or(0);
    s.lazy = std::move(l);
  }
  KILN_ASSIGN_OR_RETURN(auto config, r.opt_object("config"));
  if (config) {
    KILN_TRY(list(*config, "entrypoint", s.entrypoint));
    KILN_TRY(list(*config, "cmd", s.cmd));
    KILN_TRY(list(*config, "env", s.env));
    KILN_TRY(text(*config, "working_dir", s.working_dir));
    KILN_TRY(text(*config, "user", s.user));
    // Records written before labels were kept have none (detection then uses Env only).
    KILN_ASSIGN_OR_RETURN(auto labels, config->opt_object("labels"));
    if (labels) {
      for (const auto& l : labels->value().items()) {
        KILN_ASSIGN_OR_RETURN(s.labels[l.key()], kiln::json::read_string(l.value(), labels->field(l.key()), kLongText));
      }
    }
  }
  return {};
}

}  // namespace

Result<FunctionRecord> record_from_state_json(std::string_view text) {
  auto doc = kiln::json::parse(text);
  if (!doc.ok() || !doc->is_object() || !doc->contains("config") || !(*doc)["config"].is_object()) {
    return make_error("not a function record");
  }
  // The config goes through the same validation as a deploy (a hand-edited file cannot
  // smuggle in what the API would refuse).
  const json& cfg = (*doc)["config"];
  std::string name = cfg.contains("name") && cfg["name"].is_string() ? cfg["name"].get<std::string>() : "";
  FieldError fe;
  auto config = parse_function_config(name, kiln::json::dump(cfg), &fe);
  if (!config.ok()) return make_error("config: " + fe.message);
  FunctionRecord r;
  r.config = std::move(*config);
  KILN_ASSIGN_OR_RETURN(ObjectReader rd, ObjectReader::make(*doc, "", {}, Nulls::kValue));
  KILN_ASSIGN_OR_RETURN(auto tenant, rd.opt_string("tenant"));
  if (tenant) {
    if (!valid_tenant_name(*tenant)) return rd.error("tenant", "not a valid tenant name");
    r.tenant = std::move(*tenant);
  }
  KILN_TRY(read_image_status(rd, r.image));
  KILN_ASSIGN_OR_RETURN(auto version, rd.opt_u64("version"));
  KILN_ASSIGN_OR_RETURN(auto created, rd.opt_u64("created_ms"));
  KILN_ASSIGN_OR_RETURN(auto updated, rd.opt_u64("updated_ms"));
  r.version = version.value_or(1);
  r.created_ms = created.value_or(0);
  r.updated_ms = updated.value_or(0);
  return r;
}

}  // namespace kiln::kilnd::registry

// Lambda's request and response shapes over kiln's function config and record (AWS Lambda API
// reference: CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration, FunctionConfiguration).
#include "src/functions/lambda_shapes.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "rootfs-builder/reference/image_reference.h"
#include "src/logs/log_entry.h"

namespace kiln::kilnd::functions {
namespace {

using kiln::json::FieldResult;
using kiln::json::FieldStatus;
using kiln::json::ObjectReader;
using kiln::json::StringRules;
using nlohmann::json;

constexpr StringRules kText{.max_bytes = 4096, .allow_nul = false};
constexpr StringRules kImageUri{.max_bytes = 2048, .allow_nul = false};
constexpr std::size_t kMaxImageConfigEntries = 1500;  // Lambda's ImageConfig list limit
constexpr std::size_t kMaxFunctionRef = 170;  // Lambda's FunctionName: an ARN with a qualifier

// kiln's deploy field -> the Lambda parameter it comes from (for kiln's validation errors).
constexpr std::pair<std::string_view, std::string_view> kParameters[] = {
    {"name", "FunctionName"},
    {"image", "Code.ImageUri"},
    {"command", "ImageConfig.EntryPoint"},
    {"args", "ImageConfig.Command"},
    {"working_dir", "ImageConfig.WorkingDirectory"},
    {"env", "Environment.Variables"},
    {"memory_mib", "MemorySize"},
    {"timeout_ms", "Timeout"},
};

std::string lambda_parameter(const std::string& field) {
  for (const auto& [kiln_name, lambda_name] : kParameters) {
    if (!field.starts_with(kiln_name)) continue;
    std::string_view rest = std::string_view(field).substr(kiln_name.size());
    if (rest.empty() || rest[0] == '.' || rest[0] == '[') return std::string(lambda_name) + std::string(rest);
  }
  return field;
}

FieldResult<json> parse_object(std::string_view body) {
  auto doc = kiln::json::parse(body.empty() ? std::string_view("{}") : body);
  if (!doc.ok() || !doc->is_object()) return kiln::json::field_error("body", "must be a JSON object");
  return std::move(*doc);
}

// Docker's rule: a registry on the loopback interface is insecure by default (plain HTTP after
// HTTPS fails), so a local registry works without kiln's tls_verify, which Lambda cannot name.
bool loopback_registry(const rootfs::ImageReference& ref) {
  if (ref.transport != rootfs::Transport::kDocker) return false;
  std::string_view host = ref.registry;
  if (host.starts_with("[::1]")) return true;
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.starts_with("127.");
}

// ImageUri -> "image" (checked here, so its error names the Lambda parameter), and whether
// the registry is on loopback.
FieldResult<bool> read_image_uri(const ObjectReader& r, std::string_view key, json& fields) {
  KILN_ASSIGN_OR_RETURN(std::string uri, r.req_string(key, kImageUri));
  auto ref = rootfs::parse_reference(uri);
  if (!ref.ok()) return r.error(key, ref.error().message);
  fields["image"] = std::move(uri);
  return loopback_registry(*ref);
}

// A list member of ImageConfig: an empty list, like an absent one, means the image's own.
FieldStatus read_image_list(const ObjectReader& ic, std::string_view key, const char* field, json& fields) {
  KILN_ASSIGN_OR_RETURN(auto list, ic.opt_strings(key, kMaxImageConfigEntries, kText));
  fields[field] = list && !list->empty() ? json(*list) : json(nullptr);
  return {};
}

// ImageConfig replaces all three overrides (a member left out goes back to the image's).
FieldStatus read_image_config(const ObjectReader& r, json& fields) {
  KILN_ASSIGN_OR_RETURN(auto ic, r.opt_object("ImageConfig", {"EntryPoint", "Command", "WorkingDirectory"}));
  if (!ic) return {};
  KILN_TRY(ic->check_unknown());
  KILN_TRY(read_image_list(*ic, "EntryPoint", "command", fields));
  KILN_TRY(read_image_list(*ic, "Command", "args", fields));
  KILN_ASSIGN_OR_RETURN(auto wd, ic->opt_string("WorkingDirectory", kText));
  fields["working_dir"] = wd.value_or("");
  return {};
}

// Environment replaces every variable; Lambda's limit is 4 KB for all of them together.
FieldStatus read_environment(const ObjectReader& r, json& fields) {
  KILN_ASSIGN_OR_RETURN(auto env, r.opt_object("Environment", {"Variables"}));
  if (!env) return {};
  KILN_TRY(env->check_unknown());
  KILN_ASSIGN_OR_RETURN(auto vars, env->opt_object("Variables"));
  json out = json::object();
  std::size_t bytes = 0;
  if (vars) {
    for (const auto& item : vars->value().items()) {
      KILN_ASSIGN_OR_RETURN(std::string v, kiln::json::read_string(item.value(), vars->field(item.key()),
                                                                   {.allow_nul = false}));  // sized below, in all
      bytes += item.key().size() + v.size();
      out[item.key()] = std::move(v);
    }
  }
  if (bytes > kLambdaMaxEnvironmentBytes) {
    return env->error("Variables", "larger than Lambda's limit of 4 KB for all variables together");
  }
  fields["env"] = std::move(out);
  return {};
}

FieldStatus read_limits(const ObjectReader& r, json& fields) {
  KILN_ASSIGN_OR_RETURN(auto memory, r.opt_uint_in("MemorySize", kLambdaMinMemoryMb, kLambdaMaxMemoryMb));
  if (memory) fields["memory_mib"] = *memory;
  KILN_ASSIGN_OR_RETURN(auto timeout, r.opt_uint_in("Timeout", kLambdaMinTimeoutS, kLambdaMaxTimeoutS));
  if (timeout) fields["timeout_ms"] = *timeout * 1000;
  return {};
}

// kiln runs a function on this host's architecture only.
FieldStatus read_architectures(const ObjectReader& r) {
  KILN_ASSIGN_OR_RETURN(auto arch, r.opt_strings("Architectures", 1, kText));
  if (arch && (arch->empty() || (*arch)[0] != lambda_host_architecture())) {
    return r.error("Architectures", std::string("this kiln host runs [\"") + lambda_host_architecture() + "\"] only");
  }
  return {};
}

FieldStatus read_publish(const ObjectReader& r) {
  KILN_ASSIGN_OR_RETURN(auto publish, r.opt_bool("Publish"));
  if (publish.value_or(false)) return r.error("Publish", "kiln keeps one version ($LATEST): versions are not served");
  return {};
}

std::string_view digest_hex(std::string_view digest) {
  return digest.starts_with("sha256:") ? digest.substr(7) : digest;
}

void put_state(const registry::ImageStatus& im, json& j) {
  std::string reason, code;
  switch (im.state) {
    case registry::ImageState::kPending:
    case registry::ImageState::kBuilding:
      j["State"] = "Pending";
      j["LastUpdateStatus"] = "InProgress";
      reason = "kiln is preparing the image" + (im.stage.empty() ? std::string() : " (" + im.stage + ")");
      code = "Creating";
      break;
    case registry::ImageState::kReady:
      j["State"] = "Active";
      j["LastUpdateStatus"] = "Successful";
      return;
    case registry::ImageState::kFailed:
      j["State"] = "Failed";
      j["LastUpdateStatus"] = "Failed";
      reason = "image preparation failed: " + im.reason;
      code = "InvalidImage";
      break;
  }
  j["StateReason"] = reason;
  j["StateReasonCode"] = code;
  j["LastUpdateStatusReason"] = reason;
  j["LastUpdateStatusReasonCode"] = code;
}

}  // namespace

const char* lambda_host_architecture() {
#if defined(__aarch64__)
  return "arm64";
#else
  return "x86_64";
#endif
}

std::string lambda_account(std::string_view tenant) {
  if (tenant.empty()) return "000000000000";
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64: stable, unlike std::hash
  for (char c : tenant) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%012llu", static_cast<unsigned long long>(h % 1000000000000ull));
  return buf;
}

std::string lambda_function_arn(std::string_view tenant, std::string_view name) {
  return std::string("arn:aws:lambda:") + kLambdaRegion + ":" + lambda_account(tenant) + ":function:" +
         std::string(name);
}

kiln::json::FieldResult<LambdaFunctionRef> parse_lambda_function_ref(std::string_view text, std::string_view tenant) {
  if (text.size() > kMaxFunctionRef) return kiln::json::field_error("FunctionName", "longer than 170 characters");
  std::vector<std::string_view> parts;
  for (std::size_t pos = 0;;) {
    std::size_t colon = text.find(':', pos);
    parts.push_back(text.substr(pos, colon - pos));
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  LambdaFunctionRef ref;
  std::string_view region = kLambdaRegion;
  std::string account = lambda_account(tenant);
  std::string_view acct = account;
  std::size_t name_at = 0;  // index of the name in parts
  if (parts.size() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function") {
    region = parts[3];
    acct = parts[4];
    name_at = 6;
  } else if (parts.size() >= 3 && parts[1] == "function") {
    acct = parts[0];
    name_at = 2;
  }
  if (parts.size() > name_at + 2) {
    return kiln::json::field_error("FunctionName", "must be NAME, ACCOUNT:function:NAME or a function ARN");
  }
  ref.name = std::string(parts[name_at]);
  if (parts.size() == name_at + 2) ref.qualifier = std::string(parts[name_at + 1]);
  if (auto problem = registry::function_name_problem(ref.name)) {
    return kiln::json::field_error("FunctionName", *problem);
  }
  ref.elsewhere = region != kLambdaRegion || acct != account;
  return ref;
}

kiln::json::FieldResult<LambdaCreate> read_lambda_create(std::string_view body, std::string_view tenant) {
  KILN_ASSIGN_OR_RETURN(json doc, parse_object(body));
  KILN_ASSIGN_OR_RETURN(ObjectReader r,
                        ObjectReader::make(doc, "",
                                           {"FunctionName", "Role", "PackageType", "Code", "ImageConfig",
                                            "Environment", "MemorySize", "Timeout", "Architectures", "Publish"}));
  // PackageType first: a Zip function's other settings (Runtime, Handler) are not the point.
  KILN_ASSIGN_OR_RETURN(auto package_type, r.opt_string("PackageType", kText));
  if (package_type.value_or("Zip") != "Image") {
    return r.error("PackageType", "kiln serves container image functions only: must be Image (got " +
                                      package_type.value_or("none, which Lambda takes as Zip") + ")");
  }
  KILN_TRY(r.check_unknown());  // a setting kiln does not serve is refused, never dropped
  KILN_ASSIGN_OR_RETURN(std::string name, r.req_string("FunctionName", kText));
  KILN_ASSIGN_OR_RETURN(LambdaFunctionRef ref, parse_lambda_function_ref(name, tenant));
  if (ref.elsewhere) return r.error("FunctionName", "names a function of another account or region");
  if (!ref.qualifier.empty()) return r.error("FunctionName", "must not have a qualifier");
  KILN_ASSIGN_OR_RETURN(auto role, r.opt_string("Role", kText));  // accepted, not kept: kiln has no IAM
  (void)role;
  KILN_ASSIGN_OR_RETURN(auto code, r.opt_object("Code", {"ImageUri"}));
  if (!code) return r.error("Code", "is required (Code.ImageUri: the function's image)");
  KILN_TRY(code->check_unknown());
  LambdaCreate out;
  out.name = std::move(ref.name);
  out.fields = json::object();
  KILN_ASSIGN_OR_RETURN(bool loopback, read_image_uri(*code, "ImageUri", out.fields));
  if (loopback) out.fields["tls_verify"] = false;
  KILN_TRY(read_image_config(r, out.fields));
  KILN_TRY(read_environment(r, out.fields));
  KILN_TRY(read_limits(r, out.fields));
  KILN_TRY(read_architectures(r));
  KILN_TRY(read_publish(r));
  return out;
}

kiln::json::FieldResult<LambdaUpdate> read_lambda_update_code(std::string_view body,
                                                              const registry::FunctionConfig& current) {
  KILN_ASSIGN_OR_RETURN(json doc, parse_object(body));
  KILN_ASSIGN_OR_RETURN(ObjectReader r,
                        ObjectReader::make(doc, "", {"ImageUri", "Architectures", "Publish", "DryRun"}));
  KILN_TRY(r.check_unknown());
  LambdaUpdate out;
  out.fields = json::object();
  if (!r.has("ImageUri")) return r.error("ImageUri", "is required (kiln serves container image functions only)");
  KILN_ASSIGN_OR_RETURN(bool loopback, read_image_uri(r, "ImageUri", out.fields));
  // Leaving a loopback registry turns TLS verification back on; else the function's setting stays.
  auto old = rootfs::parse_reference(current.image);
  if (loopback) {
    out.fields["tls_verify"] = false;
  } else if (old.ok() && loopback_registry(*old)) {
    out.fields["tls_verify"] = true;
  }
  KILN_TRY(read_architectures(r));
  KILN_TRY(read_publish(r));
  KILN_ASSIGN_OR_RETURN(auto dry_run, r.opt_bool("DryRun"));
  out.dry_run = dry_run.value_or(false);
  return out;
}

kiln::json::FieldResult<LambdaUpdate> read_lambda_update_configuration(std::string_view body) {
  KILN_ASSIGN_OR_RETURN(json doc, parse_object(body));
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(doc, "", {"Role", "MemorySize", "Timeout",
                                                                     "Environment", "ImageConfig"}));
  KILN_TRY(r.check_unknown());
  KILN_ASSIGN_OR_RETURN(auto role, r.opt_string("Role", kText));
  (void)role;
  LambdaUpdate out;
  out.fields = json::object();
  KILN_TRY(read_image_config(r, out.fields));
  KILN_TRY(read_environment(r, out.fields));
  KILN_TRY(read_limits(r, out.fields));
  return out;
}

kiln::json::FieldResult<registry::FunctionConfig> merge_lambda_changes(std::string_view name,
                                                                       const registry::FunctionRecord* current,
                                                                       const nlohmann::json& changes) {
  json body = json::object();
  if (current) {
    // The stored form keeps what Lambda cannot name (credentials, vcpus, network...).
    auto doc = kiln::json::parse(registry::record_to_state_json(*current));
    if (!doc.ok() || !doc->contains("config")) return kiln::json::field_error("body", "unreadable function record");
    body = std::move((*doc)["config"]);
  }
  for (const auto& item : changes.items()) {
    if (item.value().is_null()) {
      body.erase(item.key());
    } else {
      body[item.key()] = item.value();
    }
  }
  body["name"] = std::string(name);
  registry::FieldError fe;
  auto config = registry::parse_function_config(name, kiln::json::dump(body), &fe);
  if (config.ok()) return std::move(*config);
  std::string reason = fe.message;
  if (reason.starts_with(fe.field + ": ")) reason.erase(0, fe.field.size() + 2);
  return kiln::json::field_error(lambda_parameter(fe.field), std::move(reason));
}

nlohmann::json lambda_function_configuration(const registry::FunctionRecord& r) {
  const registry::FunctionConfig& c = r.config;
  json j;
  j["FunctionName"] = c.name;
  j["FunctionArn"] = lambda_function_arn(r.tenant, c.name);
  j["PackageType"] = "Image";
  j["MemorySize"] = c.memory_mib;
  j["Timeout"] = c.timeout_ms == 0 ? 1 : (c.timeout_ms + 999) / 1000;  // Lambda counts whole seconds
  j["CodeSize"] = 0;
  j["Version"] = kLambdaLatest;
  j["LastModified"] = lambda_timestamp(r.updated_ms);
  if (!r.image.manifest_digest.empty()) j["CodeSha256"] = digest_hex(r.image.manifest_digest);
  if (!c.env.empty()) j["Environment"] = {{"Variables", c.env}};
  json ic = json::object();
  if (c.command) ic["EntryPoint"] = *c.command;
  if (c.args) ic["Command"] = *c.args;
  if (!c.working_dir.empty()) ic["WorkingDirectory"] = c.working_dir;
  if (!ic.empty()) j["ImageConfigResponse"] = {{"ImageConfig", ic}};
  j["Architectures"] = {lambda_host_architecture()};
  put_state(r.image, j);
  return j;
}

nlohmann::json lambda_get_function(const registry::FunctionRecord& r) {
  json code = {{"RepositoryType", "OCI"}, {"ImageUri", r.config.image}};
  auto ref = rootfs::parse_reference(r.config.image);
  if (ref.ok() && ref->transport == rootfs::Transport::kDocker && !r.image.manifest_digest.empty()) {
    code["ResolvedImageUri"] = ref->registry + "/" + ref->repository + "@" + r.image.manifest_digest;
  }
  return {{"Configuration", lambda_function_configuration(r)}, {"Code", code}};
}

std::string lambda_timestamp(std::uint64_t wall_ms) {
  // logs' RFC 3339 form (YYYY-MM-DDTHH:MM:SS.uuuuuuZ) cut to milliseconds, with Lambda's offset.
  return logs::format_timestamp(wall_ms * 1000000ull).substr(0, 23) + "+0000";
}

std::string lambda_event_time(std::int64_t unix_s) {
  const std::uint64_t ns = unix_s > 0 ? static_cast<std::uint64_t>(unix_s) * 1000000000ull : 0;
  return logs::format_timestamp(ns).substr(0, 19) + "Z";
}

std::string lambda_schedule_rule_arn(std::string_view tenant, std::string_view name, std::size_t index) {
  return std::string("arn:aws:events:") + kLambdaRegion + ":" + lambda_account(tenant) + ":rule/" +
         std::string(name) + "-schedule-" + std::to_string(index);
}

std::string lambda_scheduled_event(std::string_view tenant, std::string_view name, std::size_t index,
                                   std::string_view id, std::int64_t scheduled_s) {
  nlohmann::json j = {{"version", "0"},
                      {"id", id},
                      {"detail-type", "Scheduled Event"},
                      {"source", "aws.events"},
                      {"account", lambda_account(tenant)},
                      {"time", lambda_event_time(scheduled_s)},
                      {"region", kLambdaRegion},
                      {"resources", nlohmann::json::array({lambda_schedule_rule_arn(tenant, name, index)})},
                      {"detail", nlohmann::json::object()}};
  return j.dump();
}

}  // namespace kiln::kilnd::functions

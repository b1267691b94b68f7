// kilnd's HTTP API over the registry, image builds, pools, logs and metrics.
#include "src/daemon/daemon.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "rootfs-builder/builder/builder.h"
#include "src/invoke/guest_request.h"
#include "src/invoke/lambda.h"
#include "src/registry/atomic_file.h"

namespace kiln::kilnd::daemon {
namespace {

using nlohmann::json;
using server::Exchange;
using server::json_error;
using server::make_response;
using server::Response;

std::uint64_t wall_ms() { return logs::realtime_ns() / 1000000; }

// Metadata for one invocation of `record`: a fresh request id and the deadline from its timeout.
invoke::RequestMeta new_request_meta(const std::string& name, const registry::FunctionRecord& record) {
  invoke::RequestMeta meta;
  meta.request_id = invoke::new_request_id();
  meta.function = name;
  meta.version = record.version;
  meta.memory_mib = record.config.memory_mib;
  meta.timeout_ms = record.config.timeout_ms;
  meta.deadline_ms = wall_ms() + record.config.timeout_ms;
  return meta;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

std::string base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

http::status native_status(invoke::InvokeStatus s) {
  switch (s) {
    case invoke::InvokeStatus::kOk: return http::status::ok;
    case invoke::InvokeStatus::kQueueFull: return http::status::too_many_requests;
    case invoke::InvokeStatus::kStartFailed: return http::status::bad_gateway;
    case invoke::InvokeStatus::kTimeout: return http::status::gateway_timeout;
    case invoke::InvokeStatus::kCrash: return http::status::bad_gateway;
    case invoke::InvokeStatus::kResponseTooLarge: return http::status::bad_gateway;
    case invoke::InvokeStatus::kShuttingDown: return http::status::service_unavailable;
  }
  return http::status::internal_server_error;
}

// The pool's name, which starts its instance ids ("PREFIX-N-RANDOM"): kiln-vmm (like
// Firecracker) takes 1-64 of [A-Za-z0-9-] as --id, so '_' becomes '-' and the prefix stays
// short enough for the suffix; the random part keeps truncated prefixes apart.
constexpr std::size_t kMaxInstancePrefix = 40;
std::string instance_prefix(const registry::FunctionRecord& r) {
  std::string p = r.tenant.empty() ? r.config.name : r.tenant + "-" + r.config.name;
  std::replace(p.begin(), p.end(), '_', '-');
  if (p.size() > kMaxInstancePrefix) p.resize(kMaxInstancePrefix);
  return p;
}

// An admin picks the namespace (tenant) a request acts in with this header.
constexpr const char* kTenantHeader = "X-Kiln-Tenant";

// 401 with the challenge of RFC 6750 §3.
Response unauthorized(const server::Request& req, tenants::AuthStatus status) {
  bool invalid = status == tenants::AuthStatus::kInvalid;
  auto res = json_error(req, http::status::unauthorized, "unauthorized",
                        invalid ? "the bearer token is not valid"
                                : "this kilnd needs a bearer token (Authorization: Bearer TOKEN)");
  res.set(http::field::www_authenticate, invalid ? R"(Bearer realm="kiln", error="invalid_token")" : R"(Bearer realm="kiln")");
  return res;
}

// The one answer for a function the caller cannot see: missing, or another tenant's.
Response not_found(const server::Request& req, const std::string& name) {
  return json_error(req, http::status::not_found, "not_found", "no function named " + name);
}

// 429 for a tenant quota; invocations may retry (deploys wait for a delete instead).
Response quota_response(const server::Request& req, const std::string& quota, const std::string& message,
                        bool retry) {
  auto res = make_response(req, http::status::too_many_requests,
                           dump({{"error", "quota_exceeded"}, {"quota", quota}, {"message", message}}));
  if (retry) res.set(http::field::retry_after, "1");
  return res;
}

Response lambda_response(const server::Request& req, const invoke::LambdaReply& r, const std::string& request_id = "") {
  auto res = make_response(req, r.status, r.body, "");
  for (auto& [k, v] : r.headers) res.set(k, v);
  if (!request_id.empty()) res.set("x-amzn-RequestId", request_id);
  return res;
}

}  // namespace

ImageBuilder rootfs_image_builder(std::string cache_dir) {
  return [cache_dir](const registry::FunctionConfig& c,
                     const std::function<void(const registry::ImageStatus&)>& progress)
             -> Result<registry::ImageStatus> {
    rootfs::BuildRequest req;
    req.reference = c.image;
    req.cache_dir = cache_dir;
    req.tls_verify = c.tls_verify;
    if (!c.credentials.empty()) req.credentials = c.credentials.username + ":" + c.credentials.password;
    KILN_ASSIGN_OR_RETURN(rootfs::BuiltImage built, rootfs::build(req, [&progress](const rootfs::Progress& p) {
      registry::ImageStatus s;
      s.state = registry::ImageState::kBuilding;
      s.stage = p.stage;
      s.detail = p.detail;
      s.done = p.done;
      s.total = p.total;
      progress(s);
    }));
    registry::ImageStatus s;
    s.state = registry::ImageState::kReady;
    s.stage = "done";
    s.manifest_digest = built.manifest_digest.str();
    s.rootfs_path = built.image_path;
    s.entrypoint = built.config.entrypoint;
    s.cmd = built.config.cmd;
    s.env = built.config.env;
    s.working_dir = built.config.working_dir;
    s.user = built.config.user;
    return s;
  };
}

protocol::LaunchSpec make_launch_spec(const registry::FunctionRecord& r, const std::string& instance_id) {
  const auto& c = r.config;
  const auto& im = r.image;
  protocol::LaunchSpec spec;
  // Kubernetes semantics: `command` replaces the Entrypoint and drops the image's Cmd;
  // `args` replaces the Cmd.
  spec.argv = c.command ? *c.command : im.entrypoint;
  const auto& args = c.args ? *c.args : (c.command ? std::vector<std::string>{} : im.cmd);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  for (const auto& e : im.env) {
    auto eq = e.find('=');
    std::string k = e.substr(0, eq);
    if (!env.count(k)) order.push_back(k);
    env[k] = eq == std::string::npos ? "" : e.substr(eq + 1);
  }
  for (const auto& [k, v] : c.env) {
    if (!env.count(k)) order.push_back(k);
    env[k] = v;
  }
  for (const auto& k : order) spec.env.push_back(k + "=" + env[k]);
  spec.working_dir = !c.working_dir.empty() ? c.working_dir : (!im.working_dir.empty() ? im.working_dir : "/");
  spec.user = !c.user.empty() ? c.user : im.user;
  spec.hostname = c.name.size() <= 63 ? c.name : c.name.substr(0, 63);
  spec.instance_id = instance_id;
  return spec;
}

Daemon::Daemon(asio::io_context& io, DaemonOptions options, pool::VmBackend& backend, ImageBuilder builder)
    : io_(io),
      options_(std::move(options)),
      backend_(backend),
      builder_(std::move(builder)),
      auth_(options_.tenants),
      tick_timer_(io),
      log_flush_timer_(io) {
  metrics::declare_kilnd_metrics(metrics_);
  router_.add("GET", "/healthz", kHealth);
  router_.add("GET", "/metrics", kMetrics);
  router_.add("GET", "/v1/status", kStatus);
  router_.add("GET", "/v1/functions", kList);
  router_.add("PUT", "/v1/functions/{name}", kPut);
  router_.add("GET", "/v1/functions/{name}", kGet);
  router_.add("DELETE", "/v1/functions/{name}", kDelete);
  router_.add("POST", "/v1/functions/{name}/invoke", kInvoke);
  router_.add("*", "/v1/functions/{name}/http/{*path}", kWeb);
  router_.add("GET", "/v1/functions/{name}/logs", kLogs);
  router_.add("POST", "/2015-03-31/functions/{name}/invocations", kLambda);
}

Daemon::~Daemon() {
  alive_.reset();
  if (workers_) workers_->join();
}

Status Daemon::start() {
  started_ms_ = wall_ms();
  KILN_TRY(registry::make_dirs(options_.state_dir));
  KILN_ASSIGN_OR_RETURN(auto store, registry::FunctionStore::open(options_.state_dir + "/functions"));
  store_ = std::make_unique<registry::FunctionStore>(std::move(store));
  logs::LogStoreOptions lo = options_.logs;
  if (lo.dir.empty()) lo.dir = options_.state_dir + "/logs";
  KILN_TRY(registry::make_dirs(lo.dir));
  logs_dir_ = lo.dir;
  logs_ = std::make_unique<logs::LogStore>(lo);
  // Log files are written in batches, after the responses: one write per function for all the
  // lines of the last log_flush_interval (a START, END and REPORT per invocation would otherwise
  // cost two writes each); the destructor writes what is left.
  logs_->set_flush_scheduler([this, alive = std::weak_ptr<bool>(alive_)] {
    log_flush_timer_.expires_after(options_.log_flush_interval);
    log_flush_timer_.async_wait([this, alive](const beast::error_code& ec) {
      if (!ec && !alive.expired() && logs_) logs_->flush();
    });
  });
  workers_ = std::make_unique<asio::thread_pool>(1);

  std::vector<std::string> problems;
  KILN_ASSIGN_OR_RETURN(auto records, store_->load_all(&problems));
  for (const auto& p : problems) std::fprintf(stderr, "kilnd: skipping a function record: %s\n", p.c_str());
  for (auto& rec : records) {
    std::string key = rec.key();
    KILN_TRY(prepare_tenant_logs(rec.tenant));
    Function& f = functions_[key];
    f.record = std::move(rec);
    logs_->load(key);
    bool usable = f.record.image.state == registry::ImageState::kReady && !f.record.image.rootfs_path.empty() &&
                  ::access(f.record.image.rootfs_path.c_str(), R_OK) == 0;
    if (usable) {
      make_pool(f);
    } else if (f.record.image.state != registry::ImageState::kFailed) {
      start_build(key);  // interrupted, or the image vanished from the cache
    }
  }

  auto s = server::HttpServer::start(io_, options_.server, [this](Exchange& ex) { return handle(ex); });
  if (!s.ok()) return s.error();
  server_ = std::move(*s);
  tick();
  return ok_status();
}

void Daemon::set_tenants(std::optional<tenants::TenantsConfig> tenants) {
  options_.tenants = tenants;
  auth_ = tenants::Authenticator(std::move(tenants));
  for (auto& [key, f] : functions_) {
    if (f.pool) make_pool(f);  // new settings for the same version
  }
}

void Daemon::tick() {
  if (stopping_) return;
  for (auto& [name, f] : functions_) {
    if (f.pool) f.pool->tick();
  }
  update_gauges();
  tick_timer_.expires_after(options_.tick_interval);
  std::weak_ptr<bool> alive = alive_;
  tick_timer_.async_wait([this, alive](const beast::error_code& ec) {
    if (!ec && !alive.expired()) tick();
  });
}

void Daemon::update_gauges() {
  const pool::SnapshotStats snaps = backend_.snapshot_stats();
  metrics_.set(metrics::kSnapshots, {{"event", "created"}}, static_cast<double>(snaps.created));
  metrics_.set(metrics::kSnapshots, {{"event", "restored"}}, static_cast<double>(snaps.restores));
  metrics_.set(metrics::kSnapshots, {{"event", "create_failed"}}, static_cast<double>(snaps.create_failures));
  metrics_.set(metrics::kSnapshots, {{"event", "load_failed"}}, static_cast<double>(snaps.load_failures));
  metrics_.set(metrics::kParkedVmms, {{"state", "starting"}}, static_cast<double>(snaps.parked_starting));
  metrics_.set(metrics::kParkedVmms, {{"state", "ready"}}, static_cast<double>(snaps.parked_ready));
  metrics_.set(metrics::kLogMemory, {}, static_cast<double>(logs_->memory_bytes()));
  metrics_.clear(metrics::kInstances);
  metrics_.clear(metrics::kQueueDepth);
  for (auto& [name, f] : functions_) {
    if (!f.pool) continue;
    auto s = f.pool->stats();
    metrics_.set(metrics::kQueueDepth, {{"function", name}}, static_cast<double>(s.queued));
    metrics_.set(metrics::kInstances, {{"function", name}, {"state", "starting"}}, static_cast<double>(s.starting));
    metrics_.set(metrics::kInstances, {{"function", name}, {"state", "idle"}}, static_cast<double>(s.ready));
    metrics_.set(metrics::kInstances, {{"function", name}, {"state", "busy"}}, static_cast<double>(s.busy));
    metrics_.set(metrics::kInstances, {{"function", name}, {"state", "stopping"}}, static_cast<double>(s.stopping));
  }
}

pool::PoolSettings Daemon::pool_settings(const registry::FunctionRecord& r) const {
  const registry::FunctionConfig& c = r.config;
  pool::PoolSettings s;
  s.concurrency = c.concurrency;
  s.min_instances = c.min_instances;
  s.max_instances = c.max_instances;
  // No function of a tenant runs more instances than the tenant may have in all.
  if (const tenants::Quotas* q = quotas_of(r.tenant); q && q->max_instances) {
    s.max_instances = std::max<std::uint32_t>(1, std::min(s.max_instances, *q->max_instances));
    s.min_instances = std::min(s.min_instances, s.max_instances);
  }
  s.max_queue = c.max_queue;
  s.idle_timeout = std::chrono::seconds(c.idle_timeout_s);
  s.start_timeout = options_.start_timeout;
  s.heartbeat_interval = options_.heartbeat_interval;
  return s;
}

void Daemon::make_pool(Function& f) {
  registry::FunctionRecord rec = f.record;
  auto factory = [rec](const std::string& id) {
    pool::InstanceSpec spec;
    spec.instance_id = id;
    spec.function = rec.config.name;
    spec.function_version = rec.version;
    spec.launch = make_launch_spec(rec, id);
    spec.rootfs_path = rec.image.rootfs_path;
    spec.memory_mib = rec.config.memory_mib;
    spec.vcpus = rec.config.vcpus;
    return spec;
  };
  f.pool_version = rec.version;
  if (f.pool) {
    f.pool->update(pool_settings(rec), factory, rec.version);
    return;
  }
  const std::string name = rec.key();
  pool::PoolHooks hooks;
  hooks.log = [this, name](const std::string& instance, const protocol::LogEvent& e) {
    auto it = functions_.find(name);
    std::string request;
    std::uint64_t ts = e.ts_ns;
    if (it != functions_.end()) {
      ts = it->second.windows.host_time(instance, e.ts_ns, logs::realtime_ns());  // one clock for every line
      // kiln-init's word when it names a request sent to this instance; else the stamp decides.
      request = it->second.windows.served(instance, e.request_id) ? e.request_id
                                                                   : it->second.windows.attribute(instance, ts);
    }
    logs::LogEntry entry;
    entry.ts_ns = ts;
    entry.instance_id = instance;
    entry.request_id = request;
    entry.source = e.stream == protocol::LogStream::kStderr ? logs::LogSource::kStderr : logs::LogSource::kStdout;
    entry.text = e.data;
    logs_->append(name, std::move(entry));
  };
  hooks.event = [this, name](const std::string& instance, const std::string& text) {
    platform_log(name, instance, "", text);
  };
  hooks.cold_start = [this, name] { metrics_.inc(metrics::kColdStarts, {{"function", name}}); };
  f.pool = std::make_shared<pool::FunctionPool>(instance_prefix(rec), pool_settings(rec), backend_, factory, rec.version,
                                                &pool::Clock::now, hooks);
  f.pool->tick();  // min_instances
}

void Daemon::persist(const Function& f) {
  if (auto st = store_->save(f.record); !st.ok()) {
    std::fprintf(stderr, "kilnd: saving %s: %s\n", f.record.config.name.c_str(), st.error().message.c_str());
  }
}

void Daemon::platform_log(const std::string& function, const std::string& instance, const std::string& request,
                          const std::string& text) {
  logs::LogEntry e;
  e.instance_id = instance;
  e.request_id = request;
  e.source = logs::LogSource::kPlatform;
  e.text = text;
  logs_->append(function, std::move(e));
}

void Daemon::start_build(const std::string& name) {  // `name`: the function's key
  Function& f = functions_.at(name);
  std::uint64_t gen = next_generation_++;
  f.build_generation = gen;
  f.record.image = registry::ImageStatus{};
  f.record.image.state = registry::ImageState::kBuilding;
  f.record.image.stage = "queued";
  persist(f);
  platform_log(name, "", "", "preparing image " + f.record.config.image);
  registry::FunctionConfig config = f.record.config;
  std::weak_ptr<bool> alive = alive_;
  auto progress = [this, alive, name, gen](const registry::ImageStatus& s) {
    asio::post(io_, [this, alive, name, gen, s] {
      if (alive.expired()) return;
      auto it = functions_.find(name);
      if (it == functions_.end() || it->second.build_generation != gen) return;
      auto& im = it->second.record.image;
      im.stage = s.stage;
      im.detail = s.detail;
      im.done = s.done;
      im.total = s.total;
    });
  };
  asio::post(*workers_, [this, alive, name, gen, config, progress] {
    Result<registry::ImageStatus> r = builder_(config, progress);
    asio::post(io_, [this, alive, name, gen, r = std::move(r)]() mutable {
      if (alive.expired()) return;
      auto it = functions_.find(name);
      if (it == functions_.end() || it->second.build_generation != gen) return;
      Function& fn = it->second;
      if (r.ok()) {
        fn.record.image = std::move(r.value());
        fn.record.image.state = registry::ImageState::kReady;
        platform_log(name, "", "", "image ready: " + fn.record.image.manifest_digest);
      } else {
        fn.record.image.state = registry::ImageState::kFailed;
        fn.record.image.reason = r.error().message;
        platform_log(name, "", "", "image preparation failed: " + r.error().message);
      }
      persist(fn);
      if (fn.record.image.state == registry::ImageState::kReady && !stopping_) make_pool(fn);
    });
  });
}

asio::awaitable<void> Daemon::handle(Exchange& ex) {
  auto& req = ex.request();
  auto target = server::parse_target(std::string_view(req.target().data(), req.target().size()));
  if (!target) {
    {
      Response r_ = json_error(req, http::status::bad_request, "bad_target", "malformed request target");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  server::RouteMatch m;
  auto st = router_.match(sv(req.method_string()), target->raw_path, &m);
  Caller caller;
  if (st != server::MatchStatus::kFound || m.route != kHealth) {  // /healthz stays open
    auto auth = auth_.authenticate(sv(req[http::field::authorization]), ex.from_unix_socket());
    if (auth.status != tenants::AuthStatus::kOk) {
      Response r_ = unauthorized(req, auth.status);
      co_await ex.respond(std::move(r_));
      co_return;
    }
    if (auto refused = resolve_caller(req, std::move(auth.principal), &caller)) {
      Response r_ = std::move(*refused);
      co_await ex.respond(std::move(r_));
      co_return;
    }
  }
  if (st == server::MatchStatus::kNotFound) {
    {
      Response r_ = json_error(req, http::status::not_found, "not_found", "no such route: " + target->path);
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  if (st == server::MatchStatus::kMethodNotAllowed) {
    auto res = json_error(req, http::status::method_not_allowed, "method_not_allowed",
                          std::string(req.method_string()) + " is not allowed on " + target->path);
    std::string allow;
    for (auto& a : router_.allowed(target->raw_path)) allow += (allow.empty() ? "" : ", ") + a;
    res.set(http::field::allow, allow);
    co_await ex.respond(std::move(res));
    co_return;
  }
  std::string name = m.params.count("name") ? m.params["name"] : "";
  if (m.route != kHealth && m.route != kMetrics && m.route != kStatus && m.route != kList) {
    if (auto problem = registry::function_name_problem(name)) {
      Response r_ = m.route == kLambda
                        ? lambda_response(req, invoke::lambda_service_error(invoke::LambdaServiceError::kInvalidParameterValue,
                                                                             "invalid function name: " + *problem))
                        : json_error(req, http::status::bad_request, "invalid_field", "name: " + *problem, "name");
      co_await ex.respond(std::move(r_));
      co_return;
    }
  }
  switch (m.route) {
    case kHealth:
      {
      Response r_ = make_response(req, http::status::ok, dump({{"status", stopping_ ? "stopping" : "ok"}}));
      co_await ex.respond(std::move(r_));
    }
      co_return;
    case kMetrics:
      if (!caller.principal.admin) {
        Response r_ = json_error(req, http::status::forbidden, "forbidden", "only an admin may read /metrics");
        co_await ex.respond(std::move(r_));
        co_return;
      }
      update_gauges();
      {
      Response r_ = make_response(req, http::status::ok, metrics_.render(), "text/plain; version=0.0.4");
      co_await ex.respond(std::move(r_));
    }
      co_return;
    case kStatus:
      {
      Response r_ = status_json(req, caller);
      co_await ex.respond(std::move(r_));
    }
      co_return;
    case kList: {
      Response r_ = list_json(req, caller);
      co_await ex.respond(std::move(r_));
      co_return;
    }
    case kPut:
      co_await handle_put(ex, caller, name);
      co_return;
    case kGet: {
      Function* f = find_function(caller, name);
      Response r_ = f ? function_json(req, *f) : not_found(req, name);
      co_await ex.respond(std::move(r_));
      co_return;
    }
    case kDelete:
      co_await handle_delete(ex, caller, name);
      co_return;
    case kInvoke:
      co_await handle_invoke(ex, caller, name, std::string(), std::string(), false);
      co_return;
    case kWeb: {
      // Forward the path as sent (undecoded): what follows /v1/functions/{name}/http.
      std::string rest = "/" + m.params["path"];
      co_await handle_invoke(ex, caller, name, rest, target->raw_query, true);
      co_return;
    }
    case kLogs:
      co_await handle_logs(ex, caller, name, *target);
      co_return;
    case kLambda:
      co_await handle_lambda(ex, caller, name);
      co_return;
    default:
      break;
  }
  {
      Response r_ = json_error(req, http::status::not_found, "not_found", "no such route");
      co_await ex.respond(std::move(r_));
    }
}

std::optional<Response> Daemon::resolve_caller(const server::Request& req, tenants::Principal principal,
                                               Caller* out) const {
  out->tenant = principal.tenant;
  out->all = principal.admin;
  std::string_view as = sv(req[kTenantHeader]);
  if (!as.empty() && as != principal.tenant) {
    if (!principal.admin) {
      return json_error(req, http::status::forbidden, "forbidden",
                        std::string("only an admin may act for another tenant (") + kTenantHeader + ")");
    }
    if (!registry::valid_tenant_name(as)) {
      return json_error(req, http::status::bad_request, "invalid_field",
                        std::string(kTenantHeader) + ": must be 1-32 characters of [a-z0-9-], starting with a letter or digit",
                        kTenantHeader);
    }
    out->tenant = std::string(as);
    out->all = false;
  }
  out->principal = std::move(principal);
  return std::nullopt;
}

Daemon::Function* Daemon::find_function(const Caller& caller, const std::string& name) {
  auto it = functions_.find(registry::function_key(caller.tenant, name));
  return it == functions_.end() ? nullptr : &it->second;
}

const tenants::Quotas* Daemon::quotas_of(const std::string& tenant) const {
  const tenants::Tenant* t = tenant.empty() ? nullptr : auth_.find(tenant);
  return t && !t->admin ? &t->quotas : nullptr;
}

std::optional<Daemon::QuotaRefusal> Daemon::deploy_refusal(const std::string& tenant, const registry::FunctionConfig& c,
                                                           bool created) const {
  const tenants::Quotas* q = quotas_of(tenant);
  if (!q) return std::nullopt;
  std::size_t count = 0;
  std::uint64_t min_instances = c.min_instances;
  for (const auto& [key, f] : functions_) {
    if (f.record.tenant != tenant) continue;
    ++count;
    if (f.record.config.name != c.name) min_instances += f.record.config.min_instances;
  }
  if (created && q->max_functions && count >= *q->max_functions) {
    return QuotaRefusal{"max_functions", "quota exceeded: tenant " + tenant + " already has " + std::to_string(count) +
                                             " functions (max_functions " + std::to_string(*q->max_functions) + ")"};
  }
  if (q->max_instances && min_instances > *q->max_instances) {
    return QuotaRefusal{"max_instances", "quota exceeded: min_instances over tenant " + tenant + "'s functions would be " +
                                             std::to_string(min_instances) + " (max_instances " +
                                             std::to_string(*q->max_instances) + ")"};
  }
  return std::nullopt;
}

std::size_t Daemon::tenant_instances(const std::string& tenant) const {
  std::size_t n = 0;
  for (const auto& [key, f] : functions_) {
    if (f.record.tenant != tenant || !f.pool) continue;
    auto s = f.pool->stats();
    n += s.starting + s.ready + s.busy;
  }
  return n;
}

bool Daemon::needs_new_instance(const Function& f) {
  if (!f.pool) return false;
  std::uint32_t concurrency = f.pool->settings().concurrency;
  for (const auto& i : f.pool->instances()) {
    if (i->state == pool::InstanceState::kReady && i->version == f.pool_version && i->in_flight < concurrency) {
      return false;
    }
  }
  auto s = f.pool->stats();
  return s.starting * concurrency <= s.queued;  // starting instances cannot take this one either
}

std::optional<Daemon::QuotaRefusal> Daemon::admit(const Function& f, Slot* slot) {
  const tenants::Quotas* q = quotas_of(f.record.tenant);
  if (!q) return std::nullopt;
  const std::string& t = f.record.tenant;
  // The pool has no hook to ask before it starts an instance: an invocation that would need a
  // new one is refused while the tenant is at its instance quota.
  if (q->max_instances && needs_new_instance(f)) {
    std::size_t n = tenant_instances(t);
    if (n >= *q->max_instances) {
      return QuotaRefusal{"max_instances", "quota exceeded: tenant " + t + " already runs " + std::to_string(n) +
                                               " instances (max_instances " + std::to_string(*q->max_instances) + ")"};
    }
  }
  auto s = limiter_.try_acquire(t, q->max_concurrent_invocations);
  if (!s) {
    return QuotaRefusal{"max_concurrent_invocations",
                        "quota exceeded: tenant " + t + " already has " + std::to_string(limiter_.in_flight(t)) +
                            " invocations in flight (max_concurrent_invocations " +
                            std::to_string(*q->max_concurrent_invocations) + ")"};
  }
  *slot = std::move(*s);
  return std::nullopt;
}

Status Daemon::prepare_tenant_logs(const std::string& tenant) {
  if (tenant.empty()) return ok_status();
  return registry::make_dirs(logs_dir_ + "/" + tenant);  // the logs of "TENANT/NAME"
}

asio::awaitable<void> Daemon::handle_put(Exchange& ex, const Caller& caller, const std::string& name) {
  auto& req = ex.request();
  if (stopping_) {
    {
      Response r_ = json_error(req, http::status::service_unavailable, "stopping", "kilnd is shutting down");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  registry::FieldError fe;
  auto config = registry::parse_function_config(name, req.body(), &fe);
  if (!config.ok()) {
    http::status st = fe.field == "body" && req.body().size() > registry::kMaxConfigBytes
                          ? http::status::payload_too_large
                          : http::status::bad_request;
    {
      Response r_ = json_error(req, st, "invalid_field", fe.message, fe.field);
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  const std::string key = registry::function_key(caller.tenant, name);
  bool created = functions_.count(key) == 0;
  if (auto refusal = deploy_refusal(caller.tenant, *config, created)) {
    Response r_ = quota_response(req, refusal->quota, refusal->message, false);
    co_await ex.respond(std::move(r_));
    co_return;
  }
  if (auto s = prepare_tenant_logs(caller.tenant); !s.ok()) {
    Response r_ = json_error(req, http::status::internal_server_error, "state", s.error().message);
    co_await ex.respond(std::move(r_));
    co_return;
  }
  Function& f = functions_[key];
  bool rebuild = created || f.record.config.image != config->image ||
                 f.record.config.credentials.username != config->credentials.username ||
                 f.record.config.credentials.password != config->credentials.password ||
                 f.record.config.tls_verify != config->tls_verify ||
                 f.record.image.state == registry::ImageState::kFailed;
  std::uint64_t now = wall_ms();
  if (created) {
    f.record.tenant = caller.tenant;
    f.record.created_ms = now;
    f.record.version = 1;
  } else {
    ++f.record.version;
  }
  f.record.updated_ms = now;
  f.record.config = std::move(*config);
  if (rebuild) {
    start_build(key);  // persists
  } else {
    persist(f);
    if (f.record.image.state == registry::ImageState::kReady) make_pool(f);
  }
  json body = registry::record_to_api_json(f.record);
  {
      Response r_ = make_response(req, created ? http::status::created : http::status::ok, dump(body));
      co_await ex.respond(std::move(r_));
    }
}

asio::awaitable<void> Daemon::handle_delete(Exchange& ex, const Caller& caller, const std::string& name) {
  auto& req = ex.request();
  auto it = functions_.find(registry::function_key(caller.tenant, name));
  if (it == functions_.end()) {
    Response r_ = not_found(req, name);
    co_await ex.respond(std::move(r_));
    co_return;
  }
  if (auto s = store_->remove(name, caller.tenant); !s.ok()) {
    {
      Response r_ = json_error(req, http::status::internal_server_error, "state", s.error().message);
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  if (auto p = it->second.pool) {
    draining_.insert(p);
    std::weak_ptr<bool> alive = alive_;
    p->shutdown([this, alive, p] {
      asio::post(io_, [this, alive, p] {
        if (!alive.expired()) draining_.erase(p);
      });
    });
  }
  std::string key = it->first;
  functions_.erase(it);
  logs_->remove(key);
  {
    Response r_ = make_response(req, http::status::no_content, "", "");
    co_await ex.respond(std::move(r_));
  }
}

Response Daemon::list_json(const server::Request& req, const Caller& caller) {
  json list = json::array();
  for (auto& [key, f] : functions_) {
    if (!caller.sees(f.record)) continue;
    auto s = f.pool ? f.pool->stats() : pool::PoolStats{};
    json e = {{"name", f.record.config.name},
              {"image", f.record.config.image},
              {"state", registry::image_state_name(f.record.image.state)},
              {"version", f.record.version},
              {"instances", s.starting + s.ready + s.busy},
              {"queued", s.queued}};
    if (!f.record.tenant.empty()) e["tenant"] = f.record.tenant;
    list.push_back(std::move(e));
  }
  return make_response(req, http::status::ok, dump({{"functions", list}}));
}

Response Daemon::function_json(const server::Request& req, const Function& f) {
  json j = registry::record_to_api_json(f.record);
  json inst = json::array();
  json pool = nullptr;
  if (f.pool) {
    for (const auto& i : f.pool->instances()) {
      inst.push_back({{"id", i->id},
                      {"state", i->state == pool::InstanceState::kReady && i->in_flight > 0
                                    ? "busy"
                                    : pool::instance_state_name(i->state)},
                      {"in_flight", i->in_flight},
                      {"served", i->served},
                      {"version", i->version}});
    }
    auto s = f.pool->stats();
    pool = {{"starting", s.starting}, {"idle", s.ready}, {"busy", s.busy}, {"stopping", s.stopping},
            {"queued", s.queued}, {"cold_starts", s.cold_starts}, {"start_failures", s.start_failures},
            {"replaced", s.replaced}};
  }
  j["instances"] = inst;
  j["pool"] = pool;
  return make_response(req, http::status::ok, dump(j));
}

Response Daemon::status_json(const server::Request& req, const Caller& caller) {
  std::size_t functions = 0, instances = 0, queued = 0;
  std::map<std::string, std::size_t> states;
  for (auto& [key, f] : functions_) {
    if (!caller.sees(f.record)) continue;
    ++functions;
    ++states[registry::image_state_name(f.record.image.state)];
    if (!f.pool) continue;
    auto s = f.pool->stats();
    instances += s.starting + s.ready + s.busy;
    queued += s.queued;
  }
  json j = {{"version", options_.version},
            {"uptime_ms", wall_ms() - started_ms_},
            {"functions", functions},
            {"functions_by_state", states},
            {"instances", instances},
            {"queued", queued},
            {"stopping", stopping_}};
  if (caller.principal.admin) j["state_dir"] = options_.state_dir;
  if (auth_.enabled()) {
    j["tenant"] = caller.principal.name;
    if (!caller.principal.admin) j["invocations_in_flight"] = limiter_.in_flight(caller.tenant);
  }
  return make_response(req, http::status::ok, dump(j));
}

asio::awaitable<Daemon::Invocation> Daemon::run_invocation(std::string name, invoke::GuestRequest guest,
                                                           std::string request_id, std::string kind,
                                                           [[maybe_unused]] Slot slot) {
  Invocation inv;
  inv.request_id = request_id;
  auto found = functions_.find(name);
  if (found == functions_.end() || !found->second.pool) {  // deleted before it could run
    inv.result.status = invoke::InvokeStatus::kShuttingDown;
    inv.result.detail = "function " + name + " was removed";
    co_return inv;
  }
  Function& f = found->second;
  std::shared_ptr<pool::FunctionPool> pool = f.pool;
  const std::uint32_t memory = f.record.config.memory_mib;
  invoke::InvokeOptions opts;
  opts.timeout = std::chrono::milliseconds(f.record.config.timeout_ms);
  invoke::InvokeHooks hooks;
  bool* leased = &inv.leased;
  hooks.leased = [this, name, request_id, leased](const std::string& instance) {
    *leased = true;
    platform_log(name, instance, request_id, logs::format_start(request_id, "$LATEST"));
    auto it = functions_.find(name);
    if (it != functions_.end()) it->second.windows.begin(instance, request_id, logs::realtime_ns());
  };
  hooks.released = [this, name, request_id](const std::string& instance) {
    auto it = functions_.find(name);
    if (it != functions_.end()) it->second.windows.end(instance, request_id, logs::realtime_ns());
  };
  metrics_.inc(metrics::kInvocations, {{"function", name}, {"kind", kind}});
  auto t0 = std::chrono::steady_clock::now();
  inv.result = co_await invoke::invoke(pool, std::move(guest), opts, hooks);
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.observe(metrics::kDuration, {{"function", name}}, total_s);
  const auto& r = inv.result;
  bool function_error = r.status == invoke::InvokeStatus::kOk && r.response.result_int() >= 500;
  if (r.status != invoke::InvokeStatus::kOk || function_error) {
    metrics_.inc(metrics::kErrors,
                 {{"function", name}, {"kind", function_error ? "function_error" : invoke::invoke_status_name(r.status)}});
  }
  if (functions_.count(name) == 0) co_return inv;  // deleted meanwhile: its logs are gone
  if (inv.leased) {
    if (r.status != invoke::InvokeStatus::kOk) platform_log(name, r.instance_id, request_id, "ERROR " + r.detail);
    platform_log(name, r.instance_id, request_id, logs::format_end(request_id));
    logs::ReportInfo rep;
    rep.request_id = request_id;
    rep.duration_ms = r.duration_ms;
    rep.memory_mib = memory;
    rep.max_memory_used_mib = r.max_memory_mib;
    if (r.cold_start) rep.init_duration_ms = r.init_duration_ms;
    if (r.status != invoke::InvokeStatus::kOk) rep.status = invoke::invoke_status_name(r.status);
    platform_log(name, r.instance_id, request_id, logs::format_report(rep));
  } else if (r.status != invoke::InvokeStatus::kOk) {
    platform_log(name, "", request_id, "ERROR RequestId: " + request_id + " " + r.detail);
  }
  co_return inv;
}

asio::awaitable<void> Daemon::handle_invoke(Exchange& ex, const Caller& caller, const std::string& name,
                                            std::string web_path, std::string raw_query, bool web) {
  auto& req = ex.request();
  const std::string key = registry::function_key(caller.tenant, name);
  auto it = functions_.find(key);
  if (it == functions_.end()) {
    Response r_ = not_found(req, name);
    co_await ex.respond(std::move(r_));
    co_return;
  }
  if (stopping_) {
    {
      Response r_ = json_error(req, http::status::service_unavailable, "stopping", "kilnd is shutting down");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  if (!it->second.pool) {
    const auto& im = it->second.record.image;
    auto res = json_error(req, http::status::service_unavailable, "not_ready",
                          "function " + name + " is not ready: image " + registry::image_state_name(im.state) +
                              (im.reason.empty() ? "" : " (" + im.reason + ")"));
    res.set(http::field::retry_after, "1");
    co_await ex.respond(std::move(res));
    co_return;
  }
  if (req.body().size() > invoke::kMaxPayloadBytes) {
    {
      Response r_ = json_error(req, http::status::payload_too_large, "payload_too_large",
                                   "payload larger than 6 MiB (" + std::to_string(invoke::kMaxPayloadBytes) + " bytes)");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  Slot slot;
  if (auto refusal = admit(it->second, &slot)) {
    Response r_ = quota_response(req, refusal->quota, refusal->message, true);
    co_await ex.respond(std::move(r_));
    co_return;
  }
  invoke::RequestMeta meta = new_request_meta(name, it->second.record);
  invoke::GuestRequest guest = web ? invoke::make_web_request(meta, req, web_path, raw_query)
                                   : invoke::make_event_request(meta, req.body(),
                                                                std::string(req[http::field::content_type]));
  Invocation inv = co_await run_invocation(key, std::move(guest), meta.request_id, web ? "web" : "event", std::move(slot));
  const auto& r = inv.result;
  Response res;
  if (r.status == invoke::InvokeStatus::kOk) {
    res = invoke::forward_response(r.response, req.version());
    res.keep_alive(req.keep_alive());
  } else {
    json body = {{"error", invoke::invoke_status_name(r.status)}, {"message", r.detail}, {"request_id", inv.request_id}};
    if (!r.instance_id.empty()) body["instance_id"] = r.instance_id;
    res = make_response(req, native_status(r.status), dump(body));
    if (r.status == invoke::InvokeStatus::kQueueFull) res.set(http::field::retry_after, "1");
  }
  res.set("X-Kiln-Request-Id", inv.request_id);
  if (!r.instance_id.empty()) res.set("X-Kiln-Instance-Id", r.instance_id);
  if (inv.leased) res.set("X-Kiln-Cold-Start", r.cold_start ? "1" : "0");
  co_await ex.respond(std::move(res));
}

asio::awaitable<void> Daemon::handle_lambda(Exchange& ex, const Caller& caller, const std::string& name) {
  auto& req = ex.request();
  auto reply = [&req](const invoke::LambdaReply& r, const std::string& request_id) {
    return lambda_response(req, r, request_id);
  };
  const std::string key = registry::function_key(caller.tenant, name);
  auto it = functions_.find(key);
  if (it == functions_.end()) {
    {
      Response r_ = reply(invoke::lambda_service_error(invoke::LambdaServiceError::kResourceNotFound,
                                                           "Function not found: " + name),
                              "");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  if (req.body().size() > invoke::kMaxPayloadBytes) {
    {
      Response r_ = reply(invoke::lambda_service_error(
                                  invoke::LambdaServiceError::kRequestTooLarge,
                                  "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
                              "");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  auto type = invoke::parse_invocation_type(sv(req["X-Amz-Invocation-Type"]));
  if (!type) {
    {
      Response r_ = reply(invoke::lambda_service_error(invoke::LambdaServiceError::kInvalidParameterValue,
                                                           "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun"),
                              "");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  std::string payload = req.body().empty() ? "{}" : req.body();
  if (json::parse(payload, nullptr, false).is_discarded()) {
    {
      Response r_ = reply(invoke::lambda_service_error(invoke::LambdaServiceError::kInvalidRequestContent,
                                                           "Could not parse request body into json"),
                              "");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  if (!it->second.pool || stopping_) {
    {
      Response r_ = reply(invoke::lambda_service_error(
                                  invoke::LambdaServiceError::kResourceConflict,
                                  std::string("The operation cannot be performed at this time. The function is currently in the following state: ") +
                                      (stopping_ ? "Stopping" : registry::image_state_name(it->second.record.image.state))),
                              "");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  if (*type == invoke::InvocationType::kDryRun) {
    {
      Response r_ = make_response(req, http::status::no_content, "", "");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  Slot slot;
  if (auto refusal = admit(it->second, &slot)) {
    Response r_ = reply(invoke::lambda_service_error(invoke::LambdaServiceError::kTooManyRequests, refusal->message), "");
    co_await ex.respond(std::move(r_));
    co_return;
  }
  invoke::RequestMeta meta = new_request_meta(name, it->second.record);
  invoke::GuestRequest guest = invoke::make_event_request(meta, payload, "application/json");
  if (*type == invoke::InvocationType::kEvent) {
    // Asynchronous: accepted now, run in the background (errors land in the logs); it holds
    // its quota slot until it ends.
    std::weak_ptr<bool> alive = alive_;
    asio::co_spawn(io_, run_invocation(key, std::move(guest), meta.request_id, "lambda", std::move(slot)),
                   [alive](std::exception_ptr, Invocation) {});
    auto res = make_response(req, http::status::accepted, "", "");
    res.set("x-amzn-RequestId", meta.request_id);
    co_await ex.respond(std::move(res));
    co_return;
  }
  Invocation inv = co_await run_invocation(key, std::move(guest), meta.request_id, "lambda", std::move(slot));
  auto res = reply(invoke::lambda_from_result(inv.result, inv.request_id), inv.request_id);
  if (beast::iequals(req["X-Amz-Log-Type"], "Tail") && functions_.count(key)) {
    logs::LogQuery q;
    q.request_id = inv.request_id;
    std::string tail;
    for (const auto& e : logs_->query(key, q)) tail += e.text + "\n";
    if (tail.size() > 4096) tail = tail.substr(tail.size() - 4096);  // Lambda: the last 4 KB
    res.set("X-Amz-Log-Result", base64(tail));
  }
  co_await ex.respond(std::move(res));
}

asio::awaitable<void> Daemon::handle_logs(Exchange& ex, const Caller& caller, const std::string& name,
                                          server::Target target) {
  auto& req = ex.request();
  const std::string key = registry::function_key(caller.tenant, name);
  if (!functions_.count(key)) {
    Response r_ = not_found(req, name);
    co_await ex.respond(std::move(r_));
    co_return;
  }
  logs::LogQuery q;
  if (auto s = target.query.find("since"); s != target.query.end()) {
    auto ts = logs::parse_timestamp(s->second);
    if (!ts) {
      {
      Response r_ = json_error(req, http::status::bad_request, "invalid_field",
                                     "since: must be RFC 3339 UTC (2026-01-02T03:04:05Z) or ms since the epoch", "since");
      co_await ex.respond(std::move(r_));
    }
      co_return;
    }
    q.since_ns = *ts;
  }
  if (auto s = target.query.find("request_id"); s != target.query.end()) q.request_id = s->second;
  if (auto s = target.query.find("limit"); s != target.query.end()) {
    char* end = nullptr;
    unsigned long v = std::strtoul(s->second.c_str(), &end, 10);
    if (s->second.empty() || *end != '\0' || v == 0 || v > 100000) {
      {
      Response r_ = json_error(req, http::status::bad_request, "invalid_field",
                                     "limit: must be an integer from 1 to 100000", "limit");
      co_await ex.respond(std::move(r_));
    }
      co_return;
    }
    q.limit = v;
  }
  bool as_json = target.query.count("format") && target.query["format"] == "json";
  bool follow = target.query.count("follow") && target.query["follow"] != "0" && target.query["follow"] != "false";
  auto entries = logs_->query(key, q);
  auto render = [as_json](const logs::LogEntry& e) {
    return as_json ? logs::render_json_line(e)
                   : logs::render_text(e) + "\n";
  };
  if (!follow) {
    std::string body;
    for (const auto& e : entries) body += render(e);
    {
      Response r_ = make_response(req, http::status::ok, std::move(body),
                                      as_json ? "application/x-ndjson" : "text/plain; charset=utf-8");
      co_await ex.respond(std::move(r_));
    }
    co_return;
  }
  // follow: what matched so far, then new lines as they arrive, until the client leaves, the
  // function is deleted or kilnd stops.
  std::string stream_type = as_json ? "application/x-ndjson" : "text/plain; charset=utf-8";
  bool started = co_await ex.start_stream(http::status::ok, stream_type);
  if (!started) {
    co_return;
  }
  std::string first;
  for (const auto& e : entries) first += render(e);
  std::uint64_t last_seq = entries.empty() ? logs_->last_seq(key) : entries.back().seq;
  if (!first.empty()) {
    bool written = co_await ex.write_chunk(std::move(first));
    if (!written) co_return;
  }
  auto wake = std::make_shared<asio::steady_timer>(io_);
  auto pending = std::make_shared<std::vector<logs::LogEntry>>();
  std::string request_filter = q.request_id;
  std::uint64_t sub = logs_->subscribe(key, [wake, pending, request_filter](const logs::LogEntry& e) {
    if (!request_filter.empty() && e.request_id != request_filter) return;
    pending->push_back(e);
    wake->cancel();
  });
  (void)last_seq;
  while (!stopping_ && functions_.count(key)) {
    if (pending->empty()) {
      wake->expires_after(std::chrono::seconds(1));  // also notices stop/delete promptly
      beast::error_code ec;
      co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    std::string chunk;
    for (const auto& e : *pending) chunk += render(e);
    pending->clear();
    bool written = co_await ex.write_chunk(std::move(chunk));
    if (!written) break;
  }
  logs_->unsubscribe(sub);
  co_await ex.end_stream();
}

void Daemon::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  shutdown_done_ = std::move(done);
  tick_timer_.cancel();
  // 1. Stop accepting; in-flight requests finish (bounded by drain_timeout), then 2. stop VMs.
  pending_stops_ = 1;
  auto drained = std::make_shared<bool>(false);
  auto timer = std::make_shared<asio::steady_timer>(io_, options_.drain_timeout);
  std::weak_ptr<bool> alive = alive_;
  auto stop_pools = [this, alive, drained, timer] {
    if (alive.expired() || *drained) return;
    *drained = true;
    timer->cancel();
    for (auto& [n, f] : functions_) {
      if (!f.pool) continue;
      ++pending_stops_;
      f.pool->shutdown([this, alive] {
        asio::post(io_, [this, alive] {
          if (!alive.expired()) finish_shutdown();
        });
      });
    }
    for (auto& p : draining_) {
      ++pending_stops_;
      p->shutdown([this, alive] {
        asio::post(io_, [this, alive] {
          if (!alive.expired()) finish_shutdown();
        });
      });
    }
    finish_shutdown();
  };
  timer->async_wait([stop_pools](const beast::error_code& ec) {
    if (!ec) stop_pools();
  });
  if (server_) {
    server_->stop(stop_pools);
  } else {
    stop_pools();
  }
}

void Daemon::finish_shutdown() {
  if (pending_stops_ > 0) --pending_stops_;
  if (pending_stops_ == 0 && shutdown_done_) {
    auto done = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    done();
  }
}

}  // namespace kiln::kilnd::daemon

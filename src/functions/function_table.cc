// The functions kilnd serves: records, image builds, pools and the attribution of guest output.
#include "src/functions/function_table.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "common/clock.h"
#include "src/functions/lambda_runtime.h"
#include "src/net/instance_networks.h"
#include "src/registry/atomic_file.h"
#include "src/registry/launch_spec.h"
#include "src/schedule/schedule.h"

namespace kiln::kilnd::functions {
namespace {

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

// Whether a new deploy of `next` over `current` needs its image prepared again.
bool image_source_changed(const registry::FunctionRecord& current, const registry::FunctionConfig& next) {
  const registry::FunctionConfig& c = current.config;
  return c.image != next.image || c.credentials.username != next.credentials.username ||
         c.credentials.password != next.credentials.password || c.tls_verify != next.tls_verify ||
         current.image.state == registry::ImageState::kFailed;
}

}  // namespace

std::optional<net::EgressPolicy> instance_network(const registry::FunctionConfig& config,
                                                  const std::optional<net::NetworkDefaults>& defaults) {
  if (!defaults) return std::nullopt;
  net::EgressPolicy policy = net::resolve_policy(config.network.value_or(net::NetworkSettings{}), *defaults);
  if (!net::needs_interface(policy)) return std::nullopt;
  return policy;
}

pool::InstanceSpec make_instance_spec(const registry::FunctionRecord& record, const std::string& id,
                                      const std::optional<net::NetworkDefaults>& network_defaults,
                                      const std::string& lazy_socket) {
  pool::InstanceSpec spec;
  spec.instance_id = id;
  spec.function = record.config.name;
  spec.function_version = record.version;
  spec.launch = registry::make_launch_spec(record, id);
  // How the command takes invocations (HTTP on its port, or Lambda's Runtime API served by
  // kiln-init): part of the launch spec, so of the snapshot key.
  functions::apply_runtime_api(spec.launch, record);
  spec.rootfs_path = record.image.rootfs_path;
  if (record.image.lazy) {
    spec.rootfs_nbd_socket = lazy_socket;
    spec.rootfs_index_digest = record.image.lazy->index_digest;
  }
  spec.memory_mib = record.config.memory_mib;
  spec.vcpus = record.config.vcpus;
  spec.network = instance_network(record.config, network_defaults);
  // What kiln-init configures in the guest: part of the launch spec, so of the snapshot key
  // (a restored guest keeps the address, gateway and DNS it was snapshotted with).
  if (spec.network) spec.launch.net = net::guest_network_spec(*spec.network);
  return spec;
}

std::optional<registry::FieldError> network_refusal(const registry::FunctionConfig& config,
                                                    const std::optional<net::NetworkDefaults>& defaults) {
  if (!config.network || defaults) return std::nullopt;
  return registry::FieldError{"network", "network: kilnd runs without instance networks (--network off)"};
}

std::optional<registry::FieldError> schedule_refusal(const registry::FunctionConfig& config, bool allow_seconds) {
  if (allow_seconds) return std::nullopt;
  for (std::size_t i = 0; i < config.schedules.size(); ++i) {
    if (schedule::parse(config.schedules[i]).ok()) continue;
    std::string field = "schedule[" + std::to_string(i) + "]";
    return registry::FieldError{field, field + ": rate(N seconds) is for tests only (kilnd --allow-second-schedules)"};
  }
  return std::nullopt;
}

FunctionTable::FunctionTable(asio::io_context& io, FunctionTableOptions options, pool::VmBackend& backend,
                             registry::ImageBuilder builder, registry::FunctionStore& store, logs::LogStore& logs,
                             metrics::Metrics& metrics, const tenants::Authenticator& auth)
    : io_(io),
      options_(std::move(options)),
      backend_(backend),
      builder_(std::move(builder)),
      store_(store),
      logs_(logs),
      metrics_(metrics),
      auth_(auth) {}

FunctionTable::~FunctionTable() {
  alive_.reset();
  workers_->join();
}

Status FunctionTable::load(std::vector<registry::FunctionRecord> records) {
  for (auto& rec : records) {
    std::string key = rec.key();
    KILN_TRY(prepare_tenant_logs(rec.tenant));
    Function& f = functions_[key];
    f.record = std::move(rec);
    logs_.load(key);
    const registry::ImageStatus& im = f.record.image;
    // A lazy image needs its stored index; a built one its ext4 file.
    const std::string& needed = im.lazy ? im.lazy->index_path : im.rootfs_path;
    bool usable = im.state == registry::ImageState::kReady && !needed.empty() && ::access(needed.c_str(), R_OK) == 0;
    if (usable) {
      make_pool(f);
    } else if (im.state != registry::ImageState::kFailed) {
      start_build(key);  // interrupted, or the image vanished from the cache
    }
    if (on_change_) on_change_(key, &f.record);
  }
  return ok_status();
}

Function* FunctionTable::find(const std::string& key) {
  auto it = functions_.find(key);
  return it == functions_.end() ? nullptr : &it->second;
}

Result<const Function*> FunctionTable::deploy(const std::string& tenant, registry::FunctionConfig config,
                                              bool* created) {
  KILN_TRY(prepare_tenant_logs(tenant));
  const std::string key = registry::function_key(tenant, config.name);
  *created = functions_.count(key) == 0;
  Function& f = functions_[key];
  bool rebuild = *created || image_source_changed(f.record, config);
  std::uint64_t now = wall_ms();
  if (*created) {
    f.record.tenant = tenant;
    f.record.created_ms = now;
    f.record.version = 1;
  } else {
    ++f.record.version;
  }
  f.record.updated_ms = now;
  f.record.config = std::move(config);
  if (rebuild) {
    start_build(key);  // persists
  } else {
    persist(f);
    if (f.record.image.state == registry::ImageState::kReady) make_pool(f);
  }
  if (on_change_) on_change_(key, &f.record);
  return &f;
}

Status FunctionTable::remove(const std::string& key) {
  auto it = functions_.find(key);
  if (it == functions_.end()) return ok_status();
  const registry::FunctionRecord& r = it->second.record;
  KILN_TRY(store_.remove(r.config.name, r.tenant));
  if (auto p = it->second.pool) {
    draining_.insert(p);
    std::weak_ptr<bool> alive = alive_;
    asio::io_context& io = io_;
    p->shutdown([this, &io, alive, p] {
      asio::post(io, [this, alive, p] {
        if (!alive.expired()) draining_.erase(p);
      });
    });
  }
  if (it->second.record.image.lazy && options_.release_lazy) options_.release_lazy(key);
  functions_.erase(it);
  logs_.remove(key);
  if (on_change_) on_change_(key, nullptr);
  return ok_status();
}

const tenants::Quotas* FunctionTable::quotas_of(const std::string& tenant) const {
  const tenants::Tenant* t = tenant.empty() ? nullptr : auth_.find(tenant);
  return t && !t->admin ? &t->quotas : nullptr;
}

std::size_t FunctionTable::tenant_instances(const std::string& tenant) const {
  std::size_t n = 0;
  for (const auto& [key, f] : functions_) {
    if (f.record.tenant != tenant || !f.pool) continue;
    auto s = f.pool->stats();
    n += s.starting + s.ready + s.busy;
  }
  return n;
}

void FunctionTable::platform_log(const std::string& key, const std::string& instance, const std::string& request,
                                 const std::string& text) {
  logs::LogEntry e;
  e.instance_id = instance;
  e.request_id = request;
  e.source = logs::LogSource::kPlatform;
  e.text = text;
  logs_.append(key, std::move(e));
}

void FunctionTable::guest_log(const std::string& key, const std::string& instance, const protocol::LogEvent& e) {
  std::string request;
  std::uint64_t ts = e.ts_ns;
  if (Function* f = find(key)) {
    // Within the instance's budget, or dropped and counted (reported by report_log_drops).
    const std::uint64_t now = kiln::monotonic_ns();  // a wall-clock step neither refills nor drains a budget
    const bool kept = f->log_budget.admit(instance, e.data.size(), now);
    metrics_.inc(metrics::kGuestLogLines, {{"function", key}, {"outcome", kept ? "kept" : "dropped"}});
    report_log_drops(key, *f, now);
    if (!kept) return;
    ts = f->windows.host_time(instance, e.ts_ns, kiln::realtime_ns());  // one clock for every line
    // kiln-init's word when it names a request sent to this instance; else the stamp decides.
    request = f->windows.served(instance, e.request_id) ? e.request_id : f->windows.attribute(instance, ts);
  }
  logs::LogEntry entry;
  entry.ts_ns = ts;
  entry.instance_id = instance;
  entry.request_id = request;
  entry.source = e.stream == protocol::LogStream::kStderr ? logs::LogSource::kStderr : logs::LogSource::kStdout;
  entry.text = e.data;
  logs_.append(key, std::move(entry));
}

void FunctionTable::report_log_drops(const std::string& key, Function& f, std::uint64_t now_ns) {
  for (const auto& d : f.log_budget.drops(now_ns)) {
    const auto& o = f.log_budget.options();
    platform_log(key, d.instance, "",
                 "[kiln] " + std::to_string(d.lines) + " log lines dropped (over the instance's log budget: " +
                     std::to_string(o.lines_per_s) + " lines/s, " + std::to_string(o.bytes_per_s / 1024) + " KiB/s)");
  }
}

void FunctionTable::tick() {
  const std::uint64_t now = kiln::monotonic_ns();  // a wall-clock step neither refills nor drains a budget
  for (auto& [key, f] : functions_) {
    report_log_drops(key, f, now);  // the last drops of an output burst that has ended
    if (f.pool) f.pool->tick();
  }
}

void FunctionTable::apply_quotas() {
  for (auto& [key, f] : functions_) {
    if (f.pool) make_pool(f);  // new settings for the same version
  }
}

void FunctionTable::publish_gauges() {
  const pool::SnapshotStats snaps = backend_.snapshot_stats();
  metrics_.set(metrics::kSnapshots, {{"event", "created"}}, static_cast<double>(snaps.created));
  metrics_.set(metrics::kSnapshots, {{"event", "restored"}}, static_cast<double>(snaps.restores));
  metrics_.set(metrics::kSnapshots, {{"event", "create_failed"}}, static_cast<double>(snaps.create_failures));
  metrics_.set(metrics::kSnapshots, {{"event", "load_failed"}}, static_cast<double>(snaps.load_failures));
  metrics_.set(metrics::kParkedVmms, {{"state", "starting"}}, static_cast<double>(snaps.parked_starting));
  metrics_.set(metrics::kParkedVmms, {{"state", "ready"}}, static_cast<double>(snaps.parked_ready));
  metrics_.set(metrics::kLogMemory, {}, static_cast<double>(logs_.memory_bytes()));
  metrics_.clear(metrics::kInstances);
  metrics_.clear(metrics::kQueueDepth);
  for (auto& [key, f] : functions_) {
    if (!f.pool) continue;
    auto s = f.pool->stats();
    metrics_.set(metrics::kQueueDepth, {{"function", key}}, static_cast<double>(s.queued));
    metrics_.set(metrics::kInstances, {{"function", key}, {"state", "starting"}}, static_cast<double>(s.starting));
    metrics_.set(metrics::kInstances, {{"function", key}, {"state", "idle"}}, static_cast<double>(s.ready));
    metrics_.set(metrics::kInstances, {{"function", key}, {"state", "busy"}}, static_cast<double>(s.busy));
    metrics_.set(metrics::kInstances, {{"function", key}, {"state", "stopping"}}, static_cast<double>(s.stopping));
  }
}

void FunctionTable::stop_pools(std::function<void()> done) {
  struct Pending {
    std::size_t count = 1;  // the pools below, and this call
    std::function<void()> done;
  };
  auto pending = std::make_shared<Pending>(Pending{1, std::move(done)});
  auto one_stopped = [pending] {
    if (pending->count > 0 && --pending->count == 0 && pending->done) std::exchange(pending->done, nullptr)();
  };
  std::weak_ptr<bool> alive = alive_;
  asio::io_context& io = io_;
  auto stop = [&](const std::shared_ptr<pool::FunctionPool>& p) {
    ++pending->count;
    p->shutdown([&io, alive, one_stopped] {
      asio::post(io, [alive, one_stopped] {
        if (!alive.expired()) one_stopped();
      });
    });
  };
  for (auto& [key, f] : functions_) {
    if (f.pool) stop(f.pool);
  }
  for (const auto& p : draining_) stop(p);
  one_stopped();
}

pool::PoolSettings FunctionTable::pool_settings(const registry::FunctionRecord& r) const {
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

void FunctionTable::make_pool(Function& f) {
  registry::FunctionRecord rec = f.record;
  if (auto problem = network_refusal(rec.config, options_.network)) {
    // A record from a run with instance networks: it stays stored, but never runs without them.
    platform_log(rec.key(), "", "", "not started: " + problem->message);
    return;
  }
  std::string lazy_socket;
  if (rec.image.lazy) {
    Result<std::string> served = options_.serve_lazy ? options_.serve_lazy(rec.key(), rec)
                                                     : Result<std::string>(make_error("kilnd runs without lazy images"));
    if (!served.ok()) {
      platform_log(rec.key(), "", "", "not started: its lazy root disk: " + served.error().message);
      return;
    }
    lazy_socket = *served;
  }
  auto factory = [rec, network = options_.network, lazy_socket](const std::string& id) {
    return make_instance_spec(rec, id, network, lazy_socket);
  };
  f.pool_version = rec.version;
  if (f.pool) {
    f.pool->update(pool_settings(rec), factory, rec.version);
    return;
  }
  const std::string key = rec.key();
  pool::PoolHooks hooks;
  // Lines of a deleted function's instances (still stopping) are dropped: its logs are gone,
  // and a function made again under its name starts with an empty log.
  std::weak_ptr<const bool> owner = f.token;
  hooks.log = [this, key, owner](const std::string& instance, const protocol::LogEvent& e) {
    if (!owner.expired()) guest_log(key, instance, e);
  };
  hooks.event = [this, key, owner](const std::string& instance, const std::string& text) {
    if (!owner.expired()) platform_log(key, instance, "", text);
  };
  hooks.cold_start = [this, key] { metrics_.inc(metrics::kColdStarts, {{"function", key}}); };
  f.pool = std::make_shared<pool::FunctionPool>(instance_prefix(rec), pool_settings(rec), backend_, factory,
                                                rec.version, &pool::Clock::now, hooks);
  f.pool->tick();  // min_instances
}

void FunctionTable::start_build(const std::string& key) {
  Function& f = functions_.at(key);
  std::uint64_t gen = next_generation_++;
  f.build_generation = gen;
  f.record.image = registry::ImageStatus{};
  f.record.image.state = registry::ImageState::kBuilding;
  f.record.image.stage = "queued";
  persist(f);
  platform_log(key, "", "", "preparing image " + f.record.config.image);
  registry::FunctionConfig config = f.record.config;
  std::weak_ptr<bool> alive = alive_;
  // Results count only for the build they belong to (a redeploy starts a new generation).
  auto progress = [this, alive, key, gen](const registry::ImageStatus& s) {
    asio::post(io_, [this, alive, key, gen, s] {
      if (alive.expired()) return;
      Function* fn = find(key);
      if (!fn || fn->build_generation != gen) return;
      auto& im = fn->record.image;
      im.stage = s.stage;
      im.detail = s.detail;
      im.done = s.done;
      im.total = s.total;
    });
  };
  asio::post(*workers_, [this, alive, key, gen, config, progress] {
    Result<registry::ImageStatus> r = builder_(config, progress);
    asio::post(io_, [this, alive, key, gen, r = std::move(r)]() mutable {
      if (alive.expired()) return;
      Function* fn = find(key);
      if (!fn || fn->build_generation != gen) return;
      if (r.ok()) {
        fn->record.image = std::move(r.value());
        fn->record.image.state = registry::ImageState::kReady;
        platform_log(key, "", "", "image ready: " + fn->record.image.manifest_digest);
      } else {
        fn->record.image.state = registry::ImageState::kFailed;
        fn->record.image.reason = r.error().message;
        platform_log(key, "", "", "image preparation failed: " + r.error().message);
      }
      persist(*fn);
      if (fn->record.image.state == registry::ImageState::kReady && !stopping_) make_pool(*fn);
    });
  });
}

Status FunctionTable::prepare_tenant_logs(const std::string& tenant) {
  if (tenant.empty()) return ok_status();
  return registry::make_dirs(options_.logs_dir + "/" + tenant);  // the logs of "TENANT/NAME"
}

void FunctionTable::persist(const Function& f) {
  if (auto st = store_.save(f.record); !st.ok()) {
    std::fprintf(stderr, "kilnd: saving %s: %s\n", f.record.config.name.c_str(), st.error().message.c_str());
  }
}

}  // namespace kiln::kilnd::functions

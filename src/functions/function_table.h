// FunctionTable: the functions kilnd serves, by registry key (registry::function_key: NAME in
// the admin namespace, TENANT/NAME otherwise): each one's record, image build, instance pool and
// the request windows that attribute its guest output. Single-threaded (kilnd's loop); image
// builds run on one worker thread and report back through the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "src/logs/log_budget.h"
#include "src/logs/log_store.h"
#include "src/logs/request_windows.h"
#include "src/metrics/metrics.h"
#include "src/net/network_settings.h"
#include "src/pool/function_pool.h"
#include "src/registry/function_config.h"
#include "src/registry/function_store.h"
#include "src/registry/image_builder.h"
#include "src/server/net.h"
#include "src/tenants/authenticator.h"

namespace kiln::kilnd::functions {

// Wall-clock milliseconds since the epoch (records' times, deadlines, uptime).
inline std::uint64_t wall_ms() { return kiln::realtime_ns() / 1000000; }

struct Function {
  registry::FunctionRecord record;
  std::shared_ptr<pool::FunctionPool> pool;  // none until its image is ready
  std::uint64_t pool_version = 0;  // the version the pool serves
  std::uint64_t build_generation = 0;  // the build whose result counts
  // Per instance, the recent requests' windows (to attribute guest log lines by their stamps).
  logs::RequestWindows windows;
  // Per instance, how many more guest output lines it may add (over it: dropped and counted).
  logs::LogBudget log_budget;
  // Lives as long as this entry: the hooks of its pools hold it weakly (a deleted function's
  // draining instances, or one made again under the same name, are told apart).
  std::shared_ptr<const bool> token = std::make_shared<const bool>(true);
};

struct FunctionTableOptions {
  std::chrono::milliseconds start_timeout{60000};  // spawn to ready for one instance
  std::chrono::milliseconds heartbeat_interval{5000};
  std::string logs_dir;  // a tenant's logs live in <logs_dir>/<tenant>/
  // The operator's network defaults (kilnd --network-config). nullopt: kilnd runs without
  // instance networks (--network off): no instance gets an interface, and a function whose
  // config names `network` is refused (it must never run without the network it asked for).
  std::optional<net::NetworkDefaults> network;
  // kilnd --allow-second-schedules (tests only): deploys may schedule rate(N seconds).
  bool allow_second_schedules = false;
  // Lazy root disks (docs/lazy-images.md): serves the disk of a record whose image is lazy,
  // keeping its chunks in the host's cache for function `key`, and returns the socket of its NBD
  // server; release_lazy(key) lets them go when the function goes. Unset: kilnd runs without
  // lazy images (its image builder then makes none; a lazy record left by another run is not
  // started).
  std::function<Result<std::string>(const std::string& key, const registry::FunctionRecord&)> serve_lazy;
  std::function<void(const std::string& key)> release_lazy;
};

// The network of `config`'s instances: its `network` over the operator's `defaults`; nullopt
// (loopback only) when kilnd runs without instance networks or the policy reaches nothing.
std::optional<net::EgressPolicy> instance_network(const registry::FunctionConfig& config,
                                                  const std::optional<net::NetworkDefaults>& defaults);
// "schedule[I]: rate(N seconds) is for tests only (kilnd --allow-second-schedules)" for the
// first such schedule of `config` unless `allow_seconds`, else nullopt.
std::optional<registry::FieldError> schedule_refusal(const registry::FunctionConfig& config, bool allow_seconds);
// What instance `id` of `record` runs with (the pool's instance factory); `lazy_socket` is the
// NBD server of its lazy root disk (a lazy image only).
pool::InstanceSpec make_instance_spec(const registry::FunctionRecord& record, const std::string& id,
                                      const std::optional<net::NetworkDefaults>& network_defaults,
                                      const std::string& lazy_socket = {});
// "network: kilnd runs without instance networks (--network off)" for a config that names
// `network` when there are no `defaults`, else nullopt.
std::optional<registry::FieldError> network_refusal(const registry::FunctionConfig& config,
                                                    const std::optional<net::NetworkDefaults>& defaults);

class FunctionTable {
 public:
  FunctionTable(asio::io_context& io, FunctionTableOptions options, pool::VmBackend& backend,
                registry::ImageBuilder builder, registry::FunctionStore& store, logs::LogStore& logs,
                metrics::Metrics& metrics, const tenants::Authenticator& auth);
  ~FunctionTable();
  FunctionTable(const FunctionTable&) = delete;
  FunctionTable& operator=(const FunctionTable&) = delete;

  // Takes the records a previous run saved: a pool for each ready image still on disk, a new
  // build for an interrupted one (or one whose image left the cache).
  Status load(std::vector<registry::FunctionRecord> records);

  Function* find(const std::string& key);
  const std::map<std::string, Function>& functions() const { return functions_; }

  // Creates (*created) or updates the function `config.name` of `tenant`: a new version; its
  // image is built again when its source changed or failed before, else its pool takes the new
  // settings. Errors: the tenant's log directory could not be made.
  Result<const Function*> deploy(const std::string& tenant, registry::FunctionConfig config, bool* created);
  // Forgets `key` (its record file and logs); its pool stops in the background.
  Status remove(const std::string& key);

  // Why this kilnd cannot run `config` as asked (a 400 naming the field), or nullopt.
  std::optional<registry::FieldError> deploy_problem(const registry::FunctionConfig& config) const {
    if (auto n = network_refusal(config, options_.network)) return n;
    return schedule_refusal(config, options_.allow_second_schedules);
  }

  // Told of every record loaded or deployed, and of every removal (record nullptr): kilnd's
  // timer triggers follow the functions' schedules through it.
  using ChangeListener = std::function<void(const std::string& key, const registry::FunctionRecord* record)>;
  void set_change_listener(ChangeListener listener) { on_change_ = std::move(listener); }

  // Quotas of the tenant that owns a namespace (nullptr: none, e.g. the admin namespace).
  const tenants::Quotas* quotas_of(const std::string& tenant) const;
  // Live instances (starting, idle, busy) over every function of `tenant`.
  std::size_t tenant_instances(const std::string& tenant) const;

  // A platform line (START, END, image progress...) in the log of `key`.
  void platform_log(const std::string& key, const std::string& instance, const std::string& request,
                    const std::string& text);

  void tick();  // each pool's periodic work
  void apply_quotas();  // the tenants changed: every pool takes its settings again
  void publish_gauges();  // instances, queues, snapshots, log memory into the metrics

  // kilnd is stopping: no new pools, invocations and deploys are refused.
  void begin_stopping() { stopping_ = true; }
  bool stopping() const { return stopping_; }
  // Stops every pool (also deleted functions' pools still draining); done() once all stopped.
  void stop_pools(std::function<void()> done);

 private:
  void start_build(const std::string& key);
  void make_pool(Function& f);
  pool::PoolSettings pool_settings(const registry::FunctionRecord& r) const;
  // Attributes a guest output line of `instance` to a request and appends it to the log of `key`.
  void guest_log(const std::string& key, const std::string& instance, const protocol::LogEvent& e);
  // One "[kiln] N log lines dropped" platform line per instance whose budget dropped lines
  // (at most one per instance per second).
  void report_log_drops(const std::string& key, Function& f, std::uint64_t now_ns);
  Status prepare_tenant_logs(const std::string& tenant);
  void persist(const Function& f);

  asio::io_context& io_;
  FunctionTableOptions options_;
  pool::VmBackend& backend_;
  registry::ImageBuilder builder_;
  registry::FunctionStore& store_;
  logs::LogStore& logs_;
  metrics::Metrics& metrics_;
  const tenants::Authenticator& auth_;
  std::map<std::string, Function> functions_;  // by key
  std::set<std::shared_ptr<pool::FunctionPool>> draining_;  // deleted functions' pools stopping
  std::unique_ptr<asio::thread_pool> workers_ = std::make_unique<asio::thread_pool>(1);  // image builds
  std::uint64_t next_generation_ = 1;
  ChangeListener on_change_;
  bool stopping_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::functions

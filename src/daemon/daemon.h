// Daemon: kilnd itself. Wires the HTTP API (functions, invocations, logs, metrics, health) to
// the function registry, image preparation, instance pools, logs and metrics; owns the state
// directory; shuts down gracefully (stop accepting, drain, stop VMs).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/result.h"
#include "src/invoke/invoker.h"
#include "src/logs/log_store.h"
#include "src/logs/request_windows.h"
#include "src/metrics/metrics.h"
#include "src/pool/function_pool.h"
#include "src/registry/function_config.h"
#include "src/registry/function_store.h"
#include "src/server/http_server.h"
#include "src/server/router.h"
#include "src/tenants/authenticator.h"
#include "src/tenants/concurrency_limiter.h"

namespace kiln::kilnd::daemon {

// Turns a function's image reference into a rootfs (runs on a worker thread; `progress` may
// be called from that thread, kilnd posts it back to its loop).
using ImageBuilder = std::function<Result<registry::ImageStatus>(
    const registry::FunctionConfig& config, const std::function<void(const registry::ImageStatus&)>& progress)>;

// The production builder: rootfs-builder's build() with its cache under `cache_dir`.
ImageBuilder rootfs_image_builder(std::string cache_dir);

struct DaemonOptions {
  std::string state_dir;
  server::ServerOptions server;
  std::chrono::milliseconds tick_interval{250};
  std::chrono::milliseconds heartbeat_interval{5000};
  // Spawn to ready for one instance (the backend's API + boot allowances, and a first snapshot).
  std::chrono::milliseconds start_timeout{60000};
  std::chrono::milliseconds drain_timeout{30000};  // SIGTERM: how long in-flight work may take
  logs::LogStoreOptions logs;  // dir defaults to <state_dir>/logs
  // Log lines reach their files in one write per function at most this long after the first of
  // them (every line is in memory, for queries and followers, at once). 0: on the next loop turn.
  std::chrono::milliseconds log_flush_interval{50};
  // --tenants FILE: bearer tokens and quotas. nullopt: every request is the implicit admin.
  std::optional<tenants::TenantsConfig> tenants;
  std::string version = "0.1.0";
};

// The launch spec for one instance: image config with the function's overrides.
protocol::LaunchSpec make_launch_spec(const registry::FunctionRecord& record, const std::string& instance_id);

class Daemon {
 public:
  Daemon(asio::io_context& io, DaemonOptions options, pool::VmBackend& backend, ImageBuilder builder);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loads the state directory, restarts image preparation where needed, starts listening.
  Status start();
  // Graceful: stop accepting, let in-flight requests finish (bounded), stop every VM.
  void shutdown(std::function<void()> done);

  // Replaces the tenants (kilnd on SIGHUP): new tokens and quotas apply from the next request;
  // invocations in flight keep their slots; each pool's instance cap follows the new quotas.
  void set_tenants(std::optional<tenants::TenantsConfig> tenants);

  std::uint16_t tcp_port() const { return server_ ? server_->tcp_port() : 0; }
  metrics::Metrics& metrics() { return metrics_; }
  logs::LogStore& logs() { return *logs_; }

 private:
  struct Function {
    registry::FunctionRecord record;
    std::shared_ptr<pool::FunctionPool> pool;
    std::uint64_t pool_version = 0;  // the version the pool serves
    std::uint64_t build_generation = 0;
    // per instance, the recent requests' windows (to attribute guest log lines by their stamps)
    logs::RequestWindows windows;
  };
  enum Route : int {
    kHealth, kMetrics, kStatus, kList, kPut, kGet, kDelete, kInvoke, kWeb, kLogs, kLambda,
  };

  // Who a request acts as and in which namespace (tenant) its function names live.
  struct Caller {
    tenants::Principal principal;
    std::string tenant;
    bool all = false;  // an admin in its own namespace: listings show every tenant's functions
    bool sees(const registry::FunctionRecord& r) const { return all || r.tenant == tenant; }
  };
  // A quota that refuses a request (429).
  struct QuotaRefusal {
    std::string quota;
    std::string message;
  };
  using Slot = tenants::ConcurrencyLimiter::Slot;

  asio::awaitable<void> handle(server::Exchange& ex);
  asio::awaitable<void> handle_put(server::Exchange& ex, const Caller& caller, const std::string& name);
  asio::awaitable<void> handle_delete(server::Exchange& ex, const Caller& caller, const std::string& name);
  asio::awaitable<void> handle_invoke(server::Exchange& ex, const Caller& caller, const std::string& name,
                                      std::string web_path, std::string raw_query, bool web);
  asio::awaitable<void> handle_lambda(server::Exchange& ex, const Caller& caller, const std::string& name);
  asio::awaitable<void> handle_logs(server::Exchange& ex, const Caller& caller, const std::string& name,
                                    server::Target target);
  // The caller of an authenticated request (X-Kiln-Tenant picks an admin's namespace), or the
  // error answer.
  std::optional<server::Response> resolve_caller(const server::Request& req, tenants::Principal principal,
                                                 Caller* out) const;
  server::Response status_json(const server::Request& req, const Caller& caller);
  server::Response list_json(const server::Request& req, const Caller& caller);
  server::Response function_json(const server::Request& req, const Function& f);
  Function* find_function(const Caller& caller, const std::string& name);

  // Quotas of the tenant that owns a namespace (nullptr: none, e.g. the admin namespace).
  const tenants::Quotas* quotas_of(const std::string& tenant) const;
  std::optional<QuotaRefusal> deploy_refusal(const std::string& tenant, const registry::FunctionConfig& c,
                                             bool created) const;
  // Admits one invocation of `f` under its owner's quotas: nullopt with *slot held, or why not.
  std::optional<QuotaRefusal> admit(const Function& f, Slot* slot);
  std::size_t tenant_instances(const std::string& tenant) const;
  static bool needs_new_instance(const Function& f);

  struct Invocation {
    invoke::InvokeResult result;
    std::string request_id;
    bool leased = false;
  };
  // `key`: the function's registry::function_key. `slot` is held until the invocation ends.
  // (By value: an asynchronous Lambda invocation outlives the request that started it.)
  asio::awaitable<Invocation> run_invocation(std::string key, invoke::GuestRequest guest, std::string request_id,
                                             std::string kind, Slot slot);

  void start_build(const std::string& key);
  void make_pool(Function& f);
  pool::PoolSettings pool_settings(const registry::FunctionRecord& r) const;
  Status prepare_tenant_logs(const std::string& tenant);
  void persist(const Function& f);
  void platform_log(const std::string& function, const std::string& instance, const std::string& request,
                    const std::string& text);
  void tick();
  void update_gauges();
  void finish_shutdown();

  asio::io_context& io_;
  DaemonOptions options_;
  pool::VmBackend& backend_;
  ImageBuilder builder_;
  std::unique_ptr<registry::FunctionStore> store_;
  std::unique_ptr<logs::LogStore> logs_;
  std::string logs_dir_;
  tenants::Authenticator auth_;
  tenants::ConcurrencyLimiter limiter_;
  metrics::Metrics metrics_;
  server::Router router_;
  std::unique_ptr<server::HttpServer> server_;
  std::map<std::string, Function> functions_;  // by registry::function_key
  std::set<std::shared_ptr<pool::FunctionPool>> draining_;  // deleted functions' pools stopping
  std::unique_ptr<asio::thread_pool> workers_;
  asio::steady_timer tick_timer_;
  asio::steady_timer log_flush_timer_;
  std::uint64_t next_generation_ = 1;
  std::uint64_t started_ms_ = 0;
  bool stopping_ = false;
  std::size_t pending_stops_ = 0;
  std::function<void()> shutdown_done_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::daemon

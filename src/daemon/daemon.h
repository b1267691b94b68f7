// Daemon: kilnd itself. Wires the HTTP API (functions, invocations, logs, metrics, health) to
// the function registry, image preparation, instance pools, logs and metrics; owns the state
// directory; shuts down gracefully (stop accepting, drain, stop VMs).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/result.h"
#include "src/invoke/invoker.h"
#include "src/logs/log_store.h"
#include "src/metrics/metrics.h"
#include "src/pool/function_pool.h"
#include "src/registry/function_config.h"
#include "src/registry/function_store.h"
#include "src/server/http_server.h"
#include "src/server/router.h"

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
  std::chrono::milliseconds drain_timeout{30000};  // SIGTERM: how long in-flight work may take
  logs::LogStoreOptions logs;  // dir defaults to <state_dir>/logs
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

  std::uint16_t tcp_port() const { return server_ ? server_->tcp_port() : 0; }
  metrics::Metrics& metrics() { return metrics_; }
  logs::LogStore& logs() { return *logs_; }

 private:
  struct Function {
    registry::FunctionRecord record;
    std::shared_ptr<pool::FunctionPool> pool;
    std::uint64_t build_generation = 0;
    // instance id -> request ids in flight there (to attribute guest log lines)
    std::map<std::string, std::set<std::string>> in_flight;
    // instance id -> the last request it served (lines that trail its END belong to it)
    std::map<std::string, std::string> last_request;
  };
  enum Route : int {
    kHealth, kMetrics, kStatus, kList, kPut, kGet, kDelete, kInvoke, kWeb, kLogs, kLambda,
  };

  asio::awaitable<void> handle(server::Exchange& ex);
  asio::awaitable<void> handle_put(server::Exchange& ex, const std::string& name);
  asio::awaitable<void> handle_invoke(server::Exchange& ex, const std::string& name, std::string web_path,
                                      std::string raw_query, bool web);
  asio::awaitable<void> handle_lambda(server::Exchange& ex, const std::string& name);
  asio::awaitable<void> handle_logs(server::Exchange& ex, const std::string& name, server::Target target);
  server::Response status_json(const server::Request& req);
  server::Response function_json(const server::Request& req, const Function& f);

  struct Invocation {
    invoke::InvokeResult result;
    std::string request_id;
    bool leased = false;
  };
  asio::awaitable<Invocation> run_invocation(const std::string& name, invoke::GuestRequest guest,
                                             std::string request_id, const std::string& kind);

  void start_build(const std::string& name);
  void make_pool(Function& f);
  pool::PoolSettings pool_settings(const registry::FunctionConfig& c) const;
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
  metrics::Metrics metrics_;
  server::Router router_;
  std::unique_ptr<server::HttpServer> server_;
  std::map<std::string, Function> functions_;
  std::set<std::shared_ptr<pool::FunctionPool>> draining_;  // deleted functions' pools stopping
  std::unique_ptr<asio::thread_pool> workers_;
  asio::steady_timer tick_timer_;
  std::uint64_t next_generation_ = 1;
  std::uint64_t started_ms_ = 0;
  bool stopping_ = false;
  std::size_t pending_stops_ = 0;
  std::function<void()> shutdown_done_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::daemon

// Daemon: kilnd itself, the wiring only. Owns the state directory's stores, the function table,
// the invocation service, the timer triggers and the API handlers, adds each route to the
// dispatcher, serves HTTP, ticks the pools, and shuts down gracefully (stop accepting, drain, stop VMs).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "src/api/admin_api.h"
#include "src/api/dispatcher.h"
#include "src/api/functions_api.h"
#include "src/api/invoke_api.h"
#include "src/api/lambda_api.h"
#include "src/api/lambda_functions_api.h"
#include "src/api/logs_api.h"
#include "src/daemon/timer_triggers.h"
#include "src/functions/function_table.h"
#include "src/invoke/invocation_service.h"
#include "src/logs/log_store.h"
#include "src/metrics/metrics.h"
#include "src/pool/vm_backend.h"
#include "src/registry/function_store.h"
#include "src/registry/image_builder.h"
#include "src/server/http_server.h"
#include "src/tenants/authenticator.h"

namespace kiln::kilnd::lazy {
class LazyImages;
}

namespace kiln::kilnd::daemon {

// The image builder a Daemon is made with (kilnd: rootfs_image_builder; tests: their own).
using registry::ImageBuilder;
using registry::rootfs_image_builder;

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
  // Instance networks with the operator's defaults (--network on, --network-config); nullopt:
  // none (--network off). See FunctionTableOptions::network.
  std::optional<net::NetworkDefaults> network;
  // --allow-second-schedules (tests only): deploys may schedule rate(N seconds).
  bool allow_second_schedules = false;
  // --lazy-images on: the host's lazy root disks (owned by the caller, outliving the daemon and
  // the backend, whose snapshots record and prefetch their read lists); null: off.
  lazy::LazyImages* lazy_images = nullptr;
  std::string version = "0.1.0";
};

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

 private:
  // The API's handlers, made once the stores are open.
  struct Handlers {
    api::AdminApi admin;
    api::FunctionsApi functions;
    api::InvokeApi invoke;
    api::LambdaApi lambda;
    api::LogsApi logs;
    api::LambdaFunctionsApi lambda_functions;
  };
  void add_routes();
  void add_lambda_control_plane_routes();  // Lambda's CreateFunction ... DeleteFunction
  void tick();
  void publish_lazy_metrics();

  asio::io_context& io_;
  DaemonOptions options_;
  pool::VmBackend& backend_;
  ImageBuilder builder_;
  metrics::Metrics metrics_;
  tenants::Authenticator auth_;
  std::unique_ptr<registry::FunctionStore> store_;
  std::unique_ptr<logs::LogStore> logs_;
  std::unique_ptr<functions::FunctionTable> table_;
  std::unique_ptr<invoke::InvocationService> invocations_;
  std::unique_ptr<TimerTriggers> triggers_;
  std::unique_ptr<Handlers> handlers_;
  api::Dispatcher dispatcher_{auth_};
  std::unique_ptr<server::HttpServer> server_;
  asio::steady_timer tick_timer_;
  asio::steady_timer log_flush_timer_;
  bool stopping_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::daemon

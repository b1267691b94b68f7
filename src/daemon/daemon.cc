// kilnd's wiring: stores, function table, invocation service, timer triggers, API routes, ticks
// and shutdown.
#include "src/daemon/daemon.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "common/io.h"
#include "src/lazy/lazy_images.h"
#include "src/registry/atomic_file.h"

namespace kiln::kilnd::daemon {

Daemon::Daemon(asio::io_context& io, DaemonOptions options, pool::VmBackend& backend, ImageBuilder builder)
    : io_(io),
      options_(std::move(options)),
      backend_(backend),
      builder_(std::move(builder)),
      auth_(options_.tenants),
      tick_timer_(io),
      log_flush_timer_(io) {
  metrics::declare_kilnd_metrics(metrics_);
}

Daemon::~Daemon() { alive_.reset(); }

Status Daemon::start() {
  const std::uint64_t started_ms = functions::wall_ms();
  KILN_TRY(registry::make_dirs(options_.state_dir));
  KILN_ASSIGN_OR_RETURN(auto store, registry::FunctionStore::open(options_.state_dir + "/functions"));
  store_ = std::make_unique<registry::FunctionStore>(std::move(store));
  logs::LogStoreOptions lo = options_.logs;
  if (lo.dir.empty()) lo.dir = options_.state_dir + "/logs";
  KILN_TRY(registry::make_dirs(lo.dir));
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

  functions::FunctionTableOptions fo;
  fo.start_timeout = options_.start_timeout;
  fo.heartbeat_interval = options_.heartbeat_interval;
  fo.logs_dir = lo.dir;
  fo.network = options_.network;
  fo.allow_second_schedules = options_.allow_second_schedules;
  if (lazy::LazyImages* lazy = options_.lazy_images) {
    fo.serve_lazy = [this, lazy](const std::string& key, const registry::FunctionRecord& r) -> Result<std::string> {
      const registry::ImageStatus::Lazy& l = *r.image.lazy;
      KILN_ASSIGN_OR_RETURN(std::string index, io::read_file(l.index_path, rootfs::chunks::kMaxIndexBytes));
      KILN_ASSIGN_OR_RETURN(auto source, registry::lazy_chunk_source(r.config, l));
      // A failed read reaches the function's log (from an NBD session's thread: through the loop).
      auto report = [this, key, alive = std::weak_ptr<bool>(alive_)](const std::string& text) {
        asio::post(io_, [this, key, alive, text] {
          if (!alive.expired() && table_) table_->platform_log(key, "", "", "lazy root disk: " + text);
        });
      };
      KILN_ASSIGN_OR_RETURN(std::string socket, lazy->serve(l.index_digest, index, std::move(source), report));
      lazy->pin(key, l.index_digest);  // every chunk of a function's image stays while it exists
      return socket;
    };
    fo.release_lazy = [lazy](const std::string& key) { lazy->unpin(key); };
  }
  table_ = std::make_unique<functions::FunctionTable>(io_, fo, backend_, builder_, *store_, *logs_, metrics_, auth_);
  invocations_ = std::make_unique<invoke::InvocationService>(*table_, metrics_);
  triggers_ = std::make_unique<TimerTriggers>(io_, *table_, *invocations_, metrics_);
  table_->set_change_listener([this](const std::string& key, const registry::FunctionRecord* record) {
    if (triggers_) triggers_->update(key, record);
  });
  std::vector<std::string> problems;
  KILN_ASSIGN_OR_RETURN(auto records, store_->load_all(&problems));
  for (const auto& p : problems) std::fprintf(stderr, "kilnd: skipping a function record: %s\n", p.c_str());
  KILN_TRY(table_->load(std::move(records)));

  api::FunctionsApi functions(*table_, *invocations_, auth_,
                              api::DaemonInfo{options_.version, options_.state_dir, started_ms});
  handlers_ = std::make_unique<Handlers>(Handlers{
      api::AdminApi(*table_, metrics_),
      functions,
      api::InvokeApi(*invocations_),
      api::LambdaApi(io_, *invocations_, *logs_),
      api::LogsApi(io_, *table_, *logs_),
      api::LambdaFunctionsApi(*table_, functions),
  });
  add_routes();

  auto s = server::HttpServer::start(io_, options_.server,
                                     [this](server::Exchange& ex) { return dispatcher_.handle(ex); });
  if (!s.ok()) return s.error();
  server_ = std::move(*s);
  tick();
  return ok_status();
}

void Daemon::add_routes() {
  using api::Call;
  using server::Exchange;
  using server::Request;
  Handlers& h = *handlers_;
  dispatcher_.add("GET", "/healthz", [&h](const Request& r, const Call& c) { return h.admin.health(r, c); },
                  {.open = true});
  dispatcher_.add("GET", "/metrics", [&h](const Request& r, const Call& c) { return h.admin.metrics(r, c); });
  dispatcher_.add("GET", "/v1/status", [&h](const Request& r, const Call& c) { return h.functions.status(r, c); });
  dispatcher_.add("GET", "/v1/functions", [&h](const Request& r, const Call& c) { return h.functions.list(r, c); });
  dispatcher_.add("PUT", "/v1/functions/{name}", [&h](const Request& r, const Call& c) { return h.functions.put(r, c); });
  dispatcher_.add("GET", "/v1/functions/{name}", [&h](const Request& r, const Call& c) { return h.functions.get(r, c); });
  dispatcher_.add("DELETE", "/v1/functions/{name}",
                  [&h](const Request& r, const Call& c) { return h.functions.remove(r, c); });
  dispatcher_.add("POST", "/v1/functions/{name}/invoke",
                  [&h](Exchange& ex, const Call& c) { return h.invoke.event(ex, c); });
  dispatcher_.add("*", "/v1/functions/{name}/http/{*path}",
                  [&h](Exchange& ex, const Call& c) { return h.invoke.web(ex, c); });
  dispatcher_.add("GET", "/v1/functions/{name}/logs", [&h](Exchange& ex, const Call& c) { return h.logs.get(ex, c); });
  dispatcher_.add("POST", "/2015-03-31/functions/{name}/invocations",
                  [&h](Exchange& ex, const Call& c) { return h.lambda.invoke(ex, c); },
                  {.bad_name = &api::lambda_bad_name});
  add_lambda_control_plane_routes();
}

void Daemon::add_lambda_control_plane_routes() {
  using api::Call;
  using server::Request;
  api::LambdaFunctionsApi& l = handlers_->lambda_functions;
  const std::string fns = "/2015-03-31/functions";
  const std::string fn = fns + "/{" + api::LambdaFunctionsApi::kParam + "}";
  dispatcher_.add("POST", fns, [&l](const Request& r, const Call& c) { return l.create(r, c); });
  for (const std::string& list : {fns, fns + "/"}) {  // the SDKs send the trailing slash
    dispatcher_.add("GET", list, [&l](const Request& r, const Call& c) { return l.list(r, c); });
  }
  dispatcher_.add("GET", fn, [&l](const Request& r, const Call& c) { return l.get(r, c); });
  dispatcher_.add("DELETE", fn, [&l](const Request& r, const Call& c) { return l.remove(r, c); });
  dispatcher_.add("GET", fn + "/configuration",
                  [&l](const Request& r, const Call& c) { return l.get_configuration(r, c); });
  dispatcher_.add("PUT", fn + "/configuration",
                  [&l](const Request& r, const Call& c) { return l.update_configuration(r, c); });
  dispatcher_.add("PUT", fn + "/code", [&l](const Request& r, const Call& c) { return l.update_code(r, c); });
}

void Daemon::set_tenants(std::optional<tenants::TenantsConfig> tenants) {
  options_.tenants = tenants;
  auth_ = tenants::Authenticator(std::move(tenants));
  if (table_) table_->apply_quotas();
}

void Daemon::publish_lazy_metrics() {
  if (options_.lazy_images == nullptr) return;
  for (const lazy::LazyImageStats& s : options_.lazy_images->image_stats()) {
    const metrics::Labels image{{"image", s.index_digest.substr(s.index_digest.find(':') + 1, 12)}};
    auto with = [&image](const char* k, const char* v) {
      metrics::Labels l = image;
      l.emplace_back(k, v);
      return l;
    };
    metrics_.set(metrics::kLazyReadBytes, image, static_cast<double>(s.disk.bytes_read));
    metrics_.set(metrics::kLazyFetchedBytes, image, static_cast<double>(s.disk.fetched_bytes));
    metrics_.set(metrics::kLazyChunkFetches, with("kind", "demand"), static_cast<double>(s.disk.chunk_misses));
    metrics_.set(metrics::kLazyChunkFetches, with("kind", "prefetch"), static_cast<double>(s.disk.prefetched));
    metrics_.set(metrics::kLazyFetchErrors, image, static_cast<double>(s.disk.fetch_errors));
    metrics_.set(metrics::kLazyWait, image, static_cast<double>(s.disk.wait_ns) / 1e9);
    metrics_.set(metrics::kLazyImageBytes, image, static_cast<double>(s.image_size));
  }
  const lazy::LazyCacheStats c = options_.lazy_images->cache_stats();
  metrics_.set(metrics::kChunkCacheBytes, {{"kind", "stored"}}, static_cast<double>(c.cache.bytes));
  metrics_.set(metrics::kChunkCacheBytes, {{"kind", "max"}}, static_cast<double>(c.max_bytes));
  const std::pair<const char*, std::uint64_t> events[] = {
      {"hit", c.cache.hits},         {"miss", c.cache.misses},     {"coalesced", c.cache.coalesced},
      {"corrupt", c.cache.corrupt},  {"refused", c.cache.refused}, {"evicted", c.cache.evicted},
      {"not_stored", c.cache.not_stored}};
  for (const auto& [event, n] : events) {
    metrics_.set(metrics::kChunkCacheEvents, {{"event", event}}, static_cast<double>(n));
  }
}

void Daemon::tick() {
  if (stopping_) return;
  table_->tick();
  table_->publish_gauges();
  publish_lazy_metrics();
  tick_timer_.expires_after(options_.tick_interval);
  tick_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const beast::error_code& ec) {
    if (!ec && !alive.expired()) tick();
  });
}

void Daemon::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  if (table_) table_->begin_stopping();
  if (triggers_) triggers_->stop();
  tick_timer_.cancel();
  // 1. Stop accepting; in-flight requests finish (bounded by drain_timeout), then 2. stop VMs.
  auto drained = std::make_shared<bool>(false);
  auto timer = std::make_shared<asio::steady_timer>(io_, options_.drain_timeout);
  auto stop_pools = [this, alive = std::weak_ptr<bool>(alive_), drained, timer, done = std::move(done)] {
    if (alive.expired() || *drained) return;
    *drained = true;
    timer->cancel();
    if (table_) {
      table_->stop_pools(done);
    } else if (done) {
      done();
    }
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

}  // namespace kiln::kilnd::daemon

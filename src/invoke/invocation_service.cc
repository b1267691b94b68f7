// Admission and the run of one invocation (platform lines, request windows, metrics).
#include "src/invoke/invocation_service.h"

#include <chrono>
#include <utility>

#include "common/clock.h"
#include "src/invoke/function_error.h"
#include "src/logs/log_entry.h"
#include "src/registry/runtime_detect.h"

namespace kiln::kilnd::invoke {
namespace {

// Whether one more invocation of `f` would need an instance that is not there yet.
bool needs_new_instance(const functions::Function& f) {
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

Refusal quota_refusal(const std::string& name, std::string quota, std::string message) {
  Refusal r;
  r.kind = RefusalKind::kQuota;
  r.name = name;
  r.quota = std::move(quota);
  r.message = std::move(message);
  return r;
}

}  // namespace

InvocationService::InvocationService(functions::FunctionTable& table, metrics::Metrics& metrics)
    : table_(table), metrics_(metrics) {}

std::variant<Admission, Refusal> InvocationService::admit(const std::string& tenant, const std::string& name,
                                                          std::size_t payload_bytes, Admit mode) {
  Refusal refusal;
  refusal.name = name;
  const std::string key = registry::function_key(tenant, name);
  const functions::Function* f = table_.find(key);
  if (!f) return refusal;  // kNotFound
  if (table_.stopping()) {
    refusal.kind = RefusalKind::kStopping;
    return refusal;
  }
  if (!f->pool) {
    refusal.kind = RefusalKind::kNotReady;
    refusal.image_state = f->record.image.state;
    refusal.image_reason = f->record.image.reason;
    return refusal;
  }
  if (payload_bytes > kMaxPayloadBytes) {
    refusal.kind = RefusalKind::kPayloadTooLarge;
    return refusal;
  }
  Admission a;
  if (mode == Admit::kInvoke) {
    if (auto quota = take_slot(*f, &a.slot)) return *quota;
  }
  const registry::FunctionRecord& r = f->record;
  a.key = key;
  a.meta.request_id = new_request_id();
  a.meta.function = name;
  a.meta.version = r.version;
  a.meta.memory_mib = r.config.memory_mib;
  a.meta.timeout_ms = r.config.timeout_ms;
  a.meta.deadline_ms = functions::wall_ms() + r.config.timeout_ms;
  a.lambda_mode = registry::detect_runtime_api(r).api == registry::RuntimeApi::kLambda;
  return a;
}

std::optional<Refusal> InvocationService::take_slot(const functions::Function& f,
                                                    tenants::ConcurrencyLimiter::Slot* slot) {
  const std::string& t = f.record.tenant;
  const tenants::Quotas* q = table_.quotas_of(t);
  if (!q) return std::nullopt;
  const std::string& name = f.record.config.name;
  // The pool has no hook to ask before it starts an instance: an invocation that would need a
  // new one is refused while the tenant is at its instance quota.
  if (q->max_instances && needs_new_instance(f)) {
    std::size_t n = table_.tenant_instances(t);
    if (n >= *q->max_instances) {
      return quota_refusal(name, "max_instances",
                           "quota exceeded: tenant " + t + " already runs " + std::to_string(n) +
                               " instances (max_instances " + std::to_string(*q->max_instances) + ")");
    }
  }
  auto s = limiter_.try_acquire(t, q->max_concurrent_invocations);
  if (!s) {
    return quota_refusal(name, "max_concurrent_invocations",
                         "quota exceeded: tenant " + t + " already has " + std::to_string(limiter_.in_flight(t)) +
                             " invocations in flight (max_concurrent_invocations " +
                             std::to_string(*q->max_concurrent_invocations) + ")");
  }
  *slot = std::move(*s);
  return std::nullopt;
}

asio::awaitable<Invocation> InvocationService::run(Admission admission, GuestRequest guest, std::string kind) {
  const std::string key = std::move(admission.key);
  const std::string request_id = admission.meta.request_id;
  Invocation inv;
  inv.request_id = request_id;
  functions::Function* f = table_.find(key);
  if (!f || !f->pool) {  // deleted before it could run
    inv.result.status = InvokeStatus::kShuttingDown;
    inv.result.detail = "function " + key + " was removed";
    co_return inv;
  }
  std::shared_ptr<pool::FunctionPool> pool = f->pool;
  const std::uint32_t memory = f->record.config.memory_mib;
  InvokeOptions opts;
  opts.timeout = std::chrono::milliseconds(f->record.config.timeout_ms);
  InvokeHooks hooks;
  bool* leased = &inv.leased;
  functions::FunctionTable& table = table_;
  hooks.leased = [&table, key, request_id, leased](const std::string& instance) {
    *leased = true;
    table.platform_log(key, instance, request_id, logs::format_start(request_id, "$LATEST"));
    if (functions::Function* fn = table.find(key)) fn->windows.begin(instance, request_id, kiln::realtime_ns());
  };
  hooks.released = [&table, key, request_id](const std::string& instance) {
    if (functions::Function* fn = table.find(key)) fn->windows.end(instance, request_id, kiln::realtime_ns());
  };
  metrics_.inc(metrics::kInvocations, {{"function", key}, {"kind", kind}});
  auto t0 = std::chrono::steady_clock::now();
  inv.result = co_await invoke(pool, std::move(guest), opts, hooks);
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.observe(metrics::kDuration, {{"function", key}}, total_s);
  const InvokeResult& r = inv.result;
  bool function_error =
      r.status == InvokeStatus::kOk && (r.response.result_int() >= 500 || has_function_error(r.response));
  if (r.status != InvokeStatus::kOk || function_error) {
    metrics_.inc(metrics::kErrors,
                 {{"function", key}, {"kind", function_error ? "function_error" : invoke_status_name(r.status)}});
  }
  if (!table_.find(key)) co_return inv;  // deleted meanwhile: its logs are gone
  log_end(key, inv, memory);
  inv.logged = true;
  co_return inv;
}

void InvocationService::log_end(const std::string& key, const Invocation& inv, std::uint32_t memory_mib) {
  const InvokeResult& r = inv.result;
  const std::string& id = inv.request_id;
  if (!inv.leased) {
    if (r.status != InvokeStatus::kOk) table_.platform_log(key, "", id, "ERROR RequestId: " + id + " " + r.detail);
    return;
  }
  if (r.status != InvokeStatus::kOk) table_.platform_log(key, r.instance_id, id, "ERROR " + r.detail);
  table_.platform_log(key, r.instance_id, id, logs::format_end(id));
  logs::ReportInfo rep;
  rep.request_id = id;
  rep.duration_ms = r.duration_ms;
  rep.memory_mib = memory_mib;
  rep.max_memory_used_mib = r.max_memory_mib;
  if (r.cold_start) rep.init_duration_ms = r.init_duration_ms;
  if (r.status != InvokeStatus::kOk) rep.status = invoke_status_name(r.status);
  table_.platform_log(key, r.instance_id, id, logs::format_report(rep));
}

}  // namespace kiln::kilnd::invoke

// InvocationService: one invocation from admission to its end, for every API dialect (kiln's
// event and web invocations, Lambda's Invoke). Admission checks the function exists and is
// ready, kilnd is not stopping, the payload fits and the owner's quotas allow it, and returns a
// typed refusal otherwise (each dialect renders it); the run leases an instance through the
// invoker and writes the START/END/REPORT lines, the request windows and the metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "src/functions/function_table.h"
#include "src/invoke/guest_request.h"
#include "src/invoke/invoker.h"
#include "src/metrics/metrics.h"
#include "src/registry/function_config.h"
#include "src/tenants/concurrency_limiter.h"

namespace kiln::kilnd::invoke {

// Why an invocation was not admitted, in the order admission checks.
enum class RefusalKind {
  kNotFound,  // no such function in the caller's namespace
  kStopping,  // kilnd is shutting down
  kNotReady,  // its image is not ready (pending, building or failed)
  kPayloadTooLarge,  // over kMaxPayloadBytes
  kQuota,  // a quota of the function's owner
};

struct Refusal {
  RefusalKind kind = RefusalKind::kNotFound;
  std::string name;  // the function's name as the caller gave it
  registry::ImageState image_state = registry::ImageState::kPending;  // kNotReady
  std::string image_reason;  // kNotReady: why the image failed, if it did
  std::string quota;  // kQuota: the quota's name (max_instances, max_concurrent_invocations)
  std::string message;  // kQuota: what it refused
};

// An admitted invocation. It holds its quota slot until it ends (by value: an asynchronous
// Lambda invocation outlives the request that started it).
struct Admission {
  std::string key;  // the function's registry key
  RequestMeta meta;  // a fresh request id, the function's name, version, memory and deadline
  bool lambda_mode = false;  // its instances serve Lambda's Runtime API (registry::detect_runtime_api)
  tenants::ConcurrencyLimiter::Slot slot;
};

struct Invocation {
  InvokeResult result;
  std::string request_id;
  bool leased = false;  // an instance took it (START was logged, X-Kiln-Cold-Start applies)
  bool logged = false;  // its lines are in the function's log (not deleted meanwhile)
};

// Whether admission takes a quota slot (an invocation) or only checks (a Lambda DryRun).
enum class Admit { kInvoke, kCheckOnly };

class InvocationService {
 public:
  InvocationService(functions::FunctionTable& table, metrics::Metrics& metrics);

  // Admission of one invocation of `name` in the namespace `tenant` with a payload of
  // `payload_bytes`.
  std::variant<Admission, Refusal> admit(const std::string& tenant, const std::string& name,
                                         std::size_t payload_bytes, Admit mode = Admit::kInvoke);
  // Runs an admitted invocation; `kind` labels its metrics (event, web, lambda).
  asio::awaitable<Invocation> run(Admission admission, GuestRequest guest, std::string kind);

  // Invocations of `tenant` in flight (/v1/status).
  std::uint32_t in_flight(const std::string& tenant) const { return limiter_.in_flight(tenant); }

 private:
  // The owner's quotas for one more invocation of `f`: nothing, with *slot held, or the refusal.
  std::optional<Refusal> take_slot(const functions::Function& f, tenants::ConcurrencyLimiter::Slot* slot);
  void log_end(const std::string& key, const Invocation& inv, std::uint32_t memory_mib);

  functions::FunctionTable& table_;
  metrics::Metrics& metrics_;
  tenants::ConcurrencyLimiter limiter_;
};

}  // namespace kiln::kilnd::invoke

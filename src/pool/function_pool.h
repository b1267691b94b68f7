// FunctionPool: the instance pool of one function. Cold starts instances through a VmBackend,
// hands out leases (per-instance concurrency), queues up to a bound (then the caller answers
// 429), keeps min_instances warm, stops idle instances (scale to zero), detects dead and hung
// instances and replaces them. Single-threaded: every call on kilnd's loop; time comes from an
// injected clock and advances only through tick(), so tests drive it without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/pool/kept_streams.h"
#include "src/pool/vm_backend.h"

namespace kiln::kilnd::pool {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

struct PoolSettings {
  std::uint32_t concurrency = 1;
  std::uint32_t min_instances = 0;
  std::uint32_t max_instances = 10;
  std::uint32_t max_queue = 100;
  Millis idle_timeout{300000};
  Millis heartbeat_interval{5000};
  std::uint32_t heartbeat_misses = 3;  // unanswered intervals before an instance counts as hung
  Millis start_timeout{60000};  // boot to ready
  Millis restart_backoff_max{60000};  // for min_instances after repeated start failures
};

enum class InstanceState { kStarting, kReady, kStopping };
const char* instance_state_name(InstanceState s);

struct Instance {
  std::string id;
  std::uint64_t version = 0;
  InstanceState state = InstanceState::kStarting;
  std::unique_ptr<VmInstance> vm;
  std::uint32_t in_flight = 0;
  std::uint64_t served = 0;
  Clock::time_point created;
  Clock::time_point ready_at;
  Clock::time_point last_used;
  bool check_pending = false;
  Clock::time_point last_check;
  std::uint32_t missed_checks = 0;
  std::string end_reason;  // why it ended on its own (crash detail for in-flight requests)
  // Kept-alive streams the invoker reuses before opening a new one: at most `concurrency`,
  // closed when the instance stops.
  KeptStreams kept_streams;
};

enum class AcquireError { kNone, kQueueFull, kStartFailed, kShuttingDown };

struct Lease {
  std::shared_ptr<Instance> instance;
  bool cold_start = false;  // first request on a freshly booted instance
  double init_duration_ms = 0;  // boot-to-ready, when cold_start
};

struct AcquireResult {
  AcquireError error = AcquireError::kNone;
  std::string message;
  Lease lease;
};

enum class Outcome {
  kOk,  // answered; the instance stays
  kRecycle,  // timed out or misbehaved: stop the instance
  kBroken,  // the connection failed: the instance is presumed dead
};

struct PoolStats {
  std::size_t starting = 0, ready = 0, busy = 0, stopping = 0, queued = 0;
  std::uint64_t cold_starts = 0, start_failures = 0, replaced = 0;
};

struct PoolHooks {
  std::function<void(const std::string& instance_id, const protocol::LogEvent&)> log;
  // Platform lines about instances ("instance ... started", "... stopped: idle").
  std::function<void(const std::string& instance_id, const std::string& text)> event;
  std::function<void()> cold_start;
};

class FunctionPool {
 public:
  using SpecFactory = std::function<InstanceSpec(const std::string& instance_id)>;
  using AcquireHandler = std::function<void(AcquireResult)>;

  FunctionPool(std::string function, PoolSettings settings, VmBackend& backend, SpecFactory spec,
               std::uint64_t version, std::function<Clock::time_point()> clock = &Clock::now,
               PoolHooks hooks = {});
  ~FunctionPool();
  FunctionPool(const FunctionPool&) = delete;
  FunctionPool& operator=(const FunctionPool&) = delete;

  // Calls `done` with a lease now (a free slot), later (queued: returns the waiter id), or
  // with an error now (queue full, shutting down). Returns 0 when `done` already ran.
  std::uint64_t acquire(AcquireHandler done);
  // Withdraws a queued request (its deadline passed); `done` is not called.
  void cancel(std::uint64_t waiter);
  void release(const Lease& lease, Outcome outcome);

  // Periodic work: idle scale-down, heartbeats, hung detection, start timeouts, min_instances.
  void tick();
  // New settings or a new function version: old-version instances drain and stop.
  void update(PoolSettings settings, SpecFactory spec, std::uint64_t version);
  // Fails the queue, stops every instance; done() when all resources are released.
  void shutdown(std::function<void()> done);

  PoolStats stats() const;
  std::vector<std::shared_ptr<const Instance>> instances() const;
  const PoolSettings& settings() const { return settings_; }
  const std::string& function() const { return function_; }

 private:
  struct Waiter {
    std::uint64_t id;
    AcquireHandler done;
  };
  Instance* find_free();
  void assign(Instance& inst, AcquireHandler done);
  void dispatch();
  void scale_up();
  void start_instance();
  void on_ready(const std::string& id);
  void on_ended(const std::string& id, const std::string& reason);
  void retire(const std::string& id, const std::string& reason);
  void fail_waiters(std::size_t count, AcquireError error, const std::string& message);
  std::size_t alive() const;
  void maybe_finish_shutdown();
  void keep_minimum();
  std::string new_instance_id();
  // Picks the id of the next instance now and tells the backend's warm starts, if any.
  void prepare_next();
  // prepare_next() when the announced id was taken by a start; called once the started
  // instance answered its first request (or is ready with none, or ended), never between: the
  // backend then prepares a parked kiln-vmm, which takes CPU and kilnd's loop from that answer.
  void announce_next();

  std::string function_;
  PoolSettings settings_;
  VmBackend& backend_;
  SpecFactory spec_;
  std::uint64_t version_;
  std::function<Clock::time_point()> clock_;
  PoolHooks hooks_;
  std::map<std::string, std::shared_ptr<Instance>> instances_;  // starting and ready
  std::map<std::string, std::shared_ptr<Instance>> stopping_;
  std::deque<Waiter> waiters_;
  std::uint64_t next_waiter_ = 1;
  std::uint64_t next_instance_ = 1;
  std::string next_id_;  // the next instance's id, announced to the backend ("": taken or shut down)
  const std::uint64_t owner_;  // this pool, to WarmStarts::prepare()/forget()
  std::uint32_t consecutive_failures_ = 0;
  Clock::time_point restart_not_before_{};
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
  PoolStats counters_;
  std::shared_ptr<bool> alive_token_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::pool

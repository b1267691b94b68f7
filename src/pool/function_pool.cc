// Instance pool state machine: starting -> ready (leases up to `concurrency`) -> stopping.
#include "src/pool/function_pool.h"

#include <atomic>
#include <random>
#include <utility>

namespace kiln::kilnd::pool {
namespace {
std::atomic<std::uint64_t> next_pool_owner{1};
}  // namespace

const char* instance_state_name(InstanceState s) {
  switch (s) {
    case InstanceState::kStarting: return "starting";
    case InstanceState::kReady: return "ready";
    case InstanceState::kStopping: return "stopping";
  }
  return "unknown";
}

FunctionPool::FunctionPool(std::string function, PoolSettings settings, VmBackend& backend, SpecFactory spec,
                           std::uint64_t version, std::function<Clock::time_point()> clock, PoolHooks hooks)
    : function_(std::move(function)),
      settings_(settings),
      backend_(backend),
      spec_(std::move(spec)),
      version_(version),
      clock_(std::move(clock)),
      hooks_(std::move(hooks)),
      owner_(next_pool_owner++) {
  if (settings_.concurrency == 0) settings_.concurrency = 1;
  prepare_next();
}

FunctionPool::~FunctionPool() {
  // No WarmStarts::forget() here: the backend may be gone already at exit; shutdown() forgets.
  // VmInstance destructors release their resources; none of their callbacks can reach us
  // afterwards (the token dies first).
  alive_token_.reset();
  instances_.clear();
  stopping_.clear();
}

std::string FunctionPool::new_instance_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%08llx", static_cast<unsigned long long>(rng() & 0xffffffffull));
  return function_ + "-" + std::to_string(next_instance_++) + "-" + buf;
}

void FunctionPool::prepare_next() {
  next_id_ = new_instance_id();
  if (WarmStarts* warm = backend_.warm_starts()) warm->prepare(owner_, spec_(next_id_));
}

void FunctionPool::announce_next() {
  if (!shutting_down_ && next_id_.empty()) prepare_next();
}

std::size_t FunctionPool::alive() const { return instances_.size(); }

Instance* FunctionPool::find_free() {
  // Pack work onto the busiest instance that still has room (others can go idle and stop),
  // then the most recently used.
  Instance* best = nullptr;
  for (auto& [id, inst] : instances_) {
    if (inst->state != InstanceState::kReady || inst->version != version_) continue;
    if (inst->in_flight >= settings_.concurrency) continue;
    if (!best || inst->in_flight > best->in_flight ||
        (inst->in_flight == best->in_flight && inst->last_used > best->last_used)) {
      best = inst.get();
    }
  }
  return best;
}

void FunctionPool::assign(Instance& inst, AcquireHandler done) {
  AcquireResult r;
  r.lease.instance = instances_.at(inst.id);
  r.lease.cold_start = inst.served == 0;
  if (r.lease.cold_start) {
    r.lease.init_duration_ms =
        std::chrono::duration<double, std::milli>(inst.ready_at - inst.created).count();
  }
  ++inst.in_flight;
  ++inst.served;
  inst.last_used = clock_();
  done(std::move(r));
}

std::uint64_t FunctionPool::acquire(AcquireHandler done) {
  if (shutting_down_) {
    done(AcquireResult{AcquireError::kShuttingDown, "kilnd is shutting down", {}});
    return 0;
  }
  if (waiters_.empty()) {
    if (Instance* inst = find_free()) {
      assign(*inst, std::move(done));
      return 0;
    }
  }
  // A request may wait for an instance that is starting (or that it makes start); beyond that
  // capacity, at most max_queue requests wait for a busy instance to free a slot.
  std::size_t starting = 0;
  for (auto& [id, inst] : instances_) {
    if (inst->state == InstanceState::kStarting) ++starting;
  }
  std::size_t startable = settings_.max_instances > alive() ? settings_.max_instances - alive() : 0;
  std::size_t upcoming = (starting + startable) * settings_.concurrency;
  if (waiters_.size() >= upcoming + settings_.max_queue) {
    done(AcquireResult{AcquireError::kQueueFull,
                       "too many requests: " + std::to_string(waiters_.size()) + " already queued for " + function_,
                       {}});
    return 0;
  }
  std::uint64_t id = next_waiter_++;
  waiters_.push_back(Waiter{id, std::move(done)});
  scale_up();
  return id;
}

void FunctionPool::cancel(std::uint64_t waiter) {
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->id == waiter) {
      waiters_.erase(it);
      return;
    }
  }
}

void FunctionPool::release(const Lease& lease, Outcome outcome) {
  if (!lease.instance) return;
  const std::string id = lease.instance->id;
  auto it = instances_.find(id);
  if (it == instances_.end() || it->second != lease.instance) return;  // already gone
  Instance& inst = *it->second;
  if (inst.in_flight > 0) --inst.in_flight;
  inst.last_used = clock_();
  if (lease.cold_start) announce_next();
  if (outcome == Outcome::kRecycle) {
    retire(id, "recycled after a timed-out invocation");
  } else if (outcome == Outcome::kBroken) {
    ++counters_.replaced;
    retire(id, "connection to the instance failed");
  } else if (inst.version != version_ && inst.in_flight == 0) {
    retire(id, "replaced by a new function version");
  }
  dispatch();
}

void FunctionPool::dispatch() {
  while (!waiters_.empty()) {
    Instance* inst = find_free();
    if (!inst) break;
    Waiter w = std::move(waiters_.front());
    waiters_.pop_front();
    assign(*inst, std::move(w.done));
  }
  scale_up();
}

void FunctionPool::scale_up() {
  if (shutting_down_) return;
  std::size_t starting = 0;
  for (auto& [id, inst] : instances_) {
    if (inst->state == InstanceState::kStarting) ++starting;
  }
  std::size_t pending_slots = starting * settings_.concurrency;
  while (waiters_.size() > pending_slots && alive() < settings_.max_instances) {
    start_instance();
    pending_slots += settings_.concurrency;
  }
}

void FunctionPool::start_instance() {
  std::string id = next_id_.empty() ? new_instance_id() : std::exchange(next_id_, std::string());
  auto inst = std::make_shared<Instance>();
  inst->id = id;
  inst->version = version_;
  inst->created = clock_();
  inst->last_used = inst->created;
  inst->last_check = inst->created;
  instances_[id] = inst;
  ++counters_.cold_starts;
  if (hooks_.cold_start) hooks_.cold_start();
  std::weak_ptr<bool> token = alive_token_;
  InstanceCallbacks cb;
  cb.ready = [this, token, id] {
    if (!token.expired()) on_ready(id);
  };
  cb.ended = [this, token, id](const std::string& reason) {
    if (!token.expired()) on_ended(id, reason);
  };
  cb.log = [this, token, id](const protocol::LogEvent& e) {
    if (!token.expired() && hooks_.log) hooks_.log(id, e);
  };
  cb.notice = [this, token, id](const std::string& text) {
    if (!token.expired() && hooks_.event) hooks_.event(id, "instance " + id + " " + text);
  };
  if (hooks_.event) hooks_.event(id, "instance " + id + " starting");
  inst->vm = backend_.start(spec_(id), std::move(cb));
}

void FunctionPool::on_ready(const std::string& id) {
  auto it = instances_.find(id);
  if (it == instances_.end() || it->second->state != InstanceState::kStarting) return;
  Instance& inst = *it->second;
  inst.state = InstanceState::kReady;
  inst.ready_at = clock_();
  inst.last_used = inst.ready_at;
  inst.last_check = inst.ready_at;
  consecutive_failures_ = 0;
  if (hooks_.event) {
    auto ms = std::chrono::duration_cast<Millis>(inst.ready_at - inst.created).count();
    hooks_.event(id, "instance " + id + " ready after " + std::to_string(ms) + " ms");
  }
  dispatch();
  if (inst.in_flight == 0) announce_next();  // nothing to answer first
}

void FunctionPool::fail_waiters(std::size_t count, AcquireError error, const std::string& message) {
  while (count-- > 0 && !waiters_.empty()) {
    Waiter w = std::move(waiters_.front());
    waiters_.pop_front();
    w.done(AcquireResult{error, message, {}});
  }
}

void FunctionPool::on_ended(const std::string& id, const std::string& reason) {
  auto it = instances_.find(id);
  if (it == instances_.end()) {
    // A stopping instance died on its own: its stop() completion still releases it.
    return;
  }
  std::shared_ptr<Instance> inst = it->second;
  instances_.erase(it);
  bool was_starting = inst->state == InstanceState::kStarting;
  inst->state = InstanceState::kStopping;
  inst->kept_streams.clear();
  inst->end_reason = reason;
  if (hooks_.event) hooks_.event(id, "instance " + id + " ended: " + reason);
  // stop() releases what is left (the VMM process if alive, sockets, run dir). The instance
  // object is not destroyed here: this may run inside one of its own callbacks.
  stopping_[id] = inst;
  std::weak_ptr<bool> token = alive_token_;
  inst->vm->stop([this, token, id] {
    if (token.expired()) return;
    stopping_.erase(id);
    maybe_finish_shutdown();
  });
  if (was_starting) {
    ++counters_.start_failures;
    ++consecutive_failures_;
    auto backoff = Millis(1000) * (1u << std::min<std::uint32_t>(consecutive_failures_, 6));
    restart_not_before_ = clock_() + std::min(backoff, settings_.restart_backoff_max);
    // The requests this instance was started for fail with the reason rather than wait for
    // their deadline: a function that cannot start should say so.
    fail_waiters(settings_.concurrency, AcquireError::kStartFailed, "instance failed to start: " + reason);
  } else {
    ++counters_.replaced;
  }
  announce_next();
  dispatch();
  keep_minimum();
  maybe_finish_shutdown();
}

void FunctionPool::retire(const std::string& id, const std::string& reason) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  std::shared_ptr<Instance> inst = it->second;
  instances_.erase(it);
  inst->state = InstanceState::kStopping;
  inst->kept_streams.clear();
  stopping_[id] = inst;
  if (hooks_.event) hooks_.event(id, "instance " + id + " stopping: " + reason);
  std::weak_ptr<bool> token = alive_token_;
  inst->vm->stop([this, token, id] {
    if (token.expired()) return;
    stopping_.erase(id);
    maybe_finish_shutdown();
  });
}

void FunctionPool::tick() {
  if (shutting_down_) return;
  auto now = clock_();
  std::vector<std::pair<std::string, std::string>> to_retire;
  std::size_t idle_stoppable = alive() > settings_.min_instances ? alive() - settings_.min_instances : 0;
  for (auto& [id, inst] : instances_) {
    if (inst->state == InstanceState::kStarting) {
      if (now - inst->created >= settings_.start_timeout) to_retire.emplace_back(id, "did not become ready in time");
      continue;
    }
    if (inst->in_flight == 0 && idle_stoppable > 0 && waiters_.empty() &&
        (now - inst->last_used >= settings_.idle_timeout || inst->version != version_)) {
      to_retire.emplace_back(id, inst->version != version_ ? "replaced by a new function version" : "idle");
      --idle_stoppable;
      continue;
    }
    if (inst->check_pending) {
      // A busy instance's slow answer is load, not a hang: its invocations' own timeouts
      // recycle a guest that really hangs.
      if (inst->in_flight == 0 && now - inst->last_check >= settings_.heartbeat_interval * settings_.heartbeat_misses) {
        to_retire.emplace_back(id, "hung: no heartbeat answer");
      }
    } else if (now - inst->last_check >= settings_.heartbeat_interval) {
      inst->check_pending = true;
      inst->last_check = now;
      std::weak_ptr<bool> token = alive_token_;
      std::weak_ptr<Instance> weak = inst;
      inst->vm->check([this, token, weak](bool healthy) {
        if (token.expired()) return;
        auto i = weak.lock();
        if (!i || i->state != InstanceState::kReady) return;
        i->check_pending = false;
        i->last_check = clock_();
        // One failed probe can be load (a slow guest); heartbeat_misses in a row is a verdict.
        // A busy instance is not judged by heartbeats (its invocations' timeouts cover a hang).
        if (healthy) i->missed_checks = 0;
        else if (i->in_flight == 0) ++i->missed_checks;
        if (i->missed_checks >= settings_.heartbeat_misses) {
          ++counters_.replaced;
          retire(i->id, "unhealthy: " + std::to_string(i->missed_checks) + " failed heartbeats in a row");
          dispatch();
          keep_minimum();
        }
      });
    }
  }
  for (auto& [id, why] : to_retire) {
    if (why != "idle" && why != "replaced by a new function version") ++counters_.replaced;
    bool was_starting = instances_.count(id) && instances_[id]->state == InstanceState::kStarting;
    retire(id, why);
    if (was_starting) fail_waiters(settings_.concurrency, AcquireError::kStartFailed, "instance failed to start: " + why);
  }
  dispatch();
  keep_minimum();
}

void FunctionPool::keep_minimum() {
  if (shutting_down_ || clock_() < restart_not_before_) return;
  while (alive() < settings_.min_instances) start_instance();
}

void FunctionPool::update(PoolSettings settings, SpecFactory spec, std::uint64_t version) {
  settings_ = settings;
  if (settings_.concurrency == 0) settings_.concurrency = 1;
  spec_ = std::move(spec);
  const bool new_version = version != version_;
  version_ = version;
  if (new_version && !shutting_down_) prepare_next();
  std::vector<std::string> old_idle;
  for (auto& [id, inst] : instances_) {
    if (inst->version != version_ && inst->in_flight == 0) old_idle.push_back(id);
  }
  for (auto& id : old_idle) retire(id, "replaced by a new function version");
  dispatch();
  keep_minimum();
}

void FunctionPool::shutdown(std::function<void()> done) {
  shutting_down_ = true;
  next_id_.clear();
  if (WarmStarts* warm = backend_.warm_starts()) warm->forget(owner_);
  shutdown_done_ = std::move(done);
  fail_waiters(waiters_.size(), AcquireError::kShuttingDown, "kilnd is shutting down");
  std::vector<std::string> ids;
  for (auto& [id, inst] : instances_) ids.push_back(id);
  for (auto& id : ids) retire(id, "kilnd shutting down");
  maybe_finish_shutdown();
}

void FunctionPool::maybe_finish_shutdown() {
  if (shutting_down_ && instances_.empty() && stopping_.empty() && shutdown_done_) {
    auto done = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    done();
  }
}

PoolStats FunctionPool::stats() const {
  PoolStats s = counters_;
  for (auto& [id, inst] : instances_) {
    if (inst->state == InstanceState::kStarting) ++s.starting;
    else if (inst->in_flight > 0) ++s.busy;
    else ++s.ready;
  }
  s.stopping = stopping_.size();
  s.queued = waiters_.size();
  return s;
}

std::vector<std::shared_ptr<const Instance>> FunctionPool::instances() const {
  std::vector<std::shared_ptr<const Instance>> out;
  for (auto& [id, inst] : instances_) out.push_back(inst);
  for (auto& [id, inst] : stopping_) out.push_back(inst);
  return out;
}

}  // namespace kiln::kilnd::pool

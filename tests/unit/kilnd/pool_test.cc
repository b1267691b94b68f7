// FunctionPool state machine with the fake backend: cold start, per-instance concurrency,
// bounded queue (then a queue-full error the API maps to 429), scale to zero, min_instances,
// replacement of dead and hung instances, start failures, version updates, shutdown.
#include <gtest/gtest.h>

#include "src/pool/function_pool.h"
#include "tests/unit/kilnd/support/fake_backend.h"

namespace kiln::kilnd::pool {
namespace {

struct Harness {
  test::FakeBackend backend;
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  std::vector<std::string> events;
  std::unique_ptr<FunctionPool> pool;

  explicit Harness(PoolSettings s, bool warm = true) {
    backend.warm = warm;
    PoolHooks hooks;
    hooks.event = [this](const std::string&, const std::string& t) { events.push_back(t); };
    pool = std::make_unique<FunctionPool>(
        "fn", s, backend,
        [](const std::string& id) {
          InstanceSpec spec;
          spec.instance_id = id;
          spec.function = "fn";
          return spec;
        },
        1, [this] { return now; }, hooks);
  }
  void advance(Millis d) { now += d; }
};

struct Got {
  std::vector<AcquireResult> results;
  FunctionPool::AcquireHandler handler() {
    return [this](AcquireResult r) { results.push_back(std::move(r)); };
  }
};

PoolSettings settings(std::uint32_t concurrency, std::uint32_t max_instances, std::uint32_t max_queue) {
  PoolSettings s;
  s.concurrency = concurrency;
  s.max_instances = max_instances;
  s.max_queue = max_queue;
  s.idle_timeout = Millis(1000);
  s.heartbeat_interval = Millis(500);
  s.heartbeat_misses = 2;
  return s;
}

// Settings under which only heartbeats stop an instance (a long idle timeout).
PoolSettings heartbeat_only_settings() {
  PoolSettings st = settings(1, 2, 10);
  st.idle_timeout = Millis(60000);
  return st;
}

// Acquires once: the cold-started instance becomes ready and `got` holds its lease.
std::string start_leased(Harness& h, Got& got) {
  h.pool->acquire(got.handler());
  const std::string id = h.backend.started()[0];
  h.backend.ready(id);
  return id;
}

TEST(FunctionPool, ColdStartThenWarmReuse) {
  Harness h(settings(1, 5, 10));
  Got got;
  EXPECT_NE(h.pool->acquire(got.handler()), 0u);  // queued behind a cold start
  ASSERT_EQ(h.backend.started().size(), 1u);
  EXPECT_TRUE(got.results.empty());
  EXPECT_EQ(h.pool->stats().starting, 1u);
  EXPECT_EQ(h.pool->stats().queued, 1u);
  std::string id = h.backend.started()[0];
  h.advance(Millis(150));
  h.backend.ready(id);
  ASSERT_EQ(got.results.size(), 1u);
  AcquireResult r = got.results[0];
  EXPECT_EQ(r.error, AcquireError::kNone);
  EXPECT_TRUE(r.lease.cold_start);
  EXPECT_DOUBLE_EQ(r.lease.init_duration_ms, 150.0);
  EXPECT_EQ(r.lease.instance->id, id);
  h.pool->release(r.lease, Outcome::kOk);
  // Warm: answered synchronously, not a cold start, no new instance.
  EXPECT_EQ(h.pool->acquire(got.handler()), 0u);
  ASSERT_EQ(got.results.size(), 2u);
  EXPECT_FALSE(got.results[1].lease.cold_start);
  EXPECT_EQ(h.backend.started().size(), 1u);
}

TEST(FunctionPool, PerInstanceConcurrency) {
  Harness h(settings(2, 2, 10));
  Got got;
  for (int i = 0; i < 5; ++i) h.pool->acquire(got.handler());
  // 5 waiters, concurrency 2, max 2 instances: exactly 2 instances start.
  ASSERT_EQ(h.backend.started().size(), 2u);
  h.backend.ready(h.backend.started()[0]);
  ASSERT_EQ(got.results.size(), 2u);  // two leases on the first instance
  EXPECT_EQ(got.results[0].lease.instance->id, got.results[1].lease.instance->id);
  EXPECT_EQ(got.results[0].lease.instance->in_flight, 2u);
  h.backend.ready(h.backend.started()[1]);
  ASSERT_EQ(got.results.size(), 4u);
  EXPECT_EQ(h.pool->stats().queued, 1u);
  // A release frees one slot: the fifth request takes it.
  h.pool->release(got.results[0].lease, Outcome::kOk);
  ASSERT_EQ(got.results.size(), 5u);
  EXPECT_EQ(got.results[4].lease.instance->id, got.results[0].lease.instance->id);
  EXPECT_EQ(h.pool->stats().queued, 0u);
}

TEST(FunctionPool, BoundedQueueThenQueueFull) {
  Harness h(settings(1, 1, 2));
  Got got;
  // One request waits for the instance it starts, two more may queue behind it.
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  EXPECT_TRUE(got.results.empty());
  EXPECT_EQ(h.pool->acquire(got.handler()), 0u);
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].error, AcquireError::kQueueFull);
  EXPECT_NE(got.results[0].message.find("too many requests"), std::string::npos);
  EXPECT_EQ(h.backend.started().size(), 1u);  // max_instances holds
  // Cancelling a waiter (its deadline passed) frees queue room.
  Got more;
  std::uint64_t w = h.pool->acquire(more.handler());
  EXPECT_EQ(w, 0u);  // still full
  ASSERT_EQ(more.results.size(), 1u);
  EXPECT_EQ(more.results[0].error, AcquireError::kQueueFull);
}

TEST(FunctionPool, NoQueueStillAllowsColdStartThenThrottles) {
  Harness h(settings(1, 1, 0));
  Got got;
  EXPECT_NE(h.pool->acquire(got.handler()), 0u);  // waits for the cold start
  h.pool->acquire(got.handler());
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].error, AcquireError::kQueueFull);
  h.backend.ready(h.backend.started()[0]);
  ASSERT_EQ(got.results.size(), 2u);
  EXPECT_EQ(got.results[1].error, AcquireError::kNone);
  h.pool->acquire(got.handler());  // the only instance is busy, no queue: throttled
  ASSERT_EQ(got.results.size(), 3u);
  EXPECT_EQ(got.results[2].error, AcquireError::kQueueFull);
}

TEST(FunctionPool, CancelledWaiterIsNotServed) {
  Harness h(settings(1, 1, 5));
  Got a, b;
  std::uint64_t wa = h.pool->acquire(a.handler());
  h.pool->acquire(b.handler());
  h.pool->cancel(wa);
  h.backend.ready(h.backend.started()[0]);
  EXPECT_TRUE(a.results.empty());
  ASSERT_EQ(b.results.size(), 1u);
  EXPECT_EQ(b.results[0].error, AcquireError::kNone);
}

TEST(FunctionPool, ScaleToZeroAfterIdleTimeout) {
  Harness h(settings(1, 3, 10));
  Got got;
  h.pool->acquire(got.handler());
  std::string id = h.backend.started()[0];
  h.backend.ready(id);
  h.pool->release(got.results[0].lease, Outcome::kOk);
  h.advance(Millis(999));
  h.pool->tick();
  h.backend.answer_checks(id, true);
  EXPECT_EQ(h.backend.live().size(), 1u);  // not idle long enough
  h.advance(Millis(1000));
  h.pool->tick();
  EXPECT_TRUE(h.backend.live().empty());
  EXPECT_EQ(h.backend.stopped(), std::vector<std::string>{id});
  EXPECT_EQ(h.pool->stats().ready, 0u);
  // The next request cold-starts again.
  h.pool->acquire(got.handler());
  EXPECT_EQ(h.backend.started().size(), 2u);
}

TEST(FunctionPool, BusyInstanceIsNotStoppedForIdleness) {
  Harness h(settings(1, 3, 10));
  Got got;
  h.pool->acquire(got.handler());
  h.backend.ready(h.backend.started()[0]);
  h.advance(Millis(5000));
  h.pool->tick();
  h.pool->tick();
  EXPECT_TRUE(h.backend.stopped().empty());
  EXPECT_EQ(h.backend.live().size(), 1u);
}

TEST(FunctionPool, MinInstancesKeptWarm) {
  PoolSettings s = settings(1, 3, 10);
  s.min_instances = 2;
  Harness h(s);
  h.pool->tick();
  ASSERT_EQ(h.backend.started().size(), 2u);
  for (auto& id : h.backend.started()) h.backend.ready(id);
  h.advance(Millis(10000));
  h.pool->tick();
  EXPECT_EQ(h.backend.live().size(), 2u);  // never below the minimum for idleness
  // One dies: it is replaced.
  h.backend.end(h.backend.started()[0], "vmm exited (signal 9)");
  EXPECT_EQ(h.backend.started().size(), 3u);
  EXPECT_EQ(h.backend.live().size(), 2u);
  EXPECT_EQ(h.pool->stats().replaced, 1u);
}

TEST(FunctionPool, DeadInstanceReplacedForQueuedWork) {
  Harness h(settings(1, 1, 10));
  Got got;
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  std::string first = h.backend.started()[0];
  h.backend.ready(first);
  ASSERT_EQ(got.results.size(), 1u);
  // The VMM dies mid-invocation; the invocation sees its connection break and reports it.
  h.backend.end(first, "vmm exited (signal 9)");
  EXPECT_EQ(got.results[0].lease.instance->end_reason, "vmm exited (signal 9)");  // crash detail
  h.pool->release(got.results[0].lease, Outcome::kBroken);  // no effect: already gone
  ASSERT_EQ(h.backend.started().size(), 2u);  // a fresh instance for the queued request
  std::string second = h.backend.started()[1];
  EXPECT_NE(first, second);
  h.backend.ready(second);
  ASSERT_EQ(got.results.size(), 2u);
  EXPECT_EQ(got.results[1].lease.instance->id, second);
  EXPECT_TRUE(got.results[1].lease.cold_start);
  // Everything of the dead instance was released.
  EXPECT_EQ(h.backend.live(), std::vector<std::string>{second});
}

TEST(FunctionPool, TimedOutInvocationRecyclesInstance) {
  Harness h(settings(1, 2, 10));
  Got got;
  h.pool->acquire(got.handler());
  std::string id = h.backend.started()[0];
  h.backend.ready(id);
  h.pool->release(got.results[0].lease, Outcome::kRecycle);
  EXPECT_EQ(h.backend.stopped(), std::vector<std::string>{id});
  h.pool->acquire(got.handler());
  EXPECT_EQ(h.backend.started().size(), 2u);
}

TEST(FunctionPool, HungInstanceDetectedByMissedHeartbeats) {
  Harness h(heartbeat_only_settings());
  Got got;
  const std::string id = start_leased(h, got);
  ASSERT_EQ(got.results.size(), 1u);
  h.pool->release(got.results[0].lease, Outcome::kOk);  // idle: heartbeats judge it
  h.advance(Millis(500));
  h.pool->tick();
  EXPECT_EQ(h.backend.pending_checks(id), 1u);
  h.advance(Millis(500));
  h.pool->tick();
  EXPECT_TRUE(h.backend.stopped().empty());  // one miss is tolerated
  h.advance(Millis(500));
  h.pool->tick();
  EXPECT_EQ(h.backend.stopped(), std::vector<std::string>{id});
  EXPECT_EQ(h.pool->stats().replaced, 1u);
}

// A busy instance's unanswered heartbeats are load, not a verdict: its invocation's own timeout
// recycles a guest that really hangs. Once idle, the misses count again.
TEST(FunctionPool, BusyInstanceIsNotRetiredForMissedHeartbeats) {
  Harness h(heartbeat_only_settings());
  Got got;
  const std::string id = start_leased(h, got);
  ASSERT_EQ(got.results.size(), 1u);
  for (int i = 0; i < 6; ++i) {
    h.advance(Millis(500));
    h.pool->tick();
  }
  EXPECT_TRUE(h.backend.stopped().empty());
  h.backend.answer_checks(id, false);
  h.advance(Millis(500));
  h.pool->tick();
  h.backend.answer_checks(id, false);
  EXPECT_TRUE(h.backend.stopped().empty());
  h.pool->release(got.results[0].lease, Outcome::kOk);
  for (int i = 0; i < 6 && h.backend.stopped().empty(); ++i) {
    h.advance(Millis(500));
    h.pool->tick();
    h.backend.answer_checks(id, false);
  }
  EXPECT_EQ(h.backend.stopped(), std::vector<std::string>{id});
  EXPECT_EQ(h.pool->stats().replaced, 1u);
}

TEST(FunctionPool, UnhealthyAnswerReplacesInstance) {
  PoolSettings s = settings(1, 2, 10);
  s.min_instances = 1;
  Harness h(s);
  h.pool->tick();
  std::string id = h.backend.started()[0];
  h.backend.ready(id);
  h.advance(Millis(500));
  h.pool->tick();
  h.backend.answer_checks(id, false);
  EXPECT_TRUE(h.backend.stopped().empty());  // one failure is tolerated (heartbeat_misses = 2)
  h.advance(Millis(500));
  h.pool->tick();
  h.backend.answer_checks(id, true);  // a success resets the count
  h.advance(Millis(500));
  h.pool->tick();
  h.backend.answer_checks(id, false);
  EXPECT_TRUE(h.backend.stopped().empty());
  h.advance(Millis(500));
  h.pool->tick();
  h.backend.answer_checks(id, false);
  EXPECT_EQ(h.backend.stopped(), std::vector<std::string>{id});
  EXPECT_EQ(h.backend.started().size(), 2u);  // min_instances refilled
}

TEST(FunctionPool, StartFailureFailsItsWaitersWithReason) {
  Harness h(settings(1, 1, 10));
  Got got;
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  h.backend.end(h.backend.started()[0], "not ready after 10 s");
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].error, AcquireError::kStartFailed);
  EXPECT_NE(got.results[0].message.find("not ready after 10 s"), std::string::npos);
  // The other waiter gets a new attempt.
  ASSERT_EQ(h.backend.started().size(), 2u);
  h.backend.ready(h.backend.started()[1]);
  ASSERT_EQ(got.results.size(), 2u);
  EXPECT_EQ(got.results[1].error, AcquireError::kNone);
}

TEST(FunctionPool, StartTimeout) {
  PoolSettings s = settings(1, 1, 10);
  s.start_timeout = Millis(2000);
  Harness h(s);
  Got got;
  h.pool->acquire(got.handler());
  h.advance(Millis(2000));
  h.pool->tick();
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].error, AcquireError::kStartFailed);
  EXPECT_EQ(h.backend.stopped().size(), 1u);
}

TEST(FunctionPool, NewVersionDrainsOldInstances) {
  Harness h(settings(1, 3, 10));
  Got got;
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  h.backend.ready(h.backend.started()[0]);
  h.backend.ready(h.backend.started()[1]);
  ASSERT_EQ(got.results.size(), 2u);
  h.pool->release(got.results[1].lease, Outcome::kOk);
  h.pool->update(settings(1, 3, 10), [](const std::string& id) { InstanceSpec s; s.instance_id = id; return s; }, 2);
  // The idle old instance stops now, the busy one when its request finishes.
  EXPECT_EQ(h.backend.stopped().size(), 1u);
  h.pool->release(got.results[0].lease, Outcome::kOk);
  EXPECT_EQ(h.backend.stopped().size(), 2u);
  h.pool->acquire(got.handler());
  EXPECT_EQ(h.backend.started().size(), 3u);  // served by a new-version instance
}

TEST(FunctionPool, ShutdownFailsQueueAndStopsAll) {
  Harness h(settings(1, 2, 10));
  Got got;
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  h.pool->acquire(got.handler());
  h.backend.ready(h.backend.started()[0]);
  bool done = false;
  h.pool->shutdown([&done] { done = true; });
  EXPECT_TRUE(done);
  EXPECT_TRUE(h.backend.live().empty());
  ASSERT_EQ(got.results.size(), 3u);
  EXPECT_EQ(got.results[1].error, AcquireError::kShuttingDown);
  EXPECT_EQ(got.results[2].error, AcquireError::kShuttingDown);
  Got late;
  h.pool->acquire(late.handler());
  ASSERT_EQ(late.results.size(), 1u);
  EXPECT_EQ(late.results[0].error, AcquireError::kShuttingDown);
}

// The pool names its next instance ahead (WarmStarts::prepare, where VmmBackend parks a
// kiln-vmm): that instance starts with exactly that id; the next one is announced once it has
// answered its first request (not before: preparing a parked kiln-vmm would take CPU and
// kilnd's loop from that answer), again after a new version, and shutdown withdraws the hint.
TEST(FunctionPool, AnnouncesTheNextInstanceToTheBackend) {
  Harness h(settings(1, 5, 10));
  ASSERT_EQ(h.backend.prepared.size(), 1u);
  const std::uint64_t owner = h.backend.prepared.begin()->first;
  const std::string announced = h.backend.prepared[owner];
  ASSERT_FALSE(announced.empty());
  EXPECT_TRUE(h.backend.started().empty());

  Got got;
  h.pool->acquire(got.handler());
  ASSERT_EQ(h.backend.started().size(), 1u);
  EXPECT_EQ(h.backend.started()[0], announced);
  EXPECT_EQ(h.backend.prepared[owner], announced);  // nothing new while it starts
  h.backend.ready(announced);
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_TRUE(got.results[0].lease.cold_start);
  EXPECT_EQ(h.backend.prepared[owner], announced);  // nor while it answers its first request
  h.pool->release(got.results[0].lease, Outcome::kOk);
  const std::string second = h.backend.prepared[owner];
  EXPECT_FALSE(second.empty());
  EXPECT_NE(second, announced);
  Got again;
  h.pool->acquire(again.handler());  // served by the ready instance: no start, no new hint
  ASSERT_EQ(again.results.size(), 1u);
  h.pool->release(again.results[0].lease, Outcome::kOk);
  EXPECT_EQ(h.backend.prepared[owner], second);
  EXPECT_EQ(h.backend.started().size(), 1u);

  h.pool->update(settings(1, 5, 10), [](const std::string& id) {
    InstanceSpec spec;
    spec.instance_id = id;
    spec.function = "fn";
    return spec;
  }, 2);
  const std::string third = h.backend.prepared[owner];
  EXPECT_NE(third, second);
  h.pool->shutdown([] {});
  EXPECT_EQ(h.backend.prepared[owner], "");
}

// The announced id goes to one start only: a second instance started before the first has
// answered gets an id of its own, and the next announcement waits for the first answer. An
// instance ready with nothing to answer (its waiter gave up) or one that failed to start
// announces the next at once.
TEST(FunctionPool, TheAnnouncedIdStartsOneInstanceOnly) {
  Harness h(settings(1, 5, 10));
  const std::uint64_t owner = h.backend.prepared.begin()->first;
  const std::string announced = h.backend.prepared[owner];
  Got a, b;
  h.pool->acquire(a.handler());
  h.pool->acquire(b.handler());  // concurrency 1: a second instance
  ASSERT_EQ(h.backend.started().size(), 2u);
  EXPECT_EQ(h.backend.started()[0], announced);
  EXPECT_NE(h.backend.started()[1], announced);
  EXPECT_EQ(h.backend.prepared[owner], announced);

  h.backend.end(h.backend.started()[1], "boot failed");  // its start failed: announce now
  const std::string after_failure = h.backend.prepared[owner];
  EXPECT_NE(after_failure, announced);
  EXPECT_FALSE(after_failure.empty());

  Harness idle(settings(1, 5, 10));
  const std::uint64_t idle_owner = idle.backend.prepared.begin()->first;
  const std::string first = idle.backend.prepared[idle_owner];
  Got c;
  const std::uint64_t waiter = idle.pool->acquire(c.handler());
  idle.pool->cancel(waiter);  // the caller gave up while the instance started
  idle.backend.ready(first);
  EXPECT_TRUE(c.results.empty());
  EXPECT_NE(idle.backend.prepared[idle_owner], first);
  EXPECT_FALSE(idle.backend.prepared[idle_owner].empty());
}

// Warm starts are a backend's optional extra: without them the pool starts and serves
// instances all the same and nothing is announced; the daemon's counters come through
// VmBackend::snapshot_stats() either way (zero without).
TEST(FunctionPool, WorksWithABackendWithoutWarmStarts) {
  Harness warm(settings(1, 5, 10));
  warm.backend.stats.restores = 7;
  EXPECT_EQ(static_cast<const VmBackend&>(warm.backend).snapshot_stats().restores, 7u);

  Harness h(settings(1, 5, 10), false);
  EXPECT_EQ(h.backend.warm_starts(), nullptr);
  h.backend.stats.restores = 7;
  EXPECT_EQ(static_cast<const VmBackend&>(h.backend).snapshot_stats().restores, 0u);
  Got got;
  const std::string id = start_leased(h, got);
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].error, AcquireError::kNone);
  EXPECT_EQ(got.results[0].lease.instance->id, id);
  h.pool->release(got.results[0].lease, Outcome::kOk);
  h.pool->shutdown([] {});
  EXPECT_TRUE(h.backend.prepared.empty());
}

}  // namespace
}  // namespace kiln::kilnd::pool

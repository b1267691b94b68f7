// e2e load (issue 9, label e2e; real microVMs, the nested test host here): 10 functions x 2 warm
// instances = 20 kiln-vmm microVMs, 200 concurrent event invocations each echoing its own nonce:
// no wrong and no lost answer. Soak (skipped unless KILN_LOAD_SOAK_SECONDS is set): bursts for
// that long while fd count, threads and RSS of kilnd and every kiln-vmm are sampled from /proc.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/lib/kilnd_fixture.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kFunctions = 10;
constexpr int kConcurrent = 200;
constexpr int kMemoryMib = 64;  // 20 guests fit the test host's RAM (tests/kvm-host/run: 6G)

std::string function_name(int i) { return "load" + std::to_string(i); }

struct BurstResult {
  int ok = 0;
  int wrong = 0;  // 200 with someone else's answer
  int lost = 0;  // no answer, or an error status
  std::vector<std::string> samples;  // the first few failures, for the message
};

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

// Issue 9's shape is 2 per function (20 microVMs); KILN_LOAD_INSTANCES_PER_FUNCTION=1 gives the
// 10-microVM variant the emulated test host sustains (docs/reliability.md).
const int kInstancesPerFunction = static_cast<int>(env_long("KILN_LOAD_INSTANCES_PER_FUNCTION", 2));

class LoadE2e : public kiln::e2e::KilndTest {
 protected:
  void SetUp() override {
    KilndTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    start({"--boot-timeout-ms", "300000"});  // boots queue up behind each other on an emulated host
  }

  // 10 functions with 2 warm instances each. All 200 invocations are in kilnd at once; each
  // instance takes KILN_LOAD_INSTANCE_CONCURRENCY of them (default 1) and kilnd queues the rest
  // (max_queue 200). With 10 per instance (all 200 inside the guests at once) most fail kilnd's
  // 5 s vsock connect deadline on the emulated test host (docs/reliability.md). Deployed one after the other so that only two
  // guests boot at a time (the pool gives an instance 60 s from spawn to ready).
  void deploy_fleet() {
    for (int f = 0; f < kFunctions; ++f) {
      json cfg = {{"image", "oci:" + kilnd_->paths().hello_oci},
                  {"memory_mib", kMemoryMib},
                  {"timeout_ms", 120000},
                  {"concurrency", env_long("KILN_LOAD_INSTANCE_CONCURRENCY", 1)},
                  {"min_instances", kInstancesPerFunction},
                  {"max_instances", kInstancesPerFunction},
                  {"max_queue", kConcurrent}};
      auto rec = kilnd_->deploy(function_name(f), cfg);
      ASSERT_TRUE(rec.ok()) << rec.error().message;
      ASSERT_EQ((*rec)["image"]["state"], "ready") << rec->dump();
      auto ready = kilnd_->wait_ready_instances(function_name(f), kInstancesPerFunction);
      ASSERT_TRUE(ready.ok()) << ready.error().message;
    }
    ASSERT_EQ(kiln::e2e::vmm_pids(state_).size(), static_cast<std::size_t>(kFunctions * kInstancesPerFunction));
  }

  // `n` invocations at once, round-robin over the functions, each with a unique nonce.
  BurstResult burst(int n, std::uint64_t round) {
    std::vector<std::thread> threads;
    std::vector<int> verdict(static_cast<std::size_t>(n), 0);  // 1 ok, 2 wrong, 3 lost
    std::vector<std::string> detail(static_cast<std::size_t>(n));
    std::mt19937_64 rng(std::random_device{}());
    std::vector<std::string> nonces;
    for (int i = 0; i < n; ++i) {
      nonces.push_back("n" + std::to_string(round) + "-" + std::to_string(i) + "-" + std::to_string(rng()));
    }
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        auto idx = static_cast<std::size_t>(i);
        std::string fn = function_name(i % kFunctions);
        auto r = kilnd_->call("POST", "/v1/functions/" + fn + "/invoke", json({{"name", nonces[idx]}}).dump());
        if (!r.ok() || r->status != 200) {
          verdict[idx] = 3;
          detail[idx] = fn + ": " + (r.ok() ? std::to_string(r->status) + " " + r->body : r.error().message);
          return;
        }
        json j = json::parse(r->body, nullptr, false);
        bool right = j.is_object() && j["message"] == "hello, " + nonces[idx] &&
                     j["request_id"] == r->headers["x-kiln-request-id"];
        verdict[idx] = right ? 1 : 2;
        if (!right) detail[idx] = fn + ": wanted " + nonces[idx] + ", got " + r->body;
      });
    }
    for (auto& t : threads) t.join();
    BurstResult out;
    for (int i = 0; i < n; ++i) {
      auto idx = static_cast<std::size_t>(i);
      (verdict[idx] == 1 ? out.ok : verdict[idx] == 2 ? out.wrong : out.lost)++;
      if (verdict[idx] != 1 && out.samples.size() < 5) out.samples.push_back(detail[idx]);
    }
    return out;
  }

  static std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += "\n  " + x;
    return s;
  }

};

// Short variant (the e2e tier): KILN_LOAD_ROUNDS bursts of 200 (default 2).
TEST_F(LoadE2e, TwoHundredConcurrentNoncesOverTwentyInstances) {
  deploy_fleet();
  if (HasFatalFailure()) return;
  long rounds = env_long("KILN_LOAD_ROUNDS", 2);
  int total_ok = 0;
  for (long r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    BurstResult b = burst(kConcurrent, static_cast<std::uint64_t>(r));
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("load: round %ld: %d concurrent over %d functions / %d instances: %d ok, %d wrong, %d lost in %.1f s\n",
                r, kConcurrent, kFunctions, kFunctions * kInstancesPerFunction, b.ok, b.wrong, b.lost, s);
    EXPECT_EQ(b.wrong, 0) << joined(b.samples);
    EXPECT_EQ(b.lost, 0) << joined(b.samples);
    total_ok += b.ok;
  }
  EXPECT_EQ(total_ok, kConcurrent * rounds);
  // Every instance stayed up: no replacement under load.
  for (int f = 0; f < kFunctions; ++f) {
    auto rec = kilnd_->function(function_name(f));
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    EXPECT_EQ((*rec)["pool"]["replaced"], 0) << rec->dump();
  }
  EXPECT_EQ(kilnd_->stop(SIGTERM), 0);
  EXPECT_TRUE(kiln::e2e::vmm_pids(state_).empty());
}

// Soak: KILN_LOAD_SOAK_SECONDS of back-to-back bursts; usage of kilnd and each kiln-vmm must
// stay steady between the first sample (after one warm-up burst) and the last.
TEST_F(LoadE2e, Soak) {
  long seconds = env_long("KILN_LOAD_SOAK_SECONDS", 0);
  if (seconds <= 0) GTEST_SKIP() << "set KILN_LOAD_SOAK_SECONDS (e.g. 600) to run the soak";
  deploy_fleet();
  if (HasFatalFailure()) return;
  ASSERT_EQ(burst(kConcurrent, 0).ok, kConcurrent);  // warm-up: first-touch memory, lazily made fds

  std::vector<pid_t> pids = {kilnd_->pid()};
  for (pid_t p : kiln::e2e::vmm_pids(state_)) pids.push_back(p);
  std::map<pid_t, kiln::e2e::ProcUsage> first, last, peak;
  auto sample = [&](std::map<pid_t, kiln::e2e::ProcUsage>& into) {
    for (pid_t p : pids) {
      auto u = kiln::e2e::proc_usage(p);
      ASSERT_TRUE(u.ok()) << u.error().message << " (a process of the fleet died)";
      into[p] = *u;
      auto& pk = peak[p];
      pk.fds = std::max(pk.fds, u->fds);
      pk.threads = std::max(pk.threads, u->threads);
      pk.rss_kib = std::max(pk.rss_kib, u->rss_kib);
    }
  };
  sample(first);
  auto end = Clock::now() + std::chrono::seconds(seconds);
  std::uint64_t round = 1;
  long invocations = 0, wrong = 0, lost = 0;
  auto next_report = Clock::now();
  while (Clock::now() < end) {
    BurstResult b = burst(kConcurrent, round++);
    invocations += kConcurrent;
    wrong += b.wrong;
    lost += b.lost;
    EXPECT_EQ(b.wrong + b.lost, 0) << joined(b.samples);
    // Between bursts: in-flight work is over, so the sample reflects steady state.
    sample(last);
    if (HasFatalFailure()) return;
    if (Clock::now() >= next_report) {
      std::printf("soak: %ld invocations, %ld wrong, %ld lost; kilnd fds %zu threads %zu rss %llu KiB\n", invocations,
                  wrong, lost, last[kilnd_->pid()].fds, last[kilnd_->pid()].threads,
                  static_cast<unsigned long long>(last[kilnd_->pid()].rss_kib));
      std::fflush(stdout);
      next_report = Clock::now() + std::chrono::seconds(60);
    }
  }
  std::printf("soak: %ld s, %ld invocations in bursts of %d, %ld wrong, %ld lost\n", seconds, invocations, kConcurrent,
              wrong, lost);
  std::printf("%-8s %-7s %13s %13s %17s\n", "process", "pid", "fds first/last", "threads f/l", "rss KiB f/l/peak");
  for (pid_t p : pids) {
    const auto &a = first[p], &b = last[p];
    std::printf("%-8s %-7d %6zu/%-6zu %6zu/%-6zu %8llu/%llu/%llu\n", p == kilnd_->pid() ? "kilnd" : "kiln-vmm", p, a.fds,
                b.fds, a.threads, b.threads, static_cast<unsigned long long>(a.rss_kib),
                static_cast<unsigned long long>(b.rss_kib), static_cast<unsigned long long>(peak[p].rss_kib));
    // Steady: fds and threads back to their first value between bursts; RSS within 25% + 8 MiB
    // (allocator arenas and guest page touches settle after the warm-up).
    EXPECT_LE(b.fds, a.fds + 2) << "fd growth in pid " << p;
    EXPECT_LE(b.threads, a.threads + 2) << "thread growth in pid " << p;
    EXPECT_LE(b.rss_kib, a.rss_kib + a.rss_kib / 4 + 8192) << "RSS growth in pid " << p;
  }
  EXPECT_EQ(wrong + lost, 0);
}

}  // namespace

// e2e load (issue 9, label load; real microVMs, the nested test host here): 10 functions x 2
// warm instances = 20 kiln-vmm microVMs, KILN_LOAD_ROUNDS bursts of 200 concurrent event
// invocations each echoing its own nonce: no wrong and no lost answer. Soak (skipped unless
// KILN_LOAD_SOAK_SECONDS is set): bursts for that long while fd count, threads and RSS of kilnd
// and every kiln-vmm are sampled from /proc. The one-burst variant is load_short_e2e_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/load/load_fleet.h"

namespace {

using kiln::e2e::load::BurstResult;
using kiln::e2e::load::env_long;
using kiln::e2e::load::kConcurrent;
using kiln::e2e::load::LoadE2e;
using Clock = std::chrono::steady_clock;

// KILN_LOAD_ROUNDS bursts of 200 (default 2).
TEST_F(LoadE2e, TwoHundredConcurrentNoncesOverTwentyInstances) {
  deploy_fleet();
  if (HasFatalFailure()) return;
  const long rounds = env_long("KILN_LOAD_ROUNDS", 2);
  int total_ok = 0;
  for (long r = 0; r < rounds; ++r) total_ok += checked_burst(static_cast<std::uint64_t>(r)).ok;
  EXPECT_EQ(total_ok, kConcurrent * rounds);
  expect_no_replacement_and_clean_stop();
}

// Soak: KILN_LOAD_SOAK_SECONDS of back-to-back bursts; usage of kilnd and each kiln-vmm must
// stay steady between the first sample (after one warm-up burst) and the last.
TEST_F(LoadE2e, Soak) {
  long seconds = env_long("KILN_LOAD_SOAK_SECONDS", 0);
  if (seconds <= 0) GTEST_SKIP() << "set KILN_LOAD_SOAK_SECONDS (e.g. 600) to run the soak";
  deploy_fleet();
  if (HasFatalFailure()) return;
  ASSERT_EQ(burst(kConcurrent, 0).ok, kConcurrent);  // warm-up: first-touch memory, lazily made fds
  // Every function's parked kiln-vmm done loading its snapshot (it opens its files and starts
  // its threads then), so the first sample is each process's steady state.
  auto parked_ready = Clock::now() + std::chrono::seconds(120);
  while (true) {
    auto m = kilnd_->call("GET", "/metrics");
    ASSERT_TRUE(m.ok()) << m.error().message;
    if (m->body.find("kiln_parked_vmms{state=\"starting\"} 0\n") != std::string::npos) break;
    ASSERT_LT(Clock::now(), parked_ready) << "parked kiln-vmms still starting after 120 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a remote state
  }

  std::vector<pid_t> pids = {kilnd_->pid()};
  for (pid_t p : kiln::e2e::vmm_pids(state_)) pids.push_back(p);
  std::map<pid_t, kiln::e2e::ProcUsage> first, last, peak;
  // Every sample's fds and threads per process: a leak raises their floor, while a connection
  // still closing at the moment of a sample only adds to that one sample.
  std::map<pid_t, std::vector<kiln::e2e::ProcUsage>> history;
  std::set<pid_t> died;  // a fleet process that ended: a failure, but the soak goes on to report
  auto sample = [&](std::map<pid_t, kiln::e2e::ProcUsage>& into) {
    for (pid_t p : pids) {
      if (died.count(p)) continue;
      auto u = kiln::e2e::proc_usage(p);
      EXPECT_TRUE(u.ok()) << (u.ok() ? "" : u.error().message) << " (a process of the fleet died)";
      if (!u.ok()) {
        died.insert(p);
        continue;
      }
      into[p] = *u;
      history[p].push_back(*u);
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
    for (const auto& [kind, n] : b.kinds) {
      std::printf("soak: round %ju: %4d x %s\n", static_cast<std::uintmax_t>(round - 1), n, kind.c_str());
    }
    if (b.wrong + b.lost > 0) print_platform_logs(b);
    // Between bursts: in-flight work is over, so the sample reflects steady state.
    sample(last);
    if (Clock::now() >= next_report) {
      // The kiln-vmms that live on, summed (the per-process table comes at the end).
      std::size_t vmms = 0, fds = 0, threads = 0;
      unsigned long long rss = 0;
      for (pid_t p : pids) {
        if (p == kilnd_->pid() || died.count(p)) continue;
        ++vmms;
        fds += last[p].fds;
        threads += last[p].threads;
        rss += last[p].rss_kib;
      }
      std::printf("soak: %ld invocations, %ld wrong, %ld lost; kilnd fds %zu threads %zu rss %llu KiB; %zu kiln-vmm: "
                  "fds %zu threads %zu rss %llu KiB in all\n",
                  invocations, wrong, lost, last[kilnd_->pid()].fds, last[kilnd_->pid()].threads,
                  static_cast<unsigned long long>(last[kilnd_->pid()].rss_kib), vmms, fds, threads, rss);
      std::fflush(stdout);
      next_report = Clock::now() + std::chrono::seconds(60);
    }
  }
  std::printf("soak: %ld s, %ld invocations in bursts of %d, %ld wrong, %ld lost\n", seconds, invocations, kConcurrent,
              wrong, lost);
  std::printf("%-8s %-7s %13s %13s %17s\n", "process", "pid", "fds floor f/l", "threads f/l", "rss KiB f/l/peak");
  for (pid_t p : pids) {
    if (died.count(p)) {
      std::printf("%-8s %-7d died during the soak (first: fds %zu threads %zu rss %llu KiB)\n", "kiln-vmm", p, first[p].fds,
                  first[p].threads, static_cast<unsigned long long>(first[p].rss_kib));
      continue;
    }
    const auto &a = first[p], &b = last[p];
    // The floor of fds and threads over the first three samples and over the last three.
    const auto& h = history[p];
    auto floor_of = [&h](std::size_t from, std::size_t to, std::size_t kiln::e2e::ProcUsage::*field) {
      std::size_t v = SIZE_MAX;
      for (std::size_t i = from; i < to && i < h.size(); ++i) v = std::min(v, h[i].*field);
      return v;
    };
    const std::size_t tail = h.size() > 3 ? h.size() - 3 : 0;
    const std::size_t fds0 = floor_of(0, 3, &kiln::e2e::ProcUsage::fds), fds1 = floor_of(tail, h.size(), &kiln::e2e::ProcUsage::fds);
    const std::size_t thr0 = floor_of(0, 3, &kiln::e2e::ProcUsage::threads),
                      thr1 = floor_of(tail, h.size(), &kiln::e2e::ProcUsage::threads);
    std::printf("%-8s %-7d %6zu/%-6zu %6zu/%-6zu %8llu/%llu/%llu\n", p == kilnd_->pid() ? "kilnd" : "kiln-vmm", p, fds0,
                fds1, thr0, thr1, static_cast<unsigned long long>(a.rss_kib),
                static_cast<unsigned long long>(b.rss_kib), static_cast<unsigned long long>(peak[p].rss_kib));
    // Steady: the floor of fds and threads where it began; RSS within 25% + 8 MiB (allocator
    // arenas and guest page touches settle after the warm-up).
    EXPECT_LE(fds1, fds0 + 2) << "fd growth in pid " << p;
    EXPECT_LE(thr1, thr0 + 2) << "thread growth in pid " << p;
    EXPECT_LE(b.rss_kib, a.rss_kib + a.rss_kib / 4 + 8192) << "RSS growth in pid " << p;
  }
  EXPECT_EQ(wrong + lost, 0);
}

}  // namespace

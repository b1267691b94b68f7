// e2e (label e2e; the nested test host here): kilnd's warm starts from snapshots with the real
// kiln-vmm. The first instance of a function is snapshotted once ready; later instances are
// restored from it and answer their first invocation; two restored instances read different
// /dev/urandom bytes and carry different instance ids; the guest clock is right after restore
// although the snapshot is older; restored instances share the snapshot's memory (PSS < RSS);
// a corrupted snapshot is set aside and the instance cold-boots, the invocation still succeeds.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/e2e/lib/kilnd_fixture.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using kiln::kilnd::client::HttpResult;

// CGI: random bytes, the guest's wall clock, then an optional sleep (?SECONDS) to keep the
// instance busy so the pool starts more.
constexpr const char* kInfoScript =
    "#!/bin/sh\n"
    "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
    "echo \"rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')\"\n"
    "echo \"time=$(date +%s)\"\n"
    "[ -n \"$QUERY_STRING\" ] && sleep \"$QUERY_STRING\"\n"
    "echo done\n";

std::int64_t wall_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Rss and Pss (KiB) of a process, from /proc/PID/smaps_rollup.
std::pair<std::uint64_t, std::uint64_t> rss_pss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::uint64_t rss = 0, pss = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Rss:", 0) == 0) rss = std::strtoull(line.c_str() + 4, nullptr, 10);
    if (line.rfind("Pss:", 0) == 0) pss = std::strtoull(line.c_str() + 4, nullptr, 10);
  }
  return {rss, pss};
}

class SnapshotE2e : public kiln::e2e::KilndTest {
 protected:
  json config() {
    json c = kiln::e2e::cgi_function_config(kilnd_->paths(), {{"info", kInfoScript}});
    c["concurrency"] = 1;
    c["max_instances"] = 3;
    c["timeout_ms"] = 120000;
    return c;
  }
  std::vector<fs::path> snapshots(const std::string& suffix = "") {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state_ + "/snapshots", ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() == 64 + suffix.size() && name.substr(64) == suffix) out.push_back(e.path());
    }
    return out;
  }
  std::string logs(const std::string& fn) { return call("GET", "/v1/functions/" + fn + "/logs").body; }
  // Reads /metrics until it has `line` or `timeout` passes; returns the last body read.
  std::string await_metric(const std::string& line, std::chrono::seconds timeout) {
    std::string body;
    for (auto end = Clock::now() + timeout; Clock::now() < end;) {
      body = call("GET", "/metrics").body;
      if (body.find(line) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return body;
  }
};

TEST_F(SnapshotE2e, RestoredInstancesAreFreshSharedAndACorruptSnapshotFallsBack) {
  start();
  auto deployed = kilnd_->deploy("snap", config());
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  ASSERT_EQ((*deployed)["image"]["state"], "ready") << deployed->dump();

  // 1. The first instance cold-boots and is snapshotted before it serves.
  auto first = call("GET", "/v1/functions/snap/http/cgi-bin/info");
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string first_instance = first.headers["x-kiln-instance-id"];
  ASSERT_EQ(snapshots().size(), 1u) << logs("snap");
  std::printf("snapshot: %s (state %ju bytes)\n", snapshots()[0].filename().c_str(),
              static_cast<std::uintmax_t>(fs::file_size(snapshots()[0] / "state")));
  EXPECT_NE(logs("snap").find("snapshot " + snapshots()[0].filename().string().substr(0, 12) + " taken"), std::string::npos);

  // 2. Three slow calls at once: the busy first instance takes one, two more instances start
  //    from the snapshot, one of them on the kiln-vmm parked ahead. First wait until that parked
  //    VMM is ready and the snapshot's guest clock is far enough behind the host's that a
  //    restore which did not set the clock would show (the checks below allow 2 s).
  const std::string parked_ready = "kiln_parked_vmms{state=\"ready\"} 1";
  const std::string gauges = await_metric(parked_ready, std::chrono::seconds(120));
  ASSERT_NE(gauges.find(parked_ready), std::string::npos) << gauges;
  const std::int64_t snapshot_clock = std::stoll(kiln::e2e::key_values(first.body).at("time"));
  while (wall_seconds() < snapshot_clock + 6) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::int64_t before = wall_seconds();
  std::vector<std::future<HttpResult>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::async(std::launch::async, [this] { return call("GET", "/v1/functions/snap/http/cgi-bin/info?5"); }));
  }
  std::map<std::string, std::map<std::string, std::string>> by_instance;
  for (auto& c : calls) {
    HttpResult r = c.get();
    ASSERT_EQ(r.status, 200) << r.body;
    by_instance[r.headers["x-kiln-instance-id"]] = kiln::e2e::key_values(r.body);
  }
  const std::int64_t after = wall_seconds();
  ASSERT_EQ(by_instance.size(), 3u) << "three calls should have run on three instances";
  const std::string log_text = logs("snap");
  std::set<std::string> rands;
  int restored = 0;
  for (const auto& [instance, f] : by_instance) {
    std::printf("instance %s: rand=%s time=%s\n", instance.c_str(), f.at("rand").c_str(), f.at("time").c_str());
    rands.insert(f.at("rand"));
    if (instance == first_instance) continue;
    EXPECT_NE(log_text.find("instance " + instance + " restored from snapshot"), std::string::npos) << log_text;
    ++restored;
    // The clock was set after restore: the snapshot's own clock is 20+ s behind.
    const std::int64_t t = std::stoll(f.at("time"));
    EXPECT_GE(t, before - 2) << "guest clock stale after restore";
    EXPECT_LE(t, after + 2);
  }
  EXPECT_EQ(restored, 2);
  // One of the two took over the kiln-vmm kilnd parked for the function's next instance (spawned
  // while the first instance served), so its restore was PUT /snapshot/load plus the identity.
  EXPECT_NE(log_text.find("(parked kiln-vmm, load paused ahead "), std::string::npos) << log_text;
  EXPECT_NE(log_text.find(", resume "), std::string::npos) << log_text;
  EXPECT_EQ(rands.size(), 3u) << "instances restored from one snapshot share random state";

  // 3. Restored instances share the snapshot's memory pages (page cache, MAP_PRIVATE).
  std::uint64_t rss = 0, pss = 0;
  for (const auto& [instance, f] : by_instance) {
    if (instance == first_instance) continue;
    auto [r, p] = rss_pss(kilnd_->instance_vmm_pid(instance));
    std::printf("instance %s: kiln-vmm Rss %ju KiB, Pss %ju KiB\n", instance.c_str(), static_cast<std::uintmax_t>(r),
                static_cast<std::uintmax_t>(p));
    rss += r;
    pss += p;
  }
  ASSERT_GT(rss, 0u);
  EXPECT_LT(pss * 10, rss * 9) << "restored instances do not share memory (Pss " << pss << " KiB, Rss " << rss << " KiB)";

  // 4. A corrupted snapshot: set aside, the new instance cold-boots, the call still succeeds.
  ASSERT_EQ(call("DELETE", "/v1/functions/snap").status / 100, 2);
  const fs::path snap = snapshots()[0];
  {
    std::fstream f(snap / "state", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  deployed = kilnd_->deploy("snap", config());
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  auto again = call("GET", "/v1/functions/snap/http/cgi-bin/info");
  ASSERT_EQ(again.status, 200) << again.body;
  const std::string fallback_log = logs("snap");
  EXPECT_NE(fallback_log.find("did not load"), std::string::npos) << fallback_log;
  EXPECT_NE(fallback_log.find("checksum"), std::string::npos) << fallback_log;
  EXPECT_EQ(snapshots(".bad").size(), 1u);
  // Counted: created (first and the fallback's fresh one), restored twice, one load failure.
  const std::string want = "kiln_snapshot_events_total{event=\"load_failed\"} 1";
  const std::string metrics = await_metric(want, std::chrono::seconds(30));
  EXPECT_NE(metrics.find(want), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("kiln_snapshot_events_total{event=\"restored\"} 2"), std::string::npos) << metrics;
  std::printf("corrupt snapshot: %s\n", fallback_log.substr(fallback_log.find("did not load") - 40, 200).c_str());
}

}  // namespace

// Benchmark (issue 7): examples/hello's first response from an instance restored from a snapshot
// against one that cold-boots (two kilnds, `--snapshots on` / `off`, rounds interleaved), and the
// latency of kiln-vmm's PUT /snapshot/load alone. Needs a KVM that runs Linux guests; README.md.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "src/client/http_client.h"
#include "tests/e2e/lib/kilnd_harness.h"

extern char** environ;

namespace kiln::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kFunction = "hello";
constexpr const char* kEvent = R"({"name":"bench"})";

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Nearest-rank percentile of `v` (p in [0, 100]); 0 for an empty series.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

// Polls `done` every 20 ms (remote state: a process going away, a file appearing) until it holds.
template <typename Pred>
Status wait_until(Pred done, std::chrono::milliseconds limit, const std::string& what) {
  const auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > end) return make_error("timed out waiting for " + what);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ok_status();
}

struct Sample {
  double first_response_ms = 0;  // deploy ready -> first 200 answer
  double restore_log_ms = -1;    // kilnd's own "restored ... in N ms" (restored instances only)
};

// One round on `kilnd`: DELETE the function, wait until its kiln-vmm is gone, PUT it again (same
// config, so the same VM shape and snapshot key), then time its first invocation, which starts
// a new instance (restored or cold-booted).
Result<Sample> run_round(e2e::KilndProcess& kilnd, const json& cfg, bool expect_restore) {
  auto del = kilnd.call("DELETE", std::string("/v1/functions/") + kFunction);
  if (!del.ok()) return del.error();
  if (del->status / 100 != 2) return make_error("DELETE: " + std::to_string(del->status) + " " + del->body);
  KILN_TRY(wait_until([&] { return e2e::vmm_pids(kilnd.state_dir()).empty(); }, std::chrono::seconds(120),
                      "the instance to stop"));
  KILN_ASSIGN_OR_RETURN(json rec, kilnd.deploy(kFunction, cfg));
  if (rec["image"]["state"] != "ready") return make_error("image not ready: " + rec.dump());
  const auto t0 = Clock::now();
  auto r = kilnd.call("POST", std::string("/v1/functions/") + kFunction + "/invoke", kEvent);
  Sample s;
  s.first_response_ms = ms_since(t0);
  if (!r.ok()) return r.error();
  if (r->status != 200 || r->body.find("hello, bench") == std::string::npos || r->headers["x-kiln-cold-start"] != "1") {
    return make_error("first invoke: " + std::to_string(r->status) + " cold=" + r->headers["x-kiln-cold-start"] + " " +
                      r->body);
  }
  const std::string id = r->headers["x-kiln-instance-id"];
  auto logs = kilnd.call("GET", std::string("/v1/functions/") + kFunction + "/logs");
  if (!logs.ok()) return logs.error();
  const std::string needle = "instance " + id + " restored from snapshot ";
  const auto at = logs->body.find(needle);
  if (expect_restore != (at != std::string::npos)) {
    return make_error(std::string("instance ") + id + (expect_restore ? " was not restored" : " was restored") +
                      "; logs:\n" + logs->body);
  }
  if (at != std::string::npos) {
    const auto in = logs->body.find(" in ", at + needle.size());
    if (in != std::string::npos) s.restore_log_ms = std::atof(logs->body.c_str() + in + 4);
  }
  return s;
}

// The one snapshot directory (<state>/snapshots/<64 hex key>/{state,mem}) of `state_dir`.
Result<fs::path> the_snapshot(const std::string& state_dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir + "/snapshots", ec)) {
    if (e.path().filename().string().size() == 64 && fs::exists(e.path() / "mem")) found.push_back(e.path());
  }
  if (found.size() != 1) return make_error("expected one snapshot in " + state_dir + ", found " + std::to_string(found.size()));
  return found[0];
}

// Spawns `kiln-vmm --api-sock SOCK` (output to LOG), waits for its socket, then times
// PUT /snapshot/load alone (as kilnd sends it: resume, vsock moved to a fresh path).
Result<double> direct_load(const std::string& vmm, const fs::path& snap, const std::string& dir, int i) {
  const std::string sock = dir + "/api-" + std::to_string(i) + ".sock";
  const std::string vsock = dir + "/vsock-" + std::to_string(i) + ".sock";
  const std::string log = dir + "/vmm-" + std::to_string(i) + ".log";
  std::vector<std::string> args = {vmm, "--api-sock", sock};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return make_error("posix_spawn " + vmm + ": " + std::strerror(rc));
  struct Reap {
    pid_t child;
    ~Reap() {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
  } reap{pid};
  KILN_TRY(wait_until([&] { return fs::exists(sock); }, std::chrono::seconds(30), sock));
  json load = {{"snapshot_path", (snap / "state").string()},
               {"mem_backend", {{"backend_type", "File"}, {"backend_path", (snap / "mem").string()}}},
               {"vsock_override", {{"uds_path", vsock}}},
               {"resume_vm", true}};
  kilnd::client::Endpoint ep;
  ep.unix_path = sock;
  kilnd::client::RequestOptions opts;
  opts.timeout = std::chrono::seconds(120);
  opts.headers["Content-Type"] = "application/json";
  // The socket file exists from bind() on, a moment before listen(): a refused connect is
  // retried (quick, and not counted: each attempt restarts the clock).
  const auto end = Clock::now() + std::chrono::seconds(30);
  auto t0 = Clock::now();
  auto r = kilnd::client::request(ep, "PUT", "/snapshot/load", load.dump(), opts);
  while (!r.ok() && r.error().message.find("cannot connect") != std::string::npos && Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    t0 = Clock::now();
    r = kilnd::client::request(ep, "PUT", "/snapshot/load", load.dump(), opts);
  }
  const double ms = ms_since(t0);
  if (!r.ok()) return r.error();
  if (r->status != 204) return make_error("PUT /snapshot/load: " + std::to_string(r->status) + " " + r->body);
  return ms;
}

void row(const char* name, const std::vector<double>& v) {
  std::printf("| %-44s | %3zu | %9.1f | %9.1f | %9.1f | %9.1f |\n", name, v.size(), percentile(v, 50), percentile(v, 90),
              v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()),
              v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
}

int run(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 10;
  if (rounds <= 0) {
    std::fprintf(stderr, "usage: bench_snapshot [ROUNDS=10]\n");
    return 2;
  }
  auto fail = [](const std::string& what, const Error& e) {
    std::fprintf(stderr, "bench_snapshot: %s: %s\n", what.c_str(), e.message.c_str());
    return 1;
  };
  auto dir_on = e2e::make_temp_dir("snapbench-on");
  auto dir_off = e2e::make_temp_dir("snapbench-off");
  auto dir_vmm = e2e::make_temp_dir("snapbench-vmm");
  if (!dir_on.ok() || !dir_off.ok() || !dir_vmm.ok()) return fail("temp dir", make_error("mkdtemp failed"));
  struct Cleanup {
    std::vector<std::string> dirs;
    ~Cleanup() {
      for (auto& d : dirs) fs::remove_all(d);
    }
  } cleanup{{*dir_on, *dir_off, *dir_vmm}};
  e2e::KilndProcess warm(*dir_on);
  e2e::KilndProcess cold(*dir_off);
  if (std::string why = e2e::kvm_unusable_reason(warm.paths(), *dir_vmm); !why.empty()) {
    std::fprintf(stderr, "bench_snapshot: needs a KVM that runs Linux: %s\n", why.c_str());
    return 1;
  }
  if (auto st = warm.start({"--snapshots", "on"}); !st.ok()) return fail("start kilnd (snapshots on)", st.error());
  if (auto st = cold.start({"--snapshots", "off"}); !st.ok()) return fail("start kilnd (snapshots off)", st.error());
  const json cfg = {{"image", "oci:" + warm.paths().hello_oci}, {"timeout_ms", 120000}, {"concurrency", 1},
                    {"min_instances", 0}, {"max_instances", 1}};

  // Priming: the first instance on each kilnd cold-boots (and, with snapshots on, is snapshotted).
  for (auto* k : {&warm, &cold}) {
    auto rec = k->deploy(kFunction, cfg);
    if (!rec.ok()) return fail("deploy", rec.error());
    auto r = k->call("POST", std::string("/v1/functions/") + kFunction + "/invoke", kEvent);
    if (!r.ok() || r->status != 200) return fail("priming invoke", r.ok() ? make_error(r->body) : r.error());
  }
  auto snap = the_snapshot(*dir_on);
  if (!snap.ok()) return fail("snapshot", snap.error());
  if (auto s = the_snapshot(*dir_off); s.ok()) return fail("snapshots off", make_error("a snapshot was taken"));

  std::printf("snapshot benchmark: examples/hello (1 vCPU, 128 MiB), %d rounds, interleaved\n", rounds);
  std::printf("snapshot: %s (state %ju bytes, mem %ju bytes)\n", snap->filename().c_str(),
              static_cast<std::uintmax_t>(fs::file_size(*snap / "state")),
              static_cast<std::uintmax_t>(fs::file_size(*snap / "mem")));
  std::vector<double> restored, booted, restore_log, load_api;
  for (int i = 0; i < rounds; ++i) {
    // Alternate which kilnd goes first so drift in the shared host hits both alike.
    for (int side = 0; side < 2; ++side) {
      const bool on = (side == 0) == (i % 2 == 0);
      auto s = run_round(on ? warm : cold, cfg, on);
      if (!s.ok()) return fail(std::string("round ") + std::to_string(i) + (on ? " (restore)" : " (cold boot)"), s.error());
      (on ? restored : booted).push_back(s->first_response_ms);
      if (on && s->restore_log_ms >= 0) restore_log.push_back(s->restore_log_ms);
      std::fprintf(stderr, "round %d %s: %.1f ms\n", i, on ? "restore" : "cold", s->first_response_ms);
    }
  }
  // Stop both kilnds' instances; then PUT /snapshot/load alone, each on a fresh kiln-vmm.
  for (auto* k : {&warm, &cold}) (void)k->call("DELETE", std::string("/v1/functions/") + kFunction);
  // Not fatal: kilnd's snapshots come from jailed VMMs and name jail paths (/rootfs.img), which
  // a plain kiln-vmm outside the jail cannot open; the table then says why the row is empty.
  std::string load_error;
  for (int i = 0; i < rounds && load_error.empty(); ++i) {
    auto ms = direct_load(warm.paths().vmm, *snap, *dir_vmm, i);
    if (ms.ok()) load_api.push_back(*ms);
    else load_error = ms.error().message;
  }

  std::printf("\n| %-44s | %3s | %9s | %9s | %9s | %9s |\n", "series (ms)", "n", "median", "p90", "min", "max");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(5, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str(),
              std::string(11, '-').c_str());
  row("cold boot -> first response (snapshots off)", booted);
  row("restore -> first response (snapshots on)", restored);
  row("kilnd restore step (log: restored in N ms)", restore_log);
  row("PUT /snapshot/load alone (direct kiln-vmm)", load_api);
  if (!load_error.empty()) std::printf("\nPUT /snapshot/load alone: not measured: %s\n", load_error.c_str());
  const double ratio = percentile(restored, 50) / std::max(percentile(booted, 50), 1e-9);
  std::printf("\nratio of medians, restore / cold boot: %.3fx (target <= 0.1x: %s)\n", ratio,
              ratio <= 0.1 ? "met" : "NOT met");
  warm.stop(SIGTERM);
  cold.stop(SIGTERM);
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) { return kiln::bench::run(argc, argv); }

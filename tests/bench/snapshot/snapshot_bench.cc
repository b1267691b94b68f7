// Benchmark (issue 7): examples/hello's first response from an instance restored from a snapshot
// (with kilnd's parked kiln-vmm, and with a freshly spawned one) against one that cold-boots
// (three kilnds with instance networks, rounds interleaved), kilnd's PUT /snapshot/load round
// trip and each instance's network setup time. Needs a KVM that runs Linux guests; README.md.
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/io.h"
#include "common/result.h"
#include "src/client/http_client.h"
#include "tests/bench/percentile.h"
#include "tests/e2e/lib/kilnd_harness.h"

namespace kiln::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kFunction = "hello";
constexpr const char* kEvent = R"({"name":"bench"})";

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

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

// KVM's own counters for one VM (debugfs /sys/kernel/debug/kvm/<tid>-<fd>/, named after the
// thread that created it; vCPU ones summed):
// the guest's costs that kiln-vmm never sees, such as nested page faults fixed in the kernel.
constexpr const char* kKvmCounters[] = {"exits", "pf_fixed", "pf_taken", "halt_exits", "io_exits", "mmio_exits", "pages_4k", "pages_2m"};
using Counters = std::map<std::string, double>;

Counters kvm_counters(pid_t pid) {
  std::error_code ec;
  if (!fs::exists("/sys/kernel/debug/kvm", ec)) ::mount("debugfs", "/sys/kernel/debug", "debugfs", 0, nullptr);
  std::vector<std::string> prefixes;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    prefixes.push_back(t.path().filename().string() + "-");
  }
  Counters c;
  for (const auto& e : fs::directory_iterator("/sys/kernel/debug/kvm", ec)) {
    const std::string dir = e.path().filename().string();
    if (std::none_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return dir.rfind(p, 0) == 0; })) continue;
    for (const char* name : kKvmCounters) {
      const std::string text = e2e::slurp((e.path() / name).string());
      if (!text.empty()) c[name] += std::atof(text.c_str());
    }
  }
  return c;
}

// The one kiln-vmm of `state_dir` (0 when there is not exactly one).
pid_t the_vmm(const std::string& state_dir) {
  const auto pids = e2e::vmm_pids(state_dir);
  return pids.size() == 1 ? pids[0] : 0;
}

enum class Mode { kParked, kRestore, kCold };

const char* mode_name(Mode m) { return m == Mode::kParked ? "parked" : m == Mode::kRestore ? "restore" : "cold"; }

struct Sample {
  double first_response_ms = 0;  // invoke -> first 200 answer
  double park_ms = -1;           // deploy answered -> parked kiln-vmm ready (parked mode)
  double restore_log_ms = -1;    // kilnd's own "restored ... in N ms" (restored instances only)
  double load_ms = -1;           // its "load N" phase: kilnd's PUT /snapshot/load round trip
                                 // (parked: "load paused ahead N", off the invocation's path)
  double resume_ms = -1;         // parked: its "resume N" phase, PATCH /vm Resumed round trip
  double warm_ms = -1;           // parked: its "warmed ahead N" phase (off the path)
  double identity_ms = -1;       // its "identity N" phase: the identity's round trip
  double guest_identity_ms = -1; // kiln-init's own part of it (its ack: "identity applied in N ms")
  double duration_ms = -1;       // the invocation's own "Duration: N ms" (its REPORT line)
  double network_ms = -1;        // kilnd's "network ready in N ms" for the instance (parked:
                                 // built when the kiln-vmm was parked, off the path)
  std::string restore_line;      // that log line, with its phases
  Counters kvm;                  // KVM counters up to the first response (parked: since the resume)
};

// `what N` in a restore notice's phase list ("(parked kiln-vmm, load paused ahead 70, resume 3,
// identity 60)", "(spawn 40, api up 20, load 68, identity 61)").
double phase_ms(const std::string& line, const std::string& what) {
  const auto at = line.find(", " + what + " ");
  const auto first = line.find("(" + what + " ");
  const auto p = at != std::string::npos ? at + 2 : first != std::string::npos ? first + 1 : std::string::npos;
  return p == std::string::npos ? -1 : std::atof(line.c_str() + p + what.size() + 1);
}

// One round on `kilnd`: DELETE the function, wait until its kiln-vmm is gone, PUT it again (same
// config, so the same VM shape and snapshot key), in parked mode wait until kilnd's parked
// kiln-vmm for the next instance is up (the function's steady state), then time its first
// invocation, which starts a new instance (parked-restored, restored or cold-booted).
Result<Sample> run_round(e2e::KilndProcess& kilnd, const json& cfg, Mode mode) {
  auto del = kilnd.call("DELETE", std::string("/v1/functions/") + kFunction);
  if (!del.ok()) return del.error();
  if (del->status / 100 != 2) return make_error("DELETE: " + std::to_string(del->status) + " " + del->body);
  KILN_TRY(wait_until([&] { return e2e::vmm_pids(kilnd.state_dir()).empty(); }, std::chrono::seconds(120),
                      "the instance to stop"));
  KILN_ASSIGN_OR_RETURN(json rec, kilnd.deploy(kFunction, cfg));
  if (rec["image"]["state"] != "ready") return make_error("image not ready: " + rec.dump());
  Sample s;
  if (mode == Mode::kParked) {
    const auto p0 = Clock::now();
    KILN_TRY(wait_until(
        [&] {
          auto m = kilnd.call("GET", "/metrics");
          return m.ok() && m->body.find("kiln_parked_vmms{state=\"ready\"} 1") != std::string::npos;
        },
        std::chrono::seconds(120), "the parked kiln-vmm"));
    s.park_ms = ms_since(p0);
  }
  // The parked kiln-vmm becomes the instance's; the others start with the invocation (after it
  // a new parked kiln-vmm may be starting too: the instance's is the one named in run/<id>).
  const pid_t parked_vmm = mode == Mode::kParked ? the_vmm(kilnd.state_dir()) : 0;
  const Counters before = parked_vmm ? kvm_counters(parked_vmm) : Counters{};
  const auto t0 = Clock::now();
  auto r = kilnd.call("POST", std::string("/v1/functions/") + kFunction + "/invoke", kEvent);
  s.first_response_ms = ms_since(t0);
  if (!r.ok()) return r.error();
  const pid_t vmm = parked_vmm ? parked_vmm : the_vmm(kilnd.state_dir());
  if (vmm) s.kvm = kvm_counters(vmm);
  for (auto& [name, v] : s.kvm) v -= before.count(name) ? before.at(name) : 0;
  if (r->status != 200 || r->body.find("hello, bench") == std::string::npos || r->headers["x-kiln-cold-start"] != "1") {
    return make_error("first invoke: " + std::to_string(r->status) + " cold=" + r->headers["x-kiln-cold-start"] + " " +
                      r->body);
  }
  const std::string id = r->headers["x-kiln-instance-id"];
  auto logs = kilnd.call("GET", std::string("/v1/functions/") + kFunction + "/logs");
  if (!logs.ok()) return logs.error();
  // Its REPORT line: the time from the instance's readiness to the answer, apart from the start.
  const std::string report = "REPORT RequestId: " + r->headers["x-kiln-request-id"] + "\tDuration: ";
  if (const auto rep = logs->body.find(report); rep != std::string::npos) {
    s.duration_ms = std::atof(logs->body.c_str() + rep + report.size());
  }
  const std::string net_needle = "instance " + id + " network ready in ";
  const auto net_at = logs->body.find(net_needle);
  if (net_at == std::string::npos) return make_error("instance " + id + " has no network; logs:\n" + logs->body);
  s.network_ms = std::atof(logs->body.c_str() + net_at + net_needle.size());
  const std::string needle = "instance " + id + " restored from snapshot ";
  const auto at = logs->body.find(needle);
  if ((mode != Mode::kCold) != (at != std::string::npos)) {
    return make_error(std::string("instance ") + id + (mode != Mode::kCold ? " was not restored" : " was restored") +
                      "; logs:\n" + logs->body);
  }
  if (at != std::string::npos) {
    s.restore_line = logs->body.substr(at, logs->body.find('\n', at) - at);
    const bool parked = s.restore_line.find("(parked kiln-vmm") != std::string::npos;
    if (parked != (mode == Mode::kParked)) {
      return make_error("instance " + id + (parked ? " used" : " did not use") + " a parked kiln-vmm: " + s.restore_line);
    }
    const auto in = s.restore_line.find(" in ", needle.size());
    if (in != std::string::npos) s.restore_log_ms = std::atof(s.restore_line.c_str() + in + 4);
    s.load_ms = phase_ms(s.restore_line, parked ? "load paused ahead" : "load");
    s.resume_ms = phase_ms(s.restore_line, "resume");
    s.warm_ms = phase_ms(s.restore_line, "warmed ahead");
    s.identity_ms = phase_ms(s.restore_line, "identity");
    const std::string ack = "instance " + id + " guest: identity applied in ";
    if (const auto a = logs->body.find(ack); a != std::string::npos) {
      s.guest_identity_ms = std::atof(logs->body.c_str() + a + ack.size());
    }
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

void row(const char* name, const std::vector<double>& v) {
  std::printf("| %-50s | %3zu | %9.1f | %9.1f | %9.1f | %9.1f |\n", name, v.size(), percentile(v, 50), percentile(v, 90),
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
  std::vector<std::string> dirs;
  struct Cleanup {
    std::vector<std::string>& dirs;
    ~Cleanup() {
      // After a failure the kilnds were SIGKILLed: an instance's network namespace may still be
      // mounted in its state dir (busy); what stays goes with the test host.
      std::error_code ec;
      for (auto& d : dirs) fs::remove_all(d, ec);
    }
  } cleanup{dirs};
  for (const char* name : {"snapbench-parked", "snapbench-restore", "snapbench-cold", "snapbench-probe"}) {
    auto d = e2e::make_temp_dir(name);
    if (!d.ok()) return fail("temp dir", d.error());
    dirs.push_back(*d);
  }
  // Three kilnds: snapshots with a parked kiln-vmm (the default), snapshots without one
  // (every restore spawns its kiln-vmm), no snapshots (every instance cold-boots). They run at
  // once, interleaved, each with instance networks under its own link prefix and range.
  e2e::KilndProcess parked(dirs[0]), restore(dirs[1]), cold(dirs[2]);
  const char* const net_configs[] = {R"({"link_prefix": "kbp", "instance_range": "10.210.0.0/24"})",
                                     R"({"link_prefix": "kbr", "instance_range": "10.211.0.0/24"})",
                                     R"({"link_prefix": "kbc", "instance_range": "10.212.0.0/24"})"};
  std::vector<std::string> net_args[3];
  for (int m = 0; m < 3; ++m) {
    const std::string path = dirs[3] + "/network-" + std::to_string(m) + ".json";
    if (auto st = io::write_file_atomic(path, net_configs[m]); !st.ok()) return fail("network config", st.error());
    net_args[m] = {"--network", "on", "--network-config", path};
  }
  auto with_net = [&](int m, std::vector<std::string> args) {
    args.insert(args.end(), net_args[m].begin(), net_args[m].end());
    return args;
  };
  const Mode modes[] = {Mode::kParked, Mode::kRestore, Mode::kCold};
  e2e::KilndProcess* kilnds[] = {&parked, &restore, &cold};
  if (std::string why = e2e::kvm_unusable_reason(parked.paths(), dirs[3]); !why.empty()) {
    std::fprintf(stderr, "bench_snapshot: needs a KVM that runs Linux: %s\n", why.c_str());
    return 1;
  }
  if (auto st = parked.start(with_net(0, {"--snapshots", "on", "--park-vmms", "on"})); !st.ok()) return fail("start kilnd (parked)", st.error());
  if (auto st = restore.start(with_net(1, {"--snapshots", "on", "--park-vmms", "off"})); !st.ok()) return fail("start kilnd (restore)", st.error());
  if (auto st = cold.start(with_net(2, {"--snapshots", "off"})); !st.ok()) return fail("start kilnd (cold)", st.error());
  const json cfg = {{"image", "oci:" + parked.paths().hello_oci}, {"timeout_ms", 120000}, {"concurrency", 1},
                    {"min_instances", 0}, {"max_instances", 1}};

  // Priming: the first instance on each kilnd cold-boots (and, with snapshots on, is snapshotted).
  for (auto* k : kilnds) {
    auto rec = k->deploy(kFunction, cfg);
    if (!rec.ok()) return fail("deploy", rec.error());
    auto r = k->call("POST", std::string("/v1/functions/") + kFunction + "/invoke", kEvent);
    if (!r.ok() || r->status != 200) return fail("priming invoke", r.ok() ? make_error(r->body) : r.error());
  }
  auto snap = the_snapshot(dirs[0]);
  if (!snap.ok()) return fail("snapshot", snap.error());
  if (auto s = the_snapshot(dirs[2]); s.ok()) return fail("snapshots off", make_error("a snapshot was taken"));

  std::printf("snapshot benchmark: examples/hello (1 vCPU, 128 MiB), %d rounds, interleaved, instance networks on\n",
              rounds);
  std::printf("snapshot: %s (state %ju bytes, mem %ju bytes)\n", snap->filename().c_str(),
              static_cast<std::uintmax_t>(fs::file_size(*snap / "state")),
              static_cast<std::uintmax_t>(fs::file_size(*snap / "mem")));
  std::vector<double> first[3], duration[3], park, restore_log[2], load_api[2], resume_api, network[3], warm,
      identity[2], guest_identity[2];
  std::map<std::string, std::vector<double>> kvm[3];
  for (int i = 0; i < rounds; ++i) {
    // Rotate which kilnd goes first so drift in the shared host hits all alike.
    for (int k = 0; k < 3; ++k) {
      const int m = (i + k) % 3;
      auto s = run_round(*kilnds[m], cfg, modes[m]);
      if (!s.ok()) return fail(std::string("round ") + std::to_string(i) + " (" + mode_name(modes[m]) + ")", s.error());
      first[m].push_back(s->first_response_ms);
      if (s->duration_ms >= 0) duration[m].push_back(s->duration_ms);
      if (s->network_ms >= 0) network[m].push_back(s->network_ms);
      if (s->park_ms >= 0) park.push_back(s->park_ms);
      if (m < 2 && s->restore_log_ms >= 0) restore_log[m].push_back(s->restore_log_ms);
      if (m < 2 && s->load_ms >= 0) load_api[m].push_back(s->load_ms);
      if (s->resume_ms >= 0) resume_api.push_back(s->resume_ms);
      if (s->warm_ms >= 0) warm.push_back(s->warm_ms);
      if (m < 2 && s->identity_ms >= 0) identity[m].push_back(s->identity_ms);
      if (m < 2 && s->guest_identity_ms >= 0) guest_identity[m].push_back(s->guest_identity_ms);
      for (const auto& [name, v] : s->kvm) kvm[m][name].push_back(v);
      std::fprintf(stderr, "round %d %s: %.1f ms %s\n", i, mode_name(modes[m]), s->first_response_ms,
                   s->restore_line.c_str());
    }
  }

  std::printf("\n| %-50s | %3s | %9s | %9s | %9s | %9s |\n", "series (ms)", "n", "median", "p90", "min", "max");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(52, '-').c_str(), std::string(5, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str(),
              std::string(11, '-').c_str());
  row("cold boot -> first response (snapshots off)", first[2]);
  row("restore -> first response (parked kiln-vmm)", first[0]);
  row("restore -> first response (kiln-vmm spawned)", first[1]);
  row("its Duration (REPORT: ready -> answer), parked", duration[0]);
  row("its Duration (REPORT: ready -> answer), spawned", duration[1]);
  row("its Duration (REPORT: ready -> answer), cold boot", duration[2]);
  row("kilnd restore step, parked (log: restored in N)", restore_log[0]);
  row("kilnd restore step, spawned (log: restored in N)", restore_log[1]);
  row("PUT /snapshot/load round trip (spawned kiln-vmm)", load_api[1]);
  row("PUT /snapshot/load, paused, parked (off the path)", load_api[0]);
  row("PATCH /vm Resumed round trip (parked kiln-vmm)", resume_api);
  row("identity round trip, parked (phase identity N)", identity[0]);
  row("identity round trip, spawned", identity[1]);
  row("kiln-init's part, parked (ack: applied in N)", guest_identity[0]);
  row("kiln-init's part, spawned", guest_identity[1]);
  row("parked guest warmed ahead (off the path)", warm);
  row("deploy -> parked kiln-vmm ready (off the path)", park);
  row("network setup, cold boot (log: network ready in N)", network[2]);
  row("network setup, restore, kiln-vmm spawned", network[1]);
  row("network setup, restore, parked (off the path)", network[0]);
  if (!kvm[2].empty()) {
    // Medians; parked counts from the resume, spawned from the snapshot load, cold from boot.
    std::printf("\n| %-22s | %12s | %12s | %12s |\n", "KVM counter (median)", "parked", "spawned", "cold boot");
    std::printf("|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), std::string(14, '-').c_str(),
                std::string(14, '-').c_str(), std::string(14, '-').c_str());
    for (const char* name : kKvmCounters) {
      std::printf("| %-22s | %12.0f | %12.0f | %12.0f |\n", name, percentile(kvm[0][name], 50), percentile(kvm[1][name], 50),
                  percentile(kvm[2][name], 50));
    }
  }
  const double cold_median = std::max(percentile(first[2], 50), 1e-9);
  const double ratio = percentile(first[0], 50) / cold_median;
  std::printf("\nratio of medians, restore (parked kiln-vmm) / cold boot: %.3fx (target <= 0.1x: %s)\n", ratio,
              ratio <= 0.1 ? "met" : "NOT met");
  std::printf("ratio of medians, restore (kiln-vmm spawned) / cold boot: %.3fx\n", percentile(first[1], 50) / cold_median);
  for (auto* k : kilnds) k->stop(SIGTERM);
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) { return kiln::bench::run(argc, argv); }

// Benchmark (issue 19): lazy root disks against today's full pull + build, on one shaped link.
// A registry in a namespace behind tc netem (tests/e2e/lib/shaped_registry.h) holds a large image
// (examples/hello plus a layer of MIB MiB of random data the function never reads) and its
// chunked-rootfs artifact. Two kilnds (snapshots off, so every first response is a cold boot):
//  - deploy-to-first-response on empty caches: `--lazy-images off` (pull, unpack, mkfs) against
//    `--lazy-images on` (no pull; chunks on demand); target <= 0.2x;
//  - first response of a new function on the same image with warm caches (the built ext4; the
//    chunk cache), ROUNDS rounds interleaved, medians; target <= 1.1x.
// Reports bytes fetched, chunk fetches and time spent waiting for chunks. README.md.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/result.h"
#include "tests/bench/percentile.h"
#include "tests/e2e/lib/kilnd_harness.h"
#include "tests/e2e/lib/shaped_registry.h"
#include "tests/support/process.h"

namespace kiln::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using e2e::metric_sum;

constexpr const char* kRef = "192.0.2.2:5000/bench/big:latest";

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// MIB MiB of xorshift64 bytes (incompressible, as model weights or media would be).
Status write_random_file(const std::string& path, uint64_t mib) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  std::vector<uint64_t> buf(1 << 17);  // 1 MiB
  for (uint64_t m = 0; m < mib; ++m) {
    for (auto& w : buf) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = x;
    }
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 8));
  }
  out.close();
  if (!out) return make_error("writing " + path);
  return ok_status();
}

int run(const std::vector<std::string>& argv) { return kiln::testing::run(argv, "", 3'600'000); }

// hello's OCI layout plus a layer holding /data/unused.bin (umoci insert).
Result<std::string> make_big_layout(const e2e::KilndPaths& paths, const std::string& dir, uint64_t mib) {
  const std::string layout = dir + "/big-oci";
  fs::copy(paths.hello_oci, layout, fs::copy_options::recursive);
  const std::string blob = dir + "/unused.bin";
  KILN_TRY(write_random_file(blob, mib));
  if (run({"umoci", "insert", "--rootless", "--image", layout + ":latest", blob, "/data/unused.bin"}) != 0) {
    return make_error("umoci insert failed");
  }
  fs::remove(blob);
  return layout;
}

json config(const std::string& image) {
  return {{"image", image}, {"tls_verify", false}, {"timeout_ms", 300000}, {"max_instances", 1}};
}

// PUT the function, wait for its image, POST one invocation: seconds from the PUT to the answer.
Result<double> deploy_to_first_response(e2e::KilndProcess& kilnd, const std::string& name) {
  const auto t0 = Clock::now();
  KILN_ASSIGN_OR_RETURN(json rec, kilnd.deploy(name, config(kRef), std::chrono::seconds(3600)));
  if (rec["image"]["state"] != "ready") return make_error("image not ready: " + rec.dump());
  auto r = kilnd.call("POST", "/v1/functions/" + name + "/invoke", R"({"name":"bench"})");
  if (!r.ok()) return r.error();
  if (r->status != 200 || r->body.find("hello, bench") == std::string::npos) {
    return make_error("invoke: " + std::to_string(r->status) + " " + r->body);
  }
  return seconds_since(t0);
}

struct Kilnd {
  std::unique_ptr<e2e::KilndProcess> process;
  std::string state;
};

Result<Kilnd> start_kilnd(const std::string& dir, bool lazy) {
  Kilnd k;
  k.state = dir + (lazy ? "/state-lazy" : "/state-full");
  fs::create_directories(k.state);
  k.process = std::make_unique<e2e::KilndProcess>(k.state);
  KILN_TRY(k.process->start({"--lazy-images", lazy ? "on" : "off", "--snapshots", "off", "--network", "off"}));
  return k;
}

int bench_main(int argc, char** argv) {
  const uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const char* delay = std::getenv("KILN_LAZY_BENCH_DELAY");
  const char* rate = std::getenv("KILN_LAZY_BENCH_RATE");
  e2e::ShapedLink link{delay ? delay : "10ms", rate ? rate : "200mbit"};
  const e2e::KilndPaths paths = e2e::KilndPaths::defaults();
  auto dir = e2e::make_temp_dir("lazy-bench");
  if (!dir.ok()) return std::fprintf(stderr, "%s\n", dir.error().message.c_str()), 1;
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "lazy-bench: %s\n", what.c_str());
    return 1;
  };

  auto registry = e2e::ShapedRegistry::start("kebench", *dir + "/registry", link);
  if (!registry.ok()) return fail(registry.error().message);
  auto t0 = Clock::now();
  auto layout = make_big_layout(paths, *dir, mib);
  if (!layout.ok()) return fail(layout.error().message);
  std::printf("lazy-bench: image with a %llu MiB layer made in %.1f s\n", static_cast<unsigned long long>(mib),
              seconds_since(t0));
  t0 = Clock::now();
  if (Status st = (*registry)->push(*layout, "latest", "bench/big"); !st.ok()) return fail(st.error().message);
  std::printf("lazy-bench: pushed over the shaped link (%s, %s) in %.1f s\n", link.delay.c_str(), link.rate.c_str(),
              seconds_since(t0));
  fs::remove_all(*layout);  // the test host's /tmp is memory
  auto converted = (*registry)->convert(kRef);
  if (!converted.ok()) return fail(converted.error().message);
  std::printf(
      "lazy-bench: converted and pushed the artifact in %.1f s: %llu-byte ext4, %llu stored chunks, "
      "%llu bytes of chunk data\n",
      converted->seconds, static_cast<unsigned long long>(converted->image_size),
      static_cast<unsigned long long>(converted->stored_chunks), static_cast<unsigned long long>(converted->data_size));

  // Empty caches: the full pull + build against the lazy start.
  auto full = start_kilnd(*dir, false);
  if (!full.ok()) return fail(full.error().message);
  auto full_s = deploy_to_first_response(*full->process, "big");
  if (!full_s.ok()) return fail("full: " + full_s.error().message);
  auto lazy = start_kilnd(*dir, true);
  if (!lazy.ok()) return fail(lazy.error().message);
  auto lazy_s = deploy_to_first_response(*lazy->process, "big");
  if (!lazy_s.ok()) return fail("lazy: " + lazy_s.error().message);
  auto metrics = lazy->process->call("GET", "/metrics");
  if (!metrics.ok()) return fail(metrics.error().message);
  const double fetched = metric_sum(metrics->body, "kiln_lazy_fetched_bytes_total");
  const double fetches = metric_sum(metrics->body, "kiln_lazy_chunk_fetches_total");
  const double wait = metric_sum(metrics->body, "kiln_lazy_wait_seconds_total");

  // Warm caches: a new function on the same image, cold-booted from the built ext4 / the chunks.
  std::vector<double> warm_full, warm_lazy;
  for (int i = 0; i < rounds; ++i) {
    const std::string name = "warm" + std::to_string(i);
    auto f = deploy_to_first_response(*full->process, name);
    if (!f.ok()) return fail("warm full: " + f.error().message);
    auto l = deploy_to_first_response(*lazy->process, name);
    if (!l.ok()) return fail("warm lazy: " + l.error().message);
    warm_full.push_back(*f);
    warm_lazy.push_back(*l);
    (void)full->process->call("DELETE", "/v1/functions/" + name);
    (void)lazy->process->call("DELETE", "/v1/functions/" + name);
  }
  const double wf = percentile(warm_full, 50), wl = percentile(warm_lazy, 50);
  const double cold_ratio = *lazy_s / *full_s, warm_ratio = wl / wf;
  std::printf("\n| %-62s | %12s | %12s | %8s | %s |\n", "measure (s)", "full pull", "lazy", "ratio", "target");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(64, '-').c_str(), std::string(14, '-').c_str(),
              std::string(14, '-').c_str(), std::string(10, '-').c_str(), std::string(8, '-').c_str());
  std::printf("| %-62s | %12.2f | %12.2f | %7.3fx | <= 0.2 |\n", "deploy to first response, empty caches", *full_s,
              *lazy_s, cold_ratio);
  std::printf("| %-62s | %12.2f | %12.2f | %7.3fx | <= 1.1 |\n",
              ("first response of a new function, warm caches, median of " + std::to_string(rounds)).c_str(), wf, wl,
              warm_ratio);
  std::printf(
      "\nlazy start: fetched %.0f bytes in %.0f chunk fetches of a %llu-byte image (%.2f%%; %llu bytes of chunk "
      "data in the registry); reads waited %.2f s for chunks\n",
      fetched, fetches, static_cast<unsigned long long>(converted->image_size),
      100.0 * fetched / static_cast<double>(converted->image_size),
      static_cast<unsigned long long>(converted->data_size), wait);
  std::printf("targets: empty caches %s, warm caches %s\n", cold_ratio <= 0.2 ? "met" : "NOT met",
              warm_ratio <= 1.1 ? "met" : "NOT met");
  full->process.reset();
  lazy->process.reset();
  registry->reset();
  std::error_code ec;
  fs::remove_all(*dir, ec);
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) { return kiln::bench::bench_main(argc, argv); }

// Benchmark (issue 18): a warm invocation's latency in `lambda` mode (a runtime client polling
// the Runtime API kiln-init serves) against `http9000` mode (examples/hello serving HTTP on port
// 9000), same kilnd, same shape (1 vCPU, 128 MiB, concurrency 1), equivalent handlers (each
// answers a small JSON built from the event). Needs a KVM that runs Linux guests; README.md.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "tests/bench/percentile.h"
#include "tests/e2e/lambda/lambda_image.h"
#include "tests/e2e/lib/kilnd_harness.h"

namespace kiln::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Series {
  const char* label;
  std::string function;
  std::string expect;  // a part of every answer
  std::vector<double> ms;
};

// One event invocation; its latency, or an error when the answer is not the handler's.
Result<double> invoke(e2e::KilndProcess& kilnd, const Series& s, int i) {
  const std::string event = R"({"name":"bench","i":)" + std::to_string(i) + "}";
  const auto t0 = Clock::now();
  auto r = kilnd.call("POST", "/v1/functions/" + s.function + "/invoke", event);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!r.ok()) return r.error();
  if (r->status != 200 || r->body.find(s.expect) == std::string::npos) {
    return make_error(s.function + ": " + std::to_string(r->status) + " " + r->body);
  }
  return ms;
}

int run(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 400;
  if (requests <= 0) {
    std::fprintf(stderr, "usage: bench_lambda [REQUESTS=400]\n");
    return 2;
  }
  auto fail = [](const std::string& what, const Error& e) {
    std::fprintf(stderr, "bench_lambda: %s: %s\n", what.c_str(), e.message.c_str());
    return 1;
  };
  auto dir = e2e::make_temp_dir("lambdabench");
  if (!dir.ok()) return fail("temp dir", dir.error());
  e2e::KilndProcess kilnd(*dir + "/state");
  if (std::string why = e2e::kvm_unusable_reason(kilnd.paths(), *dir); !why.empty()) {
    std::fprintf(stderr, "bench_lambda: needs a KVM that runs Linux: %s\n", why.c_str());
    return 1;
  }
  const std::string layout = *dir + "/lambda-oci";
  e2e::write_lambda_image(layout, "1000");
  if (auto st = kilnd.start(); !st.ok()) return fail("start kilnd", st.error());
  const json shape = {{"timeout_ms", 60000}, {"concurrency", 1}, {"min_instances", 0}, {"max_instances", 1},
                      {"memory_mib", 128}, {"vcpus", 1}};
  json http = shape, lambda = shape;
  http["image"] = "oci:" + kilnd.paths().hello_oci;
  http["runtime_api"] = "http9000";
  lambda["image"] = "oci:" + layout;
  lambda["runtime_api"] = "lambda";  // as detected from its Env (LAMBDA_TASK_ROOT), said outright
  std::vector<Series> series = {{"http9000 (examples/hello)", "http", "hello, bench", {}},
                                {"lambda (runtime client, echo)", "lam", "\"name\":\"bench\"", {}}};
  for (auto [name, cfg] : {std::pair{"http", http}, std::pair{"lam", lambda}}) {
    auto rec = kilnd.deploy(name, cfg);
    if (!rec.ok()) return fail(std::string("deploy ") + name, rec.error());
    if ((*rec)["image"]["state"] != "ready") return fail(std::string("deploy ") + name, make_error(rec->dump()));
  }
  std::printf("lambda benchmark: %d warm event invocations per mode, interleaved in blocks of 20\n", requests);
  // Warm-up: each function's instance starts (cold), answers, and is snapshotted; then 20 more.
  for (auto& s : series) {
    for (int i = 0; i < 21; ++i) {
      if (auto r = invoke(kilnd, s, i); !r.ok()) return fail("warm-up", r.error());
    }
  }
  for (int done = 0; done < requests; done += 20) {
    for (auto& s : series) {
      for (int i = done; i < std::min(done + 20, requests); ++i) {
        auto r = invoke(kilnd, s, i);
        if (!r.ok()) return fail("invoke", r.error());
        s.ms.push_back(*r);
      }
    }
  }
  std::printf("\n| %-32s | %5s | %8s | %8s | %8s |\n", "warm event invocation (ms)", "n", "p50", "p90", "p99");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(34, '-').c_str(), std::string(7, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str());
  for (const auto& s : series) {
    std::printf("| %-32s | %5zu | %8.2f | %8.2f | %8.2f |\n", s.label, s.ms.size(), percentile(s.ms, 50),
                percentile(s.ms, 90), percentile(s.ms, 99));
  }
  const double ratio = percentile(series[1].ms, 50) / std::max(percentile(series[0].ms, 50), 1e-9);
  std::printf("\nratio of p50s, lambda / http9000: %.2fx (target <= 1.2x: %s)\n", ratio, ratio <= 1.2 ? "met" : "NOT met");
  std::printf("ratio of p99s, lambda / http9000: %.2fx\n",
              percentile(series[1].ms, 99) / std::max(percentile(series[0].ms, 99), 1e-9));
  kilnd.stop(SIGTERM);
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) { return kiln::bench::run(argc, argv); }

// kilnd end to end without VMs: the real HTTP server on 127.0.0.1 port 0 and a Unix socket,
// the daemon with the fake backend (guest = an in-process HTTP server on a socketpair):
// routing, validation 400s, deploy/list/get/delete, event/web/Lambda invocations, 413, 429,
// 504 + recycle, 502 on crash, logs with START/END/REPORT, follow, metrics, restart recovery.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <future>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using Kilnd = test::DaemonHarness;

using DaemonTest = test::StateDirTest;

TEST_F(DaemonTest, HealthRoutingAndValidation) {
  Kilnd k(dir_);
  auto h = k.call("GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  EXPECT_EQ(k.call("GET", "/nope").status, 404);
  auto m = k.call("POST", "/healthz");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.headers["allow"], "GET");
  EXPECT_EQ(k.call("GET", "/v1/functions/missing").status, 404);
  auto bad = k.call("PUT", "/v1/functions/f1", R"({"image":"oci:/x","memory_mib":1})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["field"], "memory_mib");
  auto bad_name = k.call("PUT", "/v1/functions/bad%2Fname", R"({"image":"oci:/x"})");
  EXPECT_EQ(bad_name.status, 400);
  EXPECT_EQ(json::parse(bad_name.body)["field"], "name");
  auto bad_json = k.call("PUT", "/v1/functions/f1", "{");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(json::parse(bad_json.body)["field"], "body");
  // The Unix socket serves the same API.
  auto u = client::request(k.unix_ep_, "GET", "/healthz");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->status, 200);
}

TEST_F(DaemonTest, DeployInvokeLogsDelete) {
  Kilnd k(dir_);
  k.deploy("echo", R"({"image":"oci:/img:1","memory_mib":256,"timeout_ms":2000,"env":{"GREETING":"hi"}})");
  auto list = json::parse(k.call("GET", "/v1/functions").body);
  ASSERT_EQ(list["functions"].size(), 1u);
  EXPECT_EQ(list["functions"][0]["name"], "echo");

  // Event invocation: body in, metadata headers, answer out.
  auto r = k.call("POST", "/v1/functions/echo/invoke", R"({"name":"kiln"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["target"], "/event-invoke");
  EXPECT_EQ(j["body"], R"({"name":"kiln"})");
  EXPECT_EQ(j["memory"], "256");
  EXPECT_EQ(j["timeout"], "2000");
  std::string rid = r.headers["x-kiln-request-id"];
  EXPECT_EQ(j["request_id"], rid);
  EXPECT_EQ(r.headers["x-kiln-cold-start"], "1");
  // The instance got the launch spec built from the image config and the overrides.
  auto specs = k.on_loop([&k] { return k.backend_.specs; });
  ASSERT_EQ(specs.size(), 1u);
  const auto& spec = specs.begin()->second;
  EXPECT_EQ(spec.launch.argv, std::vector<std::string>{"/hello"});
  EXPECT_EQ(spec.launch.env, (std::vector<std::string>{"PATH=/bin", "GREETING=hi"}));
  EXPECT_EQ(spec.launch.working_dir, "/srv");
  EXPECT_EQ(spec.memory_mib, 256u);

  auto warm = k.call("POST", "/v1/functions/echo/invoke", "{}");
  EXPECT_EQ(warm.headers["x-kiln-cold-start"], "0");

  // Web invocation: method, path, query and headers forwarded; metadata cannot be forged.
  auto w = k.call("PATCH", "/v1/functions/echo/http/a/b%20c?x=1&y=2", "payload",
                  {{"X-Custom", "v"}, {"X-Scf-Request-Id", "forged"}});
  ASSERT_EQ(w.status, 200) << w.body;
  auto wj = json::parse(w.body);
  EXPECT_EQ(wj["method"], "PATCH");
  EXPECT_EQ(wj["target"], "/a/b%20c?x=1&y=2");
  EXPECT_EQ(wj["custom"], "v");
  EXPECT_EQ(wj["request_id"], w.headers["x-kiln-request-id"]);
  auto root = json::parse(k.call("GET", "/v1/functions/echo/http").body);
  EXPECT_EQ(root["target"], "/");

  // Logs: START/END/REPORT for the request, filtered by request id.
  auto logs = k.call("GET", "/v1/functions/echo/logs?request_id=" + rid);
  ASSERT_EQ(logs.status, 200);
  EXPECT_NE(logs.body.find("START RequestId: " + rid + " Version: $LATEST"), std::string::npos) << logs.body;
  EXPECT_NE(logs.body.find("END RequestId: " + rid), std::string::npos);
  EXPECT_NE(logs.body.find("REPORT RequestId: " + rid + "\tDuration: "), std::string::npos);
  EXPECT_NE(logs.body.find("Memory Size: 256 MB\tMax Memory Used: 42 MB\tInit Duration: "), std::string::npos);
  auto jl = k.call("GET", "/v1/functions/echo/logs?format=json&limit=2");
  std::size_t lines = 0;
  for (char c : jl.body) lines += c == '\n';
  EXPECT_EQ(lines, 2u);
  EXPECT_EQ(k.call("GET", "/v1/functions/echo/logs?since=garbage").status, 400);

  // Metrics.
  auto metrics = k.call("GET", "/metrics");
  EXPECT_NE(metrics.body.find("kiln_invocations_total{function=\"echo\",kind=\"event\"} 2"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("kiln_cold_starts_total{function=\"echo\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("kiln_instances{function=\"echo\",state=\"idle\"} 1"), std::string::npos);
  // The log rings' memory is reported (START/END/REPORT lines are held: more than nothing).
  auto log_memory = metrics.body.find("\nkiln_log_memory_bytes ");
  ASSERT_NE(log_memory, std::string::npos) << metrics.body;
  EXPECT_GT(std::stod(metrics.body.substr(log_memory + 23)), 300.0);

  EXPECT_EQ(k.call("DELETE", "/v1/functions/echo").status, 204);
  EXPECT_EQ(k.call("GET", "/v1/functions/echo").status, 404);
  EXPECT_EQ(k.call("POST", "/v1/functions/echo/invoke", "{}").status, 404);
  EXPECT_TRUE(k.on_loop([&k] { return k.backend_.live(); }).empty());  // its VM was stopped
}

TEST_F(DaemonTest, ErrorsTimeoutCrashTooLargeThrottle) {
  Kilnd k(dir_);
  k.deploy("f", R"({"image":"oci:/img:1","timeout_ms":300,"max_instances":1,"max_queue":0})");
  auto ok = k.call("POST", "/v1/functions/f/invoke", "{}");
  ASSERT_EQ(ok.status, 200);
  std::string first_instance = ok.headers["x-kiln-instance-id"];

  auto big = k.call("POST", "/v1/functions/f/invoke", std::string(6 * 1024 * 1024 + 1, 'x'));
  EXPECT_EQ(big.status, 413);

  auto slow = k.call("POST", "/v1/functions/f/invoke", "hang");
  EXPECT_EQ(slow.status, 504);
  EXPECT_NE(json::parse(slow.body)["message"].get<std::string>().find("timed out after 0.30 seconds"), std::string::npos);
  // The timed-out instance was recycled: the next call runs on a fresh one.
  auto after = k.call("POST", "/v1/functions/f/invoke", "{}");
  ASSERT_EQ(after.status, 200);
  EXPECT_NE(after.headers["x-kiln-instance-id"], first_instance);
  EXPECT_EQ(after.headers["x-kiln-cold-start"], "1");

  auto crash = k.call("POST", "/v1/functions/f/invoke", "crash");
  EXPECT_EQ(crash.status, 502);
  EXPECT_NE(json::parse(crash.body)["message"].get<std::string>().find("crashed or exited"), std::string::npos);

  // One instance, no queue: a second concurrent call is throttled while the first hangs.
  ASSERT_EQ(k.call("POST", "/v1/functions/f/invoke", "{}").status, 200);  // warm, idle
  auto hanging = std::async(std::launch::async, [&k] { return k.call("POST", "/v1/functions/f/invoke", "hang"); });
  bool busy = false;
  for (int i = 0; i < 100000 && !busy; ++i) {
    busy = json::parse(k.call("GET", "/v1/functions/f").body)["pool"]["busy"] == 1;
    if (!busy) std::this_thread::yield();
  }
  ASSERT_TRUE(busy);
  auto throttled = k.call("POST", "/v1/functions/f/invoke", "{}");
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(throttled.headers["retry-after"], "1");
  EXPECT_EQ(hanging.get().status, 504);

  auto metrics = k.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("kiln_invocation_errors_total{function=\"f\",kind=\"timeout\"}"), std::string::npos);
  EXPECT_NE(metrics.find("kiln_invocation_errors_total{function=\"f\",kind=\"crash\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("kiln_invocation_errors_total{function=\"f\",kind=\"throttled\"}"), std::string::npos);
}

// 20 concurrent invocations, each echoing its own nonce, over 5 instances of concurrency 4.
TEST_F(DaemonTest, TwentyConcurrentInvocationsGetTheirOwnAnswers) {
  Kilnd k(dir_);
  k.deploy("par", R"({"image":"oci:/img:1","concurrency":4,"max_instances":5,"timeout_ms":20000})");
  std::vector<std::future<client::HttpResult>> calls;
  for (int i = 0; i < 20; ++i) {
    calls.push_back(std::async(std::launch::async, [&k, i] {
      return k.call("POST", "/v1/functions/par/invoke", "nonce-" + std::to_string(i) + "-" + std::to_string(i * 7919));
    }));
  }
  std::set<std::string> instances;
  for (int i = 0; i < 20; ++i) {
    auto r = calls[static_cast<std::size_t>(i)].get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["body"], "nonce-" + std::to_string(i) + "-" + std::to_string(i * 7919));
    EXPECT_EQ(json::parse(r.body)["request_id"], r.headers["x-kiln-request-id"]);
    instances.insert(r.headers["x-kiln-instance-id"]);
  }
  EXPECT_LE(instances.size(), 5u);
}

TEST_F(DaemonTest, LambdaCompatiblePath) {
  Kilnd k(dir_);
  auto missing = k.call("POST", "/2015-03-31/functions/nope/invocations", "{}");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers["x-amzn-errortype"], "ResourceNotFoundException");
  k.deploy("lf", R"({"image":"oci:/img:1","timeout_ms":300})");
  auto ok = k.call("POST", "/2015-03-31/functions/lf/invocations", R"({"k":1})", {{"X-Amz-Log-Type", "Tail"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["body"], R"({"k":1})");
  EXPECT_EQ(ok.headers.count("x-amz-function-error"), 0u);
  EXPECT_FALSE(ok.headers["x-amzn-requestid"].empty());
  EXPECT_FALSE(ok.headers["x-amz-log-result"].empty());
  auto bad = k.call("POST", "/2015-03-31/functions/lf/invocations", "not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.headers["x-amzn-errortype"], "InvalidRequestContentException");
  auto timeout = k.call("POST", "/2015-03-31/functions/lf/invocations", R"("hang")");
  EXPECT_EQ(timeout.status, 200);
  EXPECT_EQ(timeout.headers["x-amz-function-error"], "Unhandled");
  auto tj = json::parse(timeout.body);
  EXPECT_EQ(tj["errorType"], "Sandbox.Timedout");
  EXPECT_NE(tj["errorMessage"].get<std::string>().find("Task timed out after 0.30 seconds"), std::string::npos);
  auto crash = k.call("POST", "/2015-03-31/functions/lf/invocations", R"("crash")");
  EXPECT_EQ(crash.status, 200);
  EXPECT_EQ(crash.headers["x-amz-function-error"], "Unhandled");
  EXPECT_EQ(json::parse(crash.body)["errorType"], "Runtime.ExitError");
  auto f500 = k.call("POST", "/2015-03-31/functions/lf/invocations", R"("fail500")");
  EXPECT_EQ(f500.status, 200);
  EXPECT_EQ(f500.headers["x-amz-function-error"], "Unhandled");
  auto dry = k.call("POST", "/2015-03-31/functions/lf/invocations", "{}", {{"X-Amz-Invocation-Type", "DryRun"}});
  EXPECT_EQ(dry.status, 204);
  auto ev = k.call("POST", "/2015-03-31/functions/lf/invocations", "{}", {{"X-Amz-Invocation-Type", "Event"}});
  EXPECT_EQ(ev.status, 202);
  auto weird = k.call("POST", "/2015-03-31/functions/lf/invocations", "{}", {{"X-Amz-Invocation-Type", "Sometimes"}});
  EXPECT_EQ(weird.status, 400);
  auto big = k.call("POST", "/2015-03-31/functions/lf/invocations", std::string(6 * 1024 * 1024 + 10, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.headers["x-amzn-errortype"], "RequestTooLargeException");
}

TEST_F(DaemonTest, FailedImageIsVisibleAndInvocationsSay503) {
  Kilnd k(dir_);
  ASSERT_EQ(k.call("PUT", "/v1/functions/broken", R"({"image":"oci:/missing:1"})").status, 201);
  json j;
  for (int i = 0; i < 2000; ++i) {
    j = json::parse(k.call("GET", "/v1/functions/broken").body);
    if (j["image"]["state"] == "failed") break;
    std::this_thread::yield();
  }
  EXPECT_EQ(j["image"]["state"], "failed");
  EXPECT_NE(j["image"]["reason"].get<std::string>().find("manifest unknown"), std::string::npos);
  auto r = k.call("POST", "/v1/functions/broken/invoke", "{}");
  EXPECT_EQ(r.status, 503);
  auto l = k.call("POST", "/2015-03-31/functions/broken/invocations", "{}");
  EXPECT_EQ(l.status, 409);
  EXPECT_EQ(l.headers["x-amzn-errortype"], "ResourceConflictException");
}

TEST_F(DaemonTest, FollowStreamsNewLines) {
  Kilnd k(dir_);
  k.deploy("fl", R"({"image":"oci:/img:1"})");
  std::promise<std::string> got;
  bool set = false;
  std::string seen;
  auto follower = std::async(std::launch::async, [&] {
    client::RequestOptions o;
    o.timeout = std::chrono::seconds(30);
    o.on_body = [&](std::string_view chunk) {
      seen += chunk;
      auto start = seen.find("START RequestId:");
      if (!set && start != std::string::npos && seen.find("END RequestId:", start) != std::string::npos) {
        set = true;
        got.set_value(seen);
      }
      return true;
    };
    return client::request(k.ep_, "GET", "/v1/functions/fl/logs?follow=1&since=" + std::to_string(time(nullptr) * 1000 + 3600000), "", o);
  });
  // Keep invoking until the follower has seen a full request (it may subscribe late).
  auto fut = got.get_future();
  while (fut.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    ASSERT_EQ(k.call("POST", "/v1/functions/fl/invoke", "{}").status, 200);
    fut.wait_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(fut.get().find("START RequestId:"), std::string::npos);
  k.stop();  // kilnd stopping ends the stream
  auto res = follower.get();
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 200);
}

// kiln-init's tag on a guest line decides its request when it names one sent to that instance,
// even against the stamp (a line that reaches kilnd after the next request began, as back to
// back calls make); a tag naming anything else is ignored and the stamp decides.
TEST_F(DaemonTest, GuestTaggedLinesGoToTheRequestTheyName) {
  Kilnd k(dir_);
  k.deploy("tag", R"({"image":"oci:/img:1"})");
  auto first = k.call("POST", "/v1/functions/tag/invoke", "{}");
  ASSERT_EQ(first.status, 200) << first.body;
  auto second = k.call("POST", "/v1/functions/tag/invoke", "{}");
  ASSERT_EQ(second.status, 200) << second.body;
  const std::string r1 = first.headers["x-kiln-request-id"], r2 = second.headers["x-kiln-request-id"];
  ASSERT_NE(r1, r2);
  auto live = k.on_loop([&k] { return k.backend_.live(); });
  ASSERT_EQ(live.size(), 1u);
  const std::string inst = live[0];
  k.on_loop([&] {
    const std::uint64_t now = kiln::realtime_ns();  // after both windows: the stamp says r2
    k.backend_.log(inst, "late line of the first call", r1, now);
    k.backend_.log(inst, "line tagged with a stranger", "not-a-request-of-this-instance", now);
    k.backend_.log(inst, "untagged line", "", now);
    return 0;
  });
  auto of = [&k](const std::string& rid) {
    return k.call("GET", "/v1/functions/tag/logs?request_id=" + rid).body;
  };
  const std::string logs1 = of(r1), logs2 = of(r2);
  EXPECT_NE(logs1.find("late line of the first call"), std::string::npos) << logs1;
  EXPECT_EQ(logs2.find("late line of the first call"), std::string::npos) << logs2;
  EXPECT_NE(logs2.find("line tagged with a stranger"), std::string::npos) << logs2;
  EXPECT_NE(logs2.find("untagged line"), std::string::npos) << logs2;
  EXPECT_EQ(of("not-a-request-of-this-instance").find("stranger"), std::string::npos);
}

// A guest flooding its output (or writing log frames to kilnd's event port itself) gets its
// instance's burst of lines and no more; the rest are dropped and counted per function, and
// another instance's lines are still kept.
TEST_F(DaemonTest, AGuestLogFloodStaysWithinItsInstancesBudget) {
  Kilnd k(dir_);
  k.deploy("flood", R"({"image":"oci:/img:1"})");
  k.deploy("quiet", R"({"image":"oci:/img:1"})");
  ASSERT_EQ(k.call("POST", "/v1/functions/flood/invoke", "{}").status, 200);
  ASSERT_EQ(k.call("POST", "/v1/functions/quiet/invoke", "{}").status, 200);
  auto live = k.on_loop([&k] { return k.backend_.live(); });
  ASSERT_EQ(live.size(), 2u);
  const std::string flood = live[0].rfind("flood", 0) == 0 ? live[0] : live[1];
  const std::string quiet = flood == live[0] ? live[1] : live[0];
  k.on_loop([&] {
    for (int i = 0; i < 3000; ++i) k.backend_.log(flood, "flood line " + std::to_string(i));
    k.backend_.log(quiet, "the quiet function's line");
    return 0;
  });
  auto metrics = k.call("GET", "/metrics").body;
  auto value = [&metrics](const std::string& series) {
    auto at = metrics.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + series.size() + 2));
  };
  const double kept = value(R"(kiln_guest_log_lines_total{function="flood",outcome="kept"})");
  const double dropped = value(R"(kiln_guest_log_lines_total{function="flood",outcome="dropped"})");
  EXPECT_GE(kept, 2000);  // the burst (plus what the rate refilled meanwhile: 1000 lines/s)
  EXPECT_LT(kept, 2100);
  EXPECT_EQ(kept + dropped, 3000) << metrics;
  EXPECT_EQ(value(R"(kiln_guest_log_lines_total{function="quiet",outcome="kept"})"), 1) << metrics;
  EXPECT_NE(k.call("GET", "/v1/functions/quiet/logs").body.find("the quiet function's line"), std::string::npos);
  auto logs = k.call("GET", "/v1/functions/flood/logs?limit=100000").body;
  EXPECT_NE(logs.find("flood line 1999"), std::string::npos);
  EXPECT_EQ(logs.find("flood line 2999"), std::string::npos);
}

// DELETE removes a function's logs for good: what its instances still say while they stop (a
// guest's last lines, kilnd's "stopped") does not bring them back.
TEST_F(DaemonTest, ADeletedFunctionsStoppingInstanceWritesNoLogBack) {
  Kilnd k(dir_);
  k.deploy("gone", R"({"image":"oci:/img:1"})");
  ASSERT_EQ(k.call("POST", "/v1/functions/gone/invoke", "{}").status, 200);
  auto live = k.on_loop([&k] { return k.backend_.live(); });
  ASSERT_EQ(live.size(), 1u);
  k.on_loop([&k] { return k.backend_.hold_stops = true; });
  ASSERT_EQ(k.call("DELETE", "/v1/functions/gone").status, 204);
  k.on_loop([&] {
    k.backend_.log(live[0], "a last line while stopping");
    k.backend_.finish_stop(live[0]);
    return 0;
  });
  k.deploy("gone", R"({"image":"oci:/img:1"})");  // the same name again: a fresh, empty log
  auto logs = k.call("GET", "/v1/functions/gone/logs").body;
  EXPECT_EQ(logs.find("a last line while stopping"), std::string::npos) << logs;
  EXPECT_EQ(logs.find(live[0]), std::string::npos) << logs;
  k.stop();
  std::ifstream in(dir_ + "/logs/gone.log");
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(file.find(live[0]), std::string::npos) << file;
}

// The log file gets a running kilnd's lines shortly after the invocations (a timed batch, not
// only when kilnd stops), in order, every line whole.
TEST_F(DaemonTest, LogFilesGetTheLinesWhileKilndRuns) {
  Kilnd k(dir_);
  k.deploy("echo", R"({"image":"oci:/img:1"})");
  std::vector<std::string> rids;
  for (int i = 0; i < 3; ++i) {
    auto r = k.call("POST", "/v1/functions/echo/invoke", "{}");
    ASSERT_EQ(r.status, 200) << r.body;
    rids.push_back(r.headers["x-kiln-request-id"]);
  }
  const std::string file = dir_ + "/logs/echo.log";
  const std::string last_report = "REPORT RequestId: " + rids.back();
  std::string text;
  for (int i = 0; i < 500 && text.find(last_report) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in(file);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_NE(text.find(last_report), std::string::npos) << "no REPORT of the last request in " << file << " within 5 s:\n"
                                                       << text;
  std::size_t at = 0;
  for (const auto& rid : rids) {
    for (const char* kind : {"START", "END", "REPORT"}) {
      std::size_t found = text.find(std::string(kind) + " RequestId: " + rid, at);
      ASSERT_NE(found, std::string::npos) << kind << " " << rid << " missing or out of order:\n" << text;
      at = found;
    }
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_FALSE(json::parse(line, nullptr, false).is_discarded()) << line;
  }
}

TEST_F(DaemonTest, RestartKeepsFunctions) {
  {
    Kilnd k(dir_);
    k.deploy("keep", R"({"image":"oci:/img:1","memory_mib":512})");
    k.deploy("also", R"({"image":"oci:/img:2"})");
    ASSERT_EQ(k.call("POST", "/v1/functions/keep/invoke", "{}").status, 200);
    ASSERT_EQ(k.call("PUT", "/v1/functions/keep", R"({"image":"oci:/img:1","memory_mib":1024})").status, 200);
  }
  Kilnd again(dir_);
  auto list = json::parse(again.call("GET", "/v1/functions").body);
  ASSERT_EQ(list["functions"].size(), 2u);
  auto keep = json::parse(again.call("GET", "/v1/functions/keep").body);
  EXPECT_EQ(keep["config"]["memory_mib"], 1024);
  EXPECT_EQ(keep["version"], 2);
  EXPECT_EQ(keep["image"]["state"], "ready");
  auto r = again.call("POST", "/v1/functions/keep/invoke", "{}");
  EXPECT_EQ(r.status, 200);
  // Logs from the previous run are still there.
  auto logs = again.call("GET", "/v1/functions/keep/logs");
  EXPECT_NE(logs.body.find("START RequestId:"), std::string::npos);
}

}  // namespace
}  // namespace kiln::kilnd::daemon

// e2e (label e2e; needs a KVM that runs Linux, i.e. the nested test host here): kilnd with the
// real kiln-vmm, the guest kernel, the kiln-init initramfs and the hello OCI image. Deploy ->
// event, web and Lambda invocations -> logs; 20 concurrent invocations each get their own
// answer; SIGTERM stops every VM; a restarted kilnd keeps the function and serves it again.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/e2e/lib/kilnd_fixture.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using kiln::kilnd::client::HttpResult;

class KilndE2e : public kiln::e2e::KilndTest {
 protected:
  int stop(int sig) { return kilnd_->stop(sig); }
  int count_vmms(const std::string& state) { return static_cast<int>(kiln::e2e::vmm_pids(state).size()); }
  std::string build_root() const { return kilnd_->paths().build_root; }
};

TEST_F(KilndE2e, DeployInvokeLogsConcurrencyRestart) {
  start();
  std::string oci = build_root() + "/examples/hello/oci";
  auto deployed = kilnd_->deploy(
      "hello", {{"image", "oci:" + oci}, {"timeout_ms", 120000}, {"concurrency", 4}, {"max_instances", 2}});
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  json rec = *deployed;
  ASSERT_EQ(rec["image"]["state"], "ready") << rec.dump();

  auto ev = call("POST", "/v1/functions/hello/invoke", R"({"name":"kiln"})");
  ASSERT_EQ(ev.status, 200) << ev.body;
  auto evj = json::parse(ev.body);
  EXPECT_EQ(evj["message"], "hello, kiln");
  std::string rid = ev.headers["x-kiln-request-id"];
  EXPECT_EQ(evj["request_id"], rid);
  EXPECT_EQ(ev.headers["x-kiln-cold-start"], "1");

  auto web = call("GET", "/v1/functions/hello/http/");
  EXPECT_EQ(web.status, 200);
  EXPECT_NE(web.body.find("hello from kiln"), std::string::npos) << web.body;
  auto lam = call("POST", "/2015-03-31/functions/hello/invocations", R"({"name":"lambda"})");
  EXPECT_EQ(lam.status, 200);
  EXPECT_EQ(json::parse(lam.body)["message"], "hello, lambda");

  std::string logs;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  std::string want = "hello: POST /event-invoke 200 request_id=" + rid;
  while (logs.find(want) == std::string::npos && Clock::now() < deadline) {
    logs = call("GET", "/v1/functions/hello/logs?request_id=" + rid).body;
  }
  EXPECT_NE(logs.find("START RequestId: " + rid), std::string::npos) << logs;
  EXPECT_NE(logs.find(want), std::string::npos) << logs;
  EXPECT_NE(logs.find("END RequestId: " + rid), std::string::npos);
  EXPECT_NE(logs.find("\tInit Duration: "), std::string::npos);

  // Short warm calls back to back (each right after the previous answer): each one's own output
  // line (hello logs the request id it was given, before answering) is filed under its request
  // id and under no other, although it may reach kilnd after the next call has begun: kiln-init
  // tags each line with the request it belongs to (src/README.md, Logs).
  std::vector<std::string> rids;
  for (int i = 0; i < 6; ++i) {
    auto r = call("POST", "/v1/functions/hello/invoke", R"({"name":"quick"})");
    ASSERT_EQ(r.status, 200) << r.body;
    rids.push_back(r.headers["x-kiln-request-id"]);
  }
  for (const auto& id : rids) {
    std::string mine;
    auto until = Clock::now() + std::chrono::seconds(60);
    while (mine.find("request_id=" + id) == std::string::npos && Clock::now() < until) {
      mine = call("GET", "/v1/functions/hello/logs?request_id=" + id).body;
    }
    EXPECT_NE(mine.find("hello: POST /event-invoke 200 request_id=" + id), std::string::npos) << mine;
    for (const auto& other : rids) {
      if (other != id) {
        EXPECT_EQ(mine.find("request_id=" + other), std::string::npos) << mine;
      }
    }
  }

  std::vector<std::future<HttpResult>> calls;
  for (int i = 0; i < 20; ++i) {
    calls.push_back(std::async(std::launch::async, [this, i] {
      return call("POST", "/v1/functions/hello/invoke", json({{"name", "nonce-" + std::to_string(i * 7919)}}).dump());
    }));
  }
  for (int i = 0; i < 20; ++i) {
    auto r = calls[static_cast<std::size_t>(i)].get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["message"], "hello, nonce-" + std::to_string(i * 7919));
  }

  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(count_vmms(state_), 0);

  start();
  auto again = call("POST", "/v1/functions/hello/invoke", R"({"name":"again"})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["message"], "hello, again");
}

// Failure paths with a busybox httpd CGI function in the same image: a handler that never
// answers (504, instance recycled), one that kills the server (502 with detail), and kill -9
// of the kiln-vmm mid-invocation (502 before the timeout, then a fresh instance).
TEST_F(KilndE2e, TimeoutCrashAndKilledVmm) {
  start();
  json cfg = kiln::e2e::cgi_function_config(
      kilnd_->paths(), {{"hang", "#!/bin/sh\nsleep 600\n"},
                        {"crash", "#!/bin/sh\nkillall -9 httpd\n"},
                        {"ok", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n"}});
  cfg.update({{"timeout_ms", 20000}, {"min_instances", 1}, {"max_instances", 2}});
  ASSERT_EQ(call("PUT", "/v1/functions/cgi", cfg.dump()).status, 201);
  // Wait (deadline) until the warm instance is up.
  auto warm = [this] {
    auto r = kilnd_->wait_ready_instances("cgi", 1);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok();
  };
  ASSERT_TRUE(warm());
  auto ok = call("GET", "/v1/functions/cgi/http/cgi-bin/ok");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "ok\n");
  std::string first = ok.headers["x-kiln-instance-id"];

  auto hang = call("GET", "/v1/functions/cgi/http/cgi-bin/hang");
  EXPECT_EQ(hang.status, 504) << hang.body;
  EXPECT_NE(hang.body.find("timed out after 20.00 seconds"), std::string::npos) << hang.body;

  ASSERT_TRUE(warm());
  auto crash = call("GET", "/v1/functions/cgi/http/cgi-bin/crash");
  EXPECT_EQ(crash.status, 502) << crash.body;
  EXPECT_NE(crash.headers["x-kiln-instance-id"], first);  // the timed-out one was recycled

  ASSERT_TRUE(warm());
  auto pending = std::async(std::launch::async, [this] { return call("GET", "/v1/functions/cgi/http/cgi-bin/hang"); });
  pid_t vmm = -1;
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (vmm < 0 && Clock::now() < deadline) {
    auto j = json::parse(call("GET", "/v1/functions/cgi").body, nullptr, false);
    for (const auto& i : j["instances"]) {
      if (i["in_flight"] == 1) vmm = kilnd_->instance_vmm_pid(i["id"].get<std::string>());
    }
  }
  ASSERT_GT(vmm, 0);
  kill(vmm, SIGKILL);
  auto killed = pending.get();
  EXPECT_EQ(killed.status, 502) << killed.body;  // an error, not the 504 of a full timeout
  ASSERT_TRUE(warm());
  auto after = call("GET", "/v1/functions/cgi/http/cgi-bin/ok");
  EXPECT_EQ(after.status, 200) << after.body;
  auto logs = call("GET", "/v1/functions/cgi/logs").body;
  EXPECT_NE(logs.find("REPORT RequestId: "), std::string::npos);
  EXPECT_NE(logs.find("Status: timeout"), std::string::npos) << logs;
  EXPECT_EQ(stop(SIGTERM), 0);
  EXPECT_EQ(count_vmms(state_), 0);
}

}  // namespace

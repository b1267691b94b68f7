// e2e (label e2e; needs a KVM that runs Linux, i.e. the nested test host here): kilnd with the
// real kiln-vmm, the guest kernel, the kiln-init initramfs and the hello OCI image. Deploy ->
// event, web and Lambda invocations -> logs; 20 concurrent invocations each get their own
// answer; SIGTERM stops every VM; a restarted kilnd keeps the function and serves it again.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "src/client/http_client.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using kiln::kilnd::client::Endpoint;
using kiln::kilnd::client::HttpResult;

std::string build_root() {
  const char* b = std::getenv("KILN_BUILD_DIR");
  return b ? b : KILN_BUILD_ROOT;
}

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int count_vmms(const std::string& state) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string cmd = slurp((e.path() / "cmdline").string());
    std::string argv0 = cmd.substr(0, cmd.find('\0'));
    if (argv0.find("kiln-vmm") != std::string::npos && cmd.find(state) != std::string::npos) ++n;
  }
  return n;
}

class KilndE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-e2e-XXXXXX";
    state_ = mkdtemp(tmpl);
    kernel_ = std::getenv("KILN_GUEST_KERNEL") ? std::getenv("KILN_GUEST_KERNEL") : build_root() + "/guest-kernel/vmlinux";
    // The VMM's self-test decides: a host whose KVM cannot run Linux skips with its sentence.
    std::string out = state_ + "/selftest.txt";
    std::string cmd = std::string(KILN_VMM_BINARY) + " --self-test > " + out + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      GTEST_SKIP() << slurp(out) << " (scripts/test runs the e2e tier inside the nested test host)";
    }
    ASSERT_TRUE(fs::exists(kernel_)) << "no guest kernel at " << kernel_ << " (ninja guest-kernel)";
    ASSERT_TRUE(fs::exists(KILN_INITRAMFS)) << "no initramfs (ninja kiln-initramfs)";
  }
  void TearDown() override {
    stop(SIGKILL);
    fs::remove_all(state_);
  }

  void start() {
    std::vector<std::string> args = {KILN_KILND_BINARY, "--listen", "127.0.0.1:0", "--state-dir", state_,
                                     "--vmm", KILN_VMM_BINARY, "--kernel", kernel_, "--initrd", KILN_INITRAMFS,
                                     "--boot-timeout-ms", "120000"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    std::string line;
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, 1000) != 1) continue;
      char buf[512];
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    ASSERT_NE(line.find("kilnd: listening on"), std::string::npos) << line;
    ep_.unix_path = state_ + "/kilnd.sock";
  }

  int stop(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  HttpResult call(const std::string& method, const std::string& target, const std::string& body = "") {
    kiln::kilnd::client::RequestOptions o;
    o.timeout = std::chrono::seconds(300);
    auto r = kiln::kilnd::client::request(ep_, method, target, body, o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : HttpResult{};
  }

  std::string state_, kernel_;
  pid_t pid_ = -1;
  Endpoint ep_;
};

TEST_F(KilndE2e, DeployInvokeLogsConcurrencyRestart) {
  start();
  std::string oci = build_root() + "/examples/hello/oci";
  auto put = call("PUT", "/v1/functions/hello",
                  json({{"image", "oci:" + oci}, {"timeout_ms", 120000}, {"concurrency", 4}, {"max_instances", 2}}).dump());
  ASSERT_EQ(put.status, 201) << put.body;
  json rec;
  auto deadline = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < deadline) {
    rec = json::parse(call("GET", "/v1/functions/hello").body);
    if (rec["image"]["state"] != "building" && rec["image"]["state"] != "pending") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a background build
  }
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
  deadline = Clock::now() + std::chrono::seconds(60);
  std::string want = "hello: POST /event-invoke 200 request_id=" + rid;
  while (logs.find(want) == std::string::npos && Clock::now() < deadline) {
    logs = call("GET", "/v1/functions/hello/logs?request_id=" + rid).body;
  }
  EXPECT_NE(logs.find("START RequestId: " + rid), std::string::npos) << logs;
  EXPECT_NE(logs.find(want), std::string::npos) << logs;
  EXPECT_NE(logs.find("END RequestId: " + rid), std::string::npos);
  EXPECT_NE(logs.find("\tInit Duration: "), std::string::npos);

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
  std::string oci = build_root() + "/examples/hello/oci";
  std::string script =
      "mkdir -p /tmp/www/cgi-bin && cd /tmp/www/cgi-bin && "
      "printf '#!/bin/sh\\nsleep 600\\n' > hang && "
      "printf '#!/bin/sh\\nkillall -9 httpd\\n' > crash && "
      "printf '#!/bin/sh\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nok\\\\n\"\\n' > ok && "
      "chmod +x hang crash ok && exec httpd -f -p 9000 -h /tmp/www";
  json cfg = {{"image", "oci:" + oci}, {"command", {"sh", "-c", script}}, {"timeout_ms", 20000},
              {"min_instances", 1}, {"max_instances", 2}};
  ASSERT_EQ(call("PUT", "/v1/functions/cgi", cfg.dump()).status, 201);
  // Wait (deadline) until the warm instance is up.
  auto warm = [this] {
    auto deadline = Clock::now() + std::chrono::seconds(300);
    while (Clock::now() < deadline) {
      auto j = json::parse(call("GET", "/v1/functions/cgi").body, nullptr, false);
      if (j.is_object() && j["image"]["state"] == "failed") return false;
      if (j.is_object() && j["pool"].is_object() && j["pool"]["idle"].get<int>() >= 1) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a remote state
    }
    return false;
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
      if (i["in_flight"] == 1) std::ifstream(state_ + "/run/" + i["id"].get<std::string>() + "/vmm.pid") >> vmm;
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

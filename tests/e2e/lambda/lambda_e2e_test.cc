// e2e (label e2e; the nested test host here), issue 18: Lambda images run unmodified in real
// microVMs. Test images are built here (lambda_image.h) from the static
// runtime client runtime_client.cc and busybox-static, detected as Lambda images by their Env
// (LAMBDA_TASK_ROOT). One kilnd serves three functions:
// - `lam` (user 1000): an event invocation (the event, request id, deadline and ARN headers the
//   runtime got), the Lambda path with Debian's awscli (its --client-context reaching the runtime;
//   X-Amzn-Trace-Id as Lambda-Runtime-Trace-Id), a web invocation as an API Gateway v2.0
//   event mapped back, a function error (Lambda's shape; X-Amz-Function-Error on the Lambda
//   path), a timeout (the next invocation answered by a recycled instance restored from the
//   snapshot), a crash, and the runtime's stdout/stderr lines with START/END/REPORT in its logs;
// - `root` (image user 0): the runtime sees no kiln-init in /proc or `ps`, and its kill(1,
//   SIGKILL) and `kill -9 1` leave the instance serving;
// - `initerr` (handler `initerror`): a runtime that posts init/error; the invocation fails with it.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/lambda/lambda_image.h"
#include "tests/e2e/lib/kilnd_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using kiln::kilnd::client::HttpResult;

constexpr int kTimeoutMs = 6000;
constexpr const char* kAws = "/usr/bin/aws";  // Debian's awscli, not whatever is first on PATH
// What `aws lambda invoke --client-context` sends: base64 of {"custom":{"via":"awscli"}}.
constexpr const char* kClientContextBase64 = "eyJjdXN0b20iOnsidmlhIjoiYXdzY2xpIn19";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


class LambdaE2e : public kiln::e2e::KilndTest {
 protected:
  // Deploys `name` from a fresh Lambda image layout; the image must get ready.
  // `extra` settings go into the function's config (e.g. args, the handler).
  void deploy(const std::string& name, const std::string& user, const json& extra = json::object()) {
    const std::string layout = state_ + "/images-" + name;
    ASSERT_NO_THROW(kiln::e2e::write_lambda_image(layout, user));
    json config = {{"image", "oci:" + layout + ":latest"}, {"timeout_ms", kTimeoutMs}, {"max_instances", 1}};
    config.update(extra);
    auto deployed = kilnd_->deploy(name, config);
    ASSERT_TRUE(deployed.ok()) << deployed.error().message;
    ASSERT_EQ((*deployed)["image"]["state"], "ready") << deployed->dump();
  }
  HttpResult event(const std::string& fn, const json& payload) {
    return call("POST", "/v1/functions/" + fn + "/invoke", payload.dump());
  }
  HttpResult lambda(const std::string& fn, const json& payload) {
    return call("POST", "/2015-03-31/functions/" + fn + "/invocations", payload.dump());
  }
  // A call with request headers (the fixture's call() sends none).
  HttpResult call_with(const std::string& method, const std::string& target, const std::string& body,
                       std::map<std::string, std::string> headers) {
    kiln::kilnd::client::RequestOptions options;
    options.headers = std::move(headers);
    options.timeout = std::chrono::seconds(120);
    auto r = kiln::kilnd::client::request(kilnd_->endpoint(), method, target, body, options);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : HttpResult{};
  }
  std::string logs(const std::string& fn, const std::string& query = "") {
    return call("GET", "/v1/functions/" + fn + "/logs" + query).body;
  }
  // Waits (deadline) until the function's log for `request_id` holds its REPORT line; returns it.
  std::string request_log(const std::string& fn, const std::string& request_id) {
    std::string text;
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30); std::chrono::steady_clock::now() < end;) {
      text = logs(fn, "?request_id=" + request_id);
      if (text.find("REPORT RequestId: " + request_id) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling kilnd's log batches
    }
    return text;
  }
  // `aws lambda invoke` against kilnd's TCP port with dummy credentials: exit code, its output
  // in *out and the function's answer (the outfile) in *payload.
  int aws_invoke(const std::string& fn, const json& payload, std::string* out, std::string* answer) {
    const std::string outfile = state_ + "/aws-" + fn + ".json", log = state_ + "/aws.out";
    std::vector<std::string> argv = {
        "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=" + state_, "AWS_ACCESS_KEY_ID=AKIAKILNTEST00000000",
        "AWS_SECRET_ACCESS_KEY=kiln-test-secret", "AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
        "AWS_CONFIG_FILE=" + state_ + "/aws-config", "AWS_SHARED_CREDENTIALS_FILE=" + state_ + "/aws-credentials",
        "AWS_PAGER=", kAws, "lambda", "invoke", "--endpoint-url",
        "http://127.0.0.1:" + std::to_string(kilnd_->tcp_port()), "--function-name", fn, "--payload", payload.dump(),
        "--cli-binary-format", "raw-in-base64-out", "--client-context", kClientContextBase64, outfile};
    // Python importing awscli's botocore alone has taken over 120 s in the emulated test host (a CI
    // run: the call reached kilnd after 2 min); the invocation itself answers in milliseconds.
    int rc = kiln::testing::run(argv, log, 300000);
    *out = kiln::e2e::slurp(log);
    *answer = kiln::e2e::slurp(outfile);
    return rc;
  }
  static std::string instance(const HttpResult& r) {
    auto it = r.headers.find("x-kiln-instance-id");
    return it == r.headers.end() ? "" : it->second;
  }
};

TEST_F(LambdaE2e, RuntimeApiImagesThroughEveryPath) {
  ASSERT_TRUE(fs::exists(kAws)) << kAws << " missing: Debian's awscli (scripts/setup installs it)";
  start();
  deploy("lam", "1000:1000");
  deploy("root", "0");
  deploy("initerr", "1000:1000", {{"args", {"initerror"}}});  // the handler: the CMD's first element

  // 1. An event invocation: the runtime got the event and Lambda's headers for it.
  const std::int64_t before = wall_ms();
  auto ev = event("lam", {{"action", "echo"}, {"n", 1}});
  const std::int64_t after = wall_ms();
  ASSERT_EQ(ev.status, 200) << ev.body;
  std::printf("event answer: %s\n", ev.body.c_str());
  json echo = json::parse(ev.body, nullptr, false);
  ASSERT_TRUE(echo.is_object()) << ev.body;
  EXPECT_EQ(echo["event"], json({{"action", "echo"}, {"n", 1}}));
  EXPECT_EQ(echo["request_id"], ev.headers["x-kiln-request-id"]);
  EXPECT_EQ(echo["function_arn"], "arn:aws:lambda:local:000000000000:function:lam");
  EXPECT_EQ(echo["handler"], "echo") << "_HANDLER is the CMD's first element";
  EXPECT_EQ(echo["function_name"], "lam");
  // The deadline is the lease plus the timeout (a cold start's init is not billed).
  const std::int64_t deadline = std::stoll(echo.value("deadline_ms", "0"));
  EXPECT_GE(deadline, before + kTimeoutMs - 1000) << ev.body;
  EXPECT_LE(deadline, after + kTimeoutMs + 1000) << ev.body;
  const std::string first_instance = instance(ev);

  // 2. Output lines, for the logs below.
  auto logged = event("lam", {{"action", "log"}});
  ASSERT_EQ(logged.status, 200) << logged.body;
  const std::string log_request = logged.headers["x-kiln-request-id"];
  EXPECT_EQ(json::parse(logged.body, nullptr, false)["logged"], log_request);

  // 3. The Lambda path with Debian's awscli (one call: it takes a minute and more in the
  //    emulated test host), then a function error on the Lambda and event paths.
  std::string aws_out, aws_answer;
  const int rc = aws_invoke("lam", {{"action", "echo"}, {"via", "awscli"}}, &aws_out, &aws_answer);
  std::printf("$ aws lambda invoke --function-name lam --payload '{\"action\":\"echo\",\"via\":\"awscli\"}' "
              "--cli-binary-format raw-in-base64-out out.json\n%sout.json: %s\n",
              aws_out.c_str(), aws_answer.c_str());
  ASSERT_EQ(rc, 0) << aws_out;
  EXPECT_NE(aws_out.find("\"StatusCode\": 200"), std::string::npos) << aws_out;
  EXPECT_EQ(aws_out.find("FunctionError"), std::string::npos) << aws_out;
  json aws_echo = json::parse(aws_answer, nullptr, false);
  EXPECT_EQ(aws_echo["event"]["via"], "awscli") << aws_answer;
  EXPECT_EQ(json::parse(aws_echo.value("client_context", ""), nullptr, false), json({{"custom", {{"via", "awscli"}}}}))
      << "Lambda-Runtime-Client-Context: " << aws_answer;
  auto lam_error = lambda("lam", {{"action", "error"}});
  std::printf("Lambda path, function error: %d X-Amz-Function-Error: %s %s\n", lam_error.status,
              lam_error.headers["x-amz-function-error"].c_str(), lam_error.body.c_str());
  EXPECT_EQ(lam_error.status, 200) << lam_error.body;
  EXPECT_EQ(lam_error.headers["x-amz-function-error"], "Unhandled");
  json error = json::parse(lam_error.body, nullptr, false);
  EXPECT_EQ(error["errorType"], "TestError") << lam_error.body;
  EXPECT_EQ(error["errorMessage"], "failed on request") << lam_error.body;
  EXPECT_TRUE(error["stackTrace"].is_array()) << lam_error.body;
  auto ev_error = event("lam", {{"action", "error"}});
  EXPECT_EQ(ev_error.status, 502) << ev_error.body;
  json ev_error_body = json::parse(ev_error.body, nullptr, false);
  EXPECT_EQ(ev_error_body["error"], "function_error") << ev_error.body;
  EXPECT_EQ(ev_error_body["function_error"]["errorType"], "TestError") << ev_error.body;

  // 4. A web invocation: an API Gateway v2.0 event in, the proxy result mapped back.
  auto web = call_with("POST", "/v1/functions/lam/http/web/path?a=1&b=two", "hello web",
                       {{"Content-Type", "text/plain"}, {"X-Probe", "yes"}});
  std::printf("web answer: %d %s\n", web.status, web.body.c_str());
  EXPECT_EQ(web.status, 201) << web.body;
  EXPECT_EQ(web.headers["content-type"], "text/plain");
  EXPECT_EQ(web.headers["x-runtime"], "kiln-e2e");
  EXPECT_EQ(web.headers["set-cookie"], "visited=yes; Path=/");
  EXPECT_EQ(web.body, "method=POST rawPath=/web/path rawQueryString=a=1&b=two x-probe=yes body=hello web");

  // 5. A timeout: 504, and the next invocation is answered by another instance, restored from
  //    the snapshot of the first (its clock and the deadline it gets are right).
  auto slow = event("lam", {{"action", "sleep"}});
  EXPECT_EQ(slow.status, 504) << slow.body;
  EXPECT_EQ(instance(slow), first_instance);
  const std::int64_t before_restore = wall_ms();
  auto restored = event("lam", {{"action", "echo"}, {"n", 2}});
  const std::int64_t after_restore = wall_ms();
  ASSERT_EQ(restored.status, 200) << restored.body;
  const std::string second_instance = instance(restored);
  EXPECT_NE(second_instance, first_instance) << "the timed-out instance was not recycled";
  json echo2 = json::parse(restored.body, nullptr, false);
  EXPECT_EQ(echo2["event"]["n"], 2);
  const std::int64_t guest_now = echo2.value("now_ms", std::int64_t{0});
  EXPECT_GE(guest_now, before_restore - 2000) << "guest clock stale after restore";
  EXPECT_LE(guest_now, after_restore + 2000);
  const std::int64_t deadline2 = std::stoll(echo2.value("deadline_ms", "0"));
  EXPECT_GE(deadline2, before_restore + kTimeoutMs - 1000) << restored.body;
  EXPECT_LE(deadline2, after_restore + kTimeoutMs + 1000) << restored.body;
  std::string all = logs("lam");
  EXPECT_NE(all.find("instance " + second_instance + " restored from snapshot"), std::string::npos) << all;

  // 6. A crash: on the Lambda path, Runtime.ExitError as a function error; the next answer
  //    comes from yet another instance.
  auto crash = lambda("lam", {{"action", "crash"}});
  EXPECT_EQ(crash.status, 200) << crash.body;
  EXPECT_EQ(crash.headers["x-amz-function-error"], "Unhandled");
  std::printf("Lambda path, crash: %d X-Amz-Function-Error: %s %s\n", crash.status,
              crash.headers["x-amz-function-error"].c_str(), crash.body.c_str());
  json crash_error = json::parse(crash.body, nullptr, false);
  EXPECT_EQ(crash_error["errorType"], "Runtime.ExitError") << crash.body;
  EXPECT_NE(crash_error.value("errorMessage", "").find("exited with code 3"), std::string::npos) << crash.body;
  const std::string trace = "Root=1-5e1b4151-5ac6c58f5d0e4c9e1b2c3d4e;Sampled=0";
  auto after_crash = call_with("POST", "/2015-03-31/functions/lam/invocations", json({{"action", "echo"}, {"n", 3}}).dump(),
                               {{"X-Amzn-Trace-Id", trace}});
  ASSERT_EQ(after_crash.status, 200) << after_crash.body;
  json echo3 = json::parse(after_crash.body, nullptr, false);
  EXPECT_EQ(echo3["event"]["n"], 3) << after_crash.body;
  EXPECT_EQ(echo3["trace_id"], trace) << "Lambda-Runtime-Trace-Id: " << after_crash.body;
  EXPECT_TRUE(after_crash.headers.find("x-amz-function-error") == after_crash.headers.end());

  // 7. The runtime's stdout and stderr lines are the function's log, with START/END/REPORT.
  const std::string mine = request_log("lam", log_request);
  std::printf("logs of %s:\n%s", log_request.c_str(), mine.c_str());
  EXPECT_NE(mine.find("START RequestId: " + log_request), std::string::npos) << mine;
  EXPECT_NE(mine.find("log line on stdout for " + log_request), std::string::npos) << mine;
  EXPECT_NE(mine.find("log line on stderr for " + log_request), std::string::npos) << mine;
  EXPECT_NE(mine.find("END RequestId: " + log_request), std::string::npos) << mine;
  EXPECT_NE(mine.find("REPORT RequestId: " + log_request), std::string::npos) << mine;
  all = logs("lam");
  EXPECT_NE(all.find("runtime_client: crashing in request " + crash.headers["x-amzn-requestid"]), std::string::npos)
      << all;

  // 8. As root: no kiln-init in /proc or `ps`, and killing PID 1 ends nothing.
  auto probe = event("root", {{"action", "probe"}});
  ASSERT_EQ(probe.status, 200) << probe.body;
  json seen = json::parse(probe.body, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << probe.body;
  std::printf("root probe: %s\n", seen.dump(1).c_str());
  EXPECT_EQ(seen["uid"], 0);
  ASSERT_TRUE(seen["processes"].is_array());
  EXPECT_FALSE(seen["processes"].empty());
  // Only the namespace's init and the runtime itself (the probe lists /proc before it runs ps).
  EXPECT_EQ(seen["processes"].size(), 2u) << seen["processes"].dump();
  for (const auto& p : seen["processes"]) {
    EXPECT_EQ(p["comm"].get<std::string>().find("kiln-init"), std::string::npos) << p.dump();
    EXPECT_EQ(p["cmdline"].get<std::string>().find("kiln-init"), std::string::npos) << p.dump();
    if (p["pid"] == 1) {
      EXPECT_EQ(p["comm"], "fn-init") << p.dump();
    } else {
      EXPECT_EQ(p["pid"], seen["pid"]) << p.dump();
      EXPECT_EQ(p["cmdline"], "/var/runtime/bootstrap echo") << p.dump();
    }
  }
  EXPECT_EQ(seen["ps"].get<std::string>().find("kiln-init"), std::string::npos) << seen["ps"];
  EXPECT_EQ(seen["kill_command"]["exit"], 0) << "`kill -9 1` as root: " << seen["kill_command"];
  auto still = event("root", {{"action", "echo"}, {"n", 4}});
  ASSERT_EQ(still.status, 200) << still.body;
  EXPECT_EQ(instance(still), instance(probe)) << "kill -9 1 ended the instance";
  EXPECT_EQ(json::parse(still.body, nullptr, false)["event"]["n"], 4);

  // 9. A runtime whose init fails (invocation/next never called; init/error instead): the
  //    invocation fails with the runtime's error, which the function's log keeps too.
  auto init = lambda("initerr", {{"action", "echo"}});
  std::printf("Lambda path, init error: %d %s %s\n", init.status, init.headers["x-amzn-errortype"].c_str(),
              init.body.c_str());
  EXPECT_EQ(init.status, 502) << init.body;
  EXPECT_EQ(init.headers["x-amzn-errortype"], "ResourceNotReadyException") << init.body;
  EXPECT_NE(init.body.find("init failed on purpose"), std::string::npos) << init.body;
  EXPECT_NE(init.body.find("Runtime.TestInitError"), std::string::npos) << init.body;
  const std::string init_log = logs("initerr");
  EXPECT_NE(init_log.find("kiln-init: runtime init error: "), std::string::npos) << init_log;
}

}  // namespace

// The agent in lambda mode, end to end on this host: a forked agent (Unix sockets in place of
// vsock, no namespaces) runs a small Runtime API client in Python; the test plays kilnd on the
// proxy and event sockets: invocations, a function error, an oversize response, a second
// `next` before a response, and an init error.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/protocol/frame.h"
#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"
#include "guest-agent/agent/agent.h"
#include "guest-agent/agent/endpoint.h"
#include "tests/support/process.h"

namespace kiln::agent {
namespace {

namespace fs = std::filesystem;
using protocol::Frame;
using protocol::FrameType;
using kiln::testing::monotonic_ms;

constexpr int kDeadlineMs = 20000;  // upper bound for every wait; never a sleep
constexpr const char* kPython = "/usr/bin/python3";

// Written for this test against the documented Runtime API (no SDK).
constexpr const char* kRuntime = R"PY(
import http.client, json, os, sys
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
print("env handler=%s fn=%s mem=%s task=%s" % (os.environ.get("_HANDLER"), os.environ["AWS_LAMBDA_FUNCTION_NAME"],
      os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], os.environ["LAMBDA_TASK_ROOT"]), flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "init-fails":
    c = http.client.HTTPConnection(api)
    c.request("POST", "/2018-06-01/runtime/init/error",
              json.dumps({"errorMessage": "cannot import", "errorType": "Runtime.ImportModuleError"}),
              {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
    r = c.getresponse(); r.read()
    print("init error answered %d" % r.status, flush=True)
    sys.exit(1)
c = http.client.HTTPConnection(api)
while True:
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    event = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    print("handling " + rid, flush=True)
    if event.get("twice"):
        c.request("GET", "/2018-06-01/runtime/invocation/next")
        a = c.getresponse(); a.read()
        print("second next answered %d" % a.status, flush=True)
    if event.get("big"):
        c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, b"x" * (7 * 1024 * 1024))
        a = c.getresponse()
        print("big response answered %d %s" % (a.status, json.loads(a.read())["errorType"]), flush=True)
        continue
    if event.get("fail"):
        c.request("POST", "/2018-06-01/runtime/invocation/%s/error" % rid,
                  json.dumps({"errorMessage": "asked to fail", "errorType": "TestError", "stackTrace": []}),
                  {"Lambda-Runtime-Function-Error-Type": "Runtime.TestError"})
    else:
        out = {"echo": event, "id": rid, "deadline": int(r.getheader("Lambda-Runtime-Deadline-Ms")),
               "arn": r.getheader("Lambda-Runtime-Invoked-Function-Arn")}
        c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, json.dumps(out))
    a = c.getresponse(); a.read()
    if a.status != 202: print("unexpected status %d" % a.status, flush=True)
)PY";

std::uint64_t wall_ms() { return kiln::realtime_ns() / 1000000; }

class LambdaAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the agent switches to the spec's user (root here)";
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << "needs " << kPython;
    char tmpl[] = "/tmp/kiln-lambda-agent-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/runtime.py") << kRuntime;
    auto l = listen_on(Endpoint::unix_path(dir_ + "/events.sock"));
    ASSERT_TRUE(l.ok()) << l.error().message;
    events_listener_ = std::move(*l);
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& l : logs_) std::fprintf(stderr, "log [%s] %s\n", l.request_id.c_str(), l.data.c_str());
    }
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void start(const std::vector<std::string>& extra_args) {
    protocol::LaunchSpec spec;
    spec.argv = {kPython, dir_ + "/runtime.py"};
    spec.argv.insert(spec.argv.end(), extra_args.begin(), extra_args.end());
    spec.runtime_api = protocol::RuntimeApi::kLambda;
    spec.lambda.function_name = "echo";
    spec.lambda.memory_mib = 256;
    spec.lambda.timeout_ms = 3000;
    spec.lambda.handler = "app.handler";
    spec.ready_timeout_ms = 10000;
    spec.stop_grace_ms = 1000;
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      AgentOptions opt;
      opt.control = Endpoint::unix_path(dir_ + "/control.sock");
      opt.proxy = Endpoint::unix_path(dir_ + "/proxy.sock");
      opt.events = Endpoint::unix_path(dir_ + "/events.sock");
      opt.runtime_api_port = 0;
      opt.spec = spec;
      opt.drain_ms = 200;
      Agent agent(std::move(opt));
      _exit(agent.run().ok() ? 0 : 97);
    }
    pollfd p{events_listener_.get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, kDeadlineMs), 1) << "no event connection from the agent";
    events_.reset(accept4(events_listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(events_);
  }

  // Reads events until one of `type` arrives; log lines are kept.
  Result<Frame> wait_event(FrameType type) {
    std::uint64_t deadline = monotonic_ms() + kDeadlineMs;
    while (true) {
      Frame f;
      while (!decoder_.next(&f)) {
        if (decoder_.failed()) return make_error("corrupt event stream");
        pollfd p{events_.get(), POLLIN, 0};
        int left = static_cast<int>(deadline > monotonic_ms() ? deadline - monotonic_ms() : 0);
        if (poll(&p, 1, left) != 1) return make_error("timed out waiting for an event");
        char buf[65536];
        ssize_t n = recv(events_.get(), buf, sizeof(buf), 0);
        if (n <= 0) return make_error("event connection closed");
        KILN_TRY(decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n))));
      }
      if (f.type == FrameType::kLog) {
        KILN_ASSIGN_OR_RETURN(protocol::LogEvent l, protocol::decode_log(f.payload));
        logs_.push_back(l);
      }
      if (f.type == type) return f;
    }
  }

  bool logged(const std::string& needle) const {
    for (const auto& l : logs_) {
      if (l.data.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  // kilnd's side: one request on port 9000 (half-closed after sending), the whole answer.
  Result<std::string> invoke(const std::string& id, const std::string& body, const std::string& extra = "") {
    bool in_progress = false;
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, connect_to(Endpoint::unix_path(dir_ + "/proxy.sock"), &in_progress));
    fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    std::string req = "POST /event-invoke HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-Kiln-Request-Id: " + id +
                      "\r\nX-Kiln-Timeout-Ms: 3000\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return errno_error("send");
    }
    shutdown(fd.get(), SHUT_WR);
    return kiln::testing::read_until_eof(fd.get(), kDeadlineMs, "answer");
  }

  static std::string body_of(const std::string& answer) { return answer.substr(answer.find("\r\n\r\n") + 4); }

  std::string dir_;
  UniqueFd events_listener_;
  UniqueFd events_;
  protocol::FrameDecoder decoder_;
  std::vector<protocol::LogEvent> logs_;
  pid_t child_ = -1;
};

TEST_F(LambdaAgent, AnswersTwoInvocationsAndAnError) {
  start({});
  ASSERT_TRUE(wait_event(FrameType::kReady).ok());  // the runtime's first `next`

  std::uint64_t before = wall_ms();
  auto first = invoke("req-1", R"({"n":1})");
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->rfind("HTTP/1.1 200 ", 0), 0u) << *first;
  auto j = nlohmann::json::parse(body_of(*first));
  EXPECT_EQ(j["echo"]["n"], 1);
  EXPECT_EQ(j["id"], "req-1");
  EXPECT_EQ(j["arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo");
  // No X-Kiln-Deadline-Ms: the invocation's start plus X-Kiln-Timeout-Ms.
  EXPECT_GE(j["deadline"].get<std::uint64_t>(), before + 3000);
  EXPECT_LE(j["deadline"].get<std::uint64_t>(), wall_ms() + 3000);

  auto second = invoke("req-2", R"({"n":2})", "X-Kiln-Deadline-Ms: 1700000000123\r\n");
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_EQ(second->rfind("HTTP/1.1 200 ", 0), 0u) << *second;
  j = nlohmann::json::parse(body_of(*second));
  EXPECT_EQ(j["echo"]["n"], 2);
  EXPECT_EQ(j["deadline"], 1700000000123ull);

  auto failed = invoke("req-3", R"({"fail":true})");
  ASSERT_TRUE(failed.ok()) << failed.error().message;
  ASSERT_EQ(failed->rfind("HTTP/1.1 500 ", 0), 0u) << *failed;
  EXPECT_NE(failed->find("X-Kiln-Function-Error: Unhandled\r\n"), std::string::npos);
  EXPECT_NE(failed->find("X-Kiln-Function-Error-Type: Runtime.TestError\r\n"), std::string::npos);
  j = nlohmann::json::parse(body_of(*failed));
  EXPECT_EQ(j["errorType"], "TestError");
  EXPECT_EQ(j["errorMessage"], "asked to fail");

  // A response over Lambda's 6 MB: the runtime gets 413, kilnd a function error.
  auto big = invoke("req-4", R"({"big":true})");
  ASSERT_TRUE(big.ok()) << big.error().message;
  ASSERT_EQ(big->rfind("HTTP/1.1 500 ", 0), 0u) << *big;
  EXPECT_NE(big->find("X-Kiln-Function-Error-Type: Function.ResponseSizeTooLarge\r\n"), std::string::npos);
  // A second `next` before the response is refused; the invocation still completes.
  auto twice = invoke("req-5", R"({"twice":true,"n":5})");
  if (!twice.ok()) (void)wait_event(FrameType::kExit);  // collect the log for TearDown
  ASSERT_TRUE(twice.ok()) << twice.error().message;
  ASSERT_EQ(twice->rfind("HTTP/1.1 200 ", 0), 0u) << *twice;
  EXPECT_EQ(nlohmann::json::parse(body_of(*twice))["echo"]["n"], 5);

  // The runtime's stdout is the function's log, with Lambda's reserved environment.
  auto saw = [this](const std::string& needle) {
    while (!logged(needle)) {
      if (!wait_event(FrameType::kLog).ok()) return false;
    }
    return true;
  };
  EXPECT_TRUE(saw("env handler=app.handler fn=echo mem=256 task=/var/task"));
  EXPECT_TRUE(saw("handling req-3"));
  EXPECT_TRUE(saw("big response answered 413 RequestEntityTooLarge"));
  EXPECT_TRUE(saw("second next answered 400"));
  for (const auto& l : logs_) {
    if (l.data == "handling req-2") {
      EXPECT_EQ(l.request_id, "req-2");
    }
  }
}

TEST_F(LambdaAgent, InitErrorFailsTheLaunchVisibly) {
  start({"init-fails"});
  auto nr = wait_event(FrameType::kNotReady);
  ASSERT_TRUE(nr.ok()) << nr.error().message;
  auto n = protocol::decode_not_ready(nr->payload);
  ASSERT_TRUE(n.ok());
  EXPECT_NE(n->message.find("Runtime.ImportModuleError"), std::string::npos) << n->message;
  ASSERT_TRUE(wait_event(FrameType::kExit).ok());
  EXPECT_TRUE(logged("kiln-init: runtime init error"));
  EXPECT_TRUE(logged("init error answered 202"));
}

}  // namespace
}  // namespace kiln::agent

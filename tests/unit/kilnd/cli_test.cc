// The binaries together, without KVM: `kilnd` (real VmmBackend driving fake-kiln-vmm, real
// rootfs build of the examples/hello OCI image) and the `kiln` CLI: deploy, ls, invoke (event,
// web, Lambda), logs, status, rm; SIGTERM stops every VM; a restart keeps the functions; after
// a kill -9 of kilnd the next start reaps the VMs it left behind.
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
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/test_paths.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Proc {
  pid_t pid = -1;
  int out = -1;  // stdout pipe (read end)
};

// capture: stdout to a pipe (Proc::out); with_stderr: stderr to the same pipe.
Proc spawn(const std::vector<std::string>& args, bool capture, bool with_stderr = false) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (capture) {
    if (pipe2(fds, O_CLOEXEC) != 0) return {};
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (with_stderr) posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  }
  Proc p;
  if (posix_spawn(&p.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) p.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  if (capture) {
    close(fds[1]);
    p.out = fds[0];
  }
  return p;
}

// Reads from fd until `done(text)` or EOF or the deadline.
template <typename F>
std::string read_until(int fd, F done, std::chrono::seconds budget = std::chrono::seconds(60)) {
  std::string text;
  auto deadline = Clock::now() + budget;
  while (!done(text) && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (poll(&p, 1, static_cast<int>(std::max<long>(left, 0))) != 1) break;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

struct Output {
  int code = -1;
  std::string out;
};

Output run(const std::vector<std::string>& args, bool with_stderr = false) {
  Proc p = spawn(args, true, with_stderr);
  Output r;
  r.out = read_until(p.out, [](const std::string&) { return false; });
  close(p.out);
  int status = 0;
  waitpid(p.pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

int count_fake_vmms(const std::string& state) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string argv0 = cmd.substr(0, cmd.find('\0'));
    bool is_fake = argv0.size() >= 13 && argv0.compare(argv0.size() - 13, 13, "fake-kiln-vmm") == 0;
    if (is_fake && cmd.find(state) != std::string::npos) ++n;
  }
  return n;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-cli-XXXXXX";
    state_ = mkdtemp(tmpl);
    oci_ = kiln::testing::build_dir() + "/examples/hello/oci";
    if (!fs::exists(oci_ + "/index.json")) GTEST_SKIP() << "no hello OCI layout at " << oci_;
  }
  void TearDown() override {
    stop(SIGKILL);
    fs::remove_all(state_);
  }

  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {kiln::testing::build_dir() + "/src/kilnd", "--listen", "127.0.0.1:0", "--state-dir", state_,
                                      "--vmm", kiln::testing::build_dir() + "/tests/unit/kilnd/fake-kiln-vmm", "--kernel",
                                      kiln::testing::build_dir() + "/src/kiln",  // any readable file: the fake VMM boots
                                      "--jail", "off", "--snapshots", "off"};    // nothing, snapshots nothing
    args.insert(args.end(), extra.begin(), extra.end());
    kilnd_ = spawn(args, true);
    ASSERT_GT(kilnd_.pid, 0);
    std::string line = read_until(kilnd_.out, [](const std::string& t) { return t.find('\n') != std::string::npos; });
    constexpr std::string_view kListening = "kilnd: listening on ";
    ASSERT_NE(line.find(std::string(kListening) + "127.0.0.1:"), std::string::npos) << line;
    std::string rest = line.substr(line.find(kListening) + kListening.size());
    tcp_ = rest.substr(0, rest.find(' '));
  }

  int stop(int sig) {
    if (kilnd_.pid <= 0) return -1;
    kill(kilnd_.pid, sig);
    int status = 0;
    waitpid(kilnd_.pid, &status, 0);
    close(kilnd_.out);
    kilnd_ = Proc{};
    return status;
  }

  Output kiln(std::vector<std::string> args, const std::string& endpoint = "", bool with_stderr = false) {
    args.insert(args.begin(), {kiln::testing::build_dir() + "/src/kiln", "--endpoint", endpoint.empty() ? state_ + "/kilnd.sock" : endpoint});
    return run(args, with_stderr);
  }
  // stdout and stderr together.
  Output kiln_all(std::vector<std::string> args) { return kiln(std::move(args), "", true); }

  std::string state_, oci_, tcp_;
  Proc kilnd_;
};

TEST_F(CliTest, DeployInvokeLogsRestartAndReap) {
  start();
  auto d = kiln({"deploy", "hello", "--image", "oci:" + oci_, "--memory", "256", "--env", "GREETING=hey"});
  ASSERT_EQ(d.code, 0) << d.out;
  EXPECT_NE(d.out.find("hello: version 1, image ready (sha256:"), std::string::npos) << d.out;
  auto ls = kiln({"ls"});
  EXPECT_NE(ls.out.find("hello"), std::string::npos);
  EXPECT_NE(ls.out.find("ready"), std::string::npos);

  auto ev = kiln({"--json", "invoke", "hello", "--data", R"({"name":"kiln"})"});
  ASSERT_EQ(ev.code, 0) << ev.out;
  auto evj = json::parse(ev.out);
  EXPECT_EQ(evj["status"], 200);
  auto body = json::parse(evj["body"].get<std::string>());
  EXPECT_EQ(body["argv0"], "/usr/bin/hello");  // from the image's Entrypoint
  EXPECT_EQ(body["request_id"], evj["request_id"]);
  EXPECT_EQ(evj["cold_start"], true);
  auto web = kiln({"invoke", "hello", "--web", "/path?q=1"});
  EXPECT_NE(web.out.find("GET /path?q=1 HTTP/1.1"), std::string::npos) << web.out;
  auto lam = kiln({"invoke", "hello", "--lambda", "--data", R"({"a":1})"});
  EXPECT_EQ(lam.code, 0);
  EXPECT_NE(lam.out.find(R"(\"a\":1)"), std::string::npos) << lam.out;

  auto logs = kiln({"logs", "hello", "--request-id", evj["request_id"].get<std::string>()});
  EXPECT_NE(logs.out.find("START RequestId: " + evj["request_id"].get<std::string>()), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("stdout fake: POST /event-invoke"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("REPORT RequestId: "), std::string::npos);
  auto st = kiln({"status", "hello"});
  EXPECT_NE(st.out.find("instance hello-"), std::string::npos) << st.out;
  EXPECT_EQ(count_fake_vmms(state_), 1);

  // kill -9 of the VMM mid-invocation: an error well within the timeout, then a fresh instance.
  Proc hanging = spawn({kiln::testing::build_dir() + "/src/kiln", "--endpoint", state_ + "/kilnd.sock", "invoke", "hello", "--data",
                        "hang"},
                       true);
  pid_t vmm = -1;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (vmm < 0 && Clock::now() < deadline) {
    auto s2 = kiln({"--json", "status", "hello"});
    auto js = json::parse(s2.out, nullptr, false);
    if (js.is_object() && !js["instances"].empty() && js["instances"][0]["in_flight"] == 1) {
      std::string id = js["instances"][0]["id"];
      std::ifstream(state_ + "/run/" + id + "/vmm.pid") >> vmm;
    }
  }
  ASSERT_GT(vmm, 0);
  kill(vmm, SIGKILL);
  std::string hung = read_until(hanging.out, [](const std::string&) { return false; });
  int hung_status = 0;
  waitpid(hanging.pid, &hung_status, 0);
  EXPECT_NE(WEXITSTATUS(hung_status), 0);
  auto after = kiln({"--json", "invoke", "hello"});
  ASSERT_EQ(after.code, 0) << after.out;
  EXPECT_EQ(json::parse(after.out)["cold_start"], true);  // a fresh instance
  EXPECT_EQ(count_fake_vmms(state_), 1);

  // SIGTERM: drains, stops the VM, exits 0.
  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(count_fake_vmms(state_), 0);

  // Restart: same function, serves again; then kill -9 kilnd with a VM running.
  start();
  auto again = kiln({"invoke", "hello"});
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(count_fake_vmms(state_), 1);
  stop(SIGKILL);
  EXPECT_EQ(count_fake_vmms(state_), 1);  // orphaned
  start();
  EXPECT_EQ(count_fake_vmms(state_), 0);  // reaped at start
  EXPECT_TRUE(fs::is_empty(state_ + "/run"));
  EXPECT_EQ(kiln({"rm", "hello"}).code, 0);
  auto missing = kiln({"invoke", "hello"});
  EXPECT_NE(missing.code, 0);
  auto bad = kiln({"deploy", "x", "--image", "oci:/tmp", "--memory", "1"});
  EXPECT_NE(bad.code, 0);
}

// A new user's first contact: --help on every command, a name that is not one path segment
// reaches kilnd's validation (not "no such route"), Lambda errors name their type, and logs say
// when they were cut at the limit.
TEST_F(CliTest, FirstContact) {
  start();
  for (const char* command : {"deploy", "invoke", "logs", "ls", "rm", "status"}) {
    auto help = kiln_all({command, "--help"});
    EXPECT_EQ(help.code, 0) << command << ": " << help.out;
    EXPECT_EQ(help.out.rfind(std::string("usage: kiln [global flags] ") + command, 0), 0u) << help.out;
  }
  auto unknown = kiln_all({"deploy", "f", "--frobnicate"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.out.find("kiln: deploy: unknown flag --frobnicate"), std::string::npos) << unknown.out;

  auto bad_name = kiln_all({"deploy", "bad/name", "--image", "oci:" + oci_});
  EXPECT_EQ(bad_name.code, 1);
  EXPECT_NE(bad_name.out.find("kiln: 400 "), std::string::npos) << bad_name.out;
  EXPECT_EQ(bad_name.out.find("no such route"), std::string::npos) << bad_name.out;

  auto lambda = kiln_all({"invoke", "helo", "--lambda"});
  EXPECT_EQ(lambda.code, 1);
  EXPECT_NE(lambda.out.find("kiln: 404 ResourceNotFoundException: "), std::string::npos) << lambda.out;
  EXPECT_EQ(lambda.out.find("404 :"), std::string::npos) << lambda.out;

  // A deploy logs "preparing image ..." at once: one line, so --limit 1 is reached.
  ASSERT_EQ(kiln({"deploy", "quiet", "--image", "oci:/nonexistent", "--no-wait"}).code, 0);
  auto cut = kiln_all({"logs", "quiet", "--limit", "1"});
  EXPECT_EQ(cut.code, 0);
  EXPECT_NE(cut.out.find("kiln: showing the newest 1 lines"), std::string::npos) << cut.out;
  auto whole = kiln_all({"logs", "quiet", "--limit", "100"});
  EXPECT_EQ(whole.out.find("showing the newest"), std::string::npos) << whole.out;
}

// kilnd --tenants FILE: the CLI sends --token / $KILN_TOKEN as a bearer token; without one
// (over TCP) kilnd answers 401; another tenant's function is not there; the Unix socket is
// the admin, who picks a tenant with --tenant.
TEST_F(CliTest, TenantTokens) {
  std::string file = state_ + "/tenants.json";
  std::ofstream(file) << R"({"tenants": [{"name": "acme", "token": "acme-token-0123456789"},
                                         {"name": "beta", "token": "beta-token-0123456789"}]})";
  start({"--tenants", file});
  auto anonymous = kiln({"ls"}, tcp_);
  EXPECT_EQ(anonymous.code, 1);
  auto deployed = kiln({"--token", "acme-token-0123456789", "deploy", "hello", "--image", "oci:" + oci_, "--no-wait"}, tcp_);
  ASSERT_EQ(deployed.code, 0) << deployed.out;
  auto mine = kiln({"--token", "acme-token-0123456789", "--json", "status", "hello"}, tcp_);
  ASSERT_EQ(mine.code, 0) << mine.out;
  EXPECT_EQ(json::parse(mine.out)["tenant"], "acme");
  ::setenv("KILN_TOKEN", "beta-token-0123456789", 1);
  auto theirs = kiln({"status", "hello"}, tcp_);
  auto beta_list = kiln({"--json", "ls"}, tcp_);
  ::unsetenv("KILN_TOKEN");
  EXPECT_EQ(theirs.code, 1);
  ASSERT_EQ(beta_list.code, 0);
  EXPECT_TRUE(json::parse(beta_list.out)["functions"].empty());
  auto admin = kiln({"--json", "ls"});
  ASSERT_EQ(admin.code, 0) << admin.out;
  EXPECT_EQ(json::parse(admin.out)["functions"].at(0)["tenant"], "acme");
  EXPECT_EQ(kiln({"--tenant", "acme", "status", "hello"}).code, 0);
  EXPECT_EQ(kiln({"status", "hello"}).code, 1);  // not in the admin namespace

  // SIGHUP reads the file again: acme's token rotated, the function still acme's.
  std::ofstream(file) << R"({"tenants": [{"name": "acme", "token": "acme-rotated-0123456789"}]})";
  kill(kilnd_.pid, SIGHUP);
  bool rotated = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(30); !rotated && Clock::now() < deadline;) {
    rotated = kiln({"--token", "acme-rotated-0123456789", "status", "hello"}, tcp_).code == 0;
  }
  EXPECT_TRUE(rotated);
  EXPECT_EQ(kiln({"--token", "acme-token-0123456789", "status", "hello"}, tcp_).code, 1);
  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // A bad tenants file stops kilnd at start, naming the field.
  std::ofstream(file) << R"({"tenants": [{"name": "acme", "token": "short"}]})";
  auto refused = run({kiln::testing::build_dir() + "/src/kilnd", "--state-dir", state_, "--tenants", file, "--listen", "none"});
  EXPECT_EQ(refused.code, 2);
}

}  // namespace

// Host-process test of kiln-init without a VM: the real Agent runs as PID 1 of fresh mount,
// pid, net and uts namespaces, switches into an overlay over the extracted hello image and
// talks to this test over Unix sockets in place of vsock (control, proxy, events).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/clock.h"
#include "common/protocol/frame.h"
#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"
#include "guest-agent/agent/agent.h"
#include "guest-agent/agent/boot.h"
#include "guest-agent/agent/endpoint.h"
#include "guest-agent/net/guest_network.h"
#include "tests/support/process.h"
#include "tests/support/test_paths.h"
#include "tests/unit/guest_agent/net/tap_fixture.h"

namespace kiln::agent {
namespace {

namespace fs = std::filesystem;
using protocol::Frame;
using protocol::FrameType;
using protocol::LaunchSpec;

constexpr int kDeadlineMs = 20000;  // generous upper bound for every wait; never a sleep

using kiln::testing::monotonic_ms;
using kiln::testing::slurp;


// The hello image's rootfs and its config, extracted once from the OCI layout the build made.
struct Image {
  fs::path dir;
  fs::path tree;
  LaunchSpec spec;  // from the image config (Entrypoint + Cmd, Env, WorkingDir, User)
  std::string error;
};

Image& image() {
  static Image img = [] {
    Image i;
    fs::path oci = kiln::testing::build_path("examples/hello/oci");
    if (!fs::exists(oci / "index.json")) {
      i.error = "no OCI layout at " + oci.string() + " (build the hello-image target)";
      return i;
    }
    auto blob = [&oci](const std::string& digest) {
      return oci / "blobs/sha256" / digest.substr(std::string("sha256:").size());
    };
    auto index = nlohmann::json::parse(slurp(oci / "index.json"));
    auto manifest = nlohmann::json::parse(slurp(blob(index["manifests"][0]["digest"])));
    auto config = nlohmann::json::parse(slurp(blob(manifest["config"]["digest"])));
    char tmpl[] = "/tmp/kiln-agent-host-XXXXXX";
    i.dir = mkdtemp(tmpl);
    i.tree = i.dir / "tree";
    fs::create_directories(i.tree);
    for (const auto& layer : manifest["layers"]) {
      if (kiln::testing::run({"tar", "-xzf", blob(layer["digest"]).string(), "-C", i.tree.string()}) != 0) {
        i.error = "extracting a layer failed";
        return i;
      }
    }
    const auto& c = config["config"];
    for (const auto& a : c.value("Entrypoint", nlohmann::json::array())) i.spec.argv.push_back(a);
    for (const auto& a : c.value("Cmd", nlohmann::json::array())) i.spec.argv.push_back(a);
    for (const auto& e : c.value("Env", nlohmann::json::array())) i.spec.env.push_back(e);
    i.spec.working_dir = c.value("WorkingDir", "/");
    i.spec.user = c.value("User", "");
    i.spec.hostname = "hello-test";
    i.spec.instance_id = "inst-1";
    i.spec.overlay_mib = 16;
    return i;
  }();
  return img;
}

// The host side of the three sockets, plus the namespaced agent process.
class AgentHost {
 public:
  AgentHost() {
    // Not under /tmp: the agent mounts a fresh tmpfs there inside its new root.
    char tmpl[] = "/var/tmp/kiln-agent-sock-XXXXXX";
    sock_dir_ = mkdtemp(tmpl);
    auto l = listen_on(Endpoint::unix_path(sock_dir_ + "/events.sock"));
    if (l.ok()) events_listener_ = std::move(l.value());
  }
  ~AgentHost() {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(sock_dir_, ec);
    fs::remove_all(work_dir_, ec);
  }

  // Starts the agent as PID 1 in new namespaces. `preset` plays the config drive.
  void start(std::optional<LaunchSpec> preset = std::nullopt, std::uint64_t drain_ms = 1000) {
    char tmpl[] = "/tmp/kiln-agent-work-XXXXXX";
    work_dir_ = mkdtemp(tmpl);
    pid_t parent = getpid();
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(90);
      if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS) != 0) _exit(91);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(92);
      pid_t init = fork();
      if (init < 0) _exit(93);
      if (init == 0) _exit(run_agent(preset, drain_ms));
      int status = 0;
      while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
      }
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status));
    }
  }

  // Agent exit status (the command's exit code, 128+signal, or a setup failure code).
  int wait_agent() {
    // A pidfd becomes readable when the process exits: wait on it with the deadline.
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, child_, 0)));
    if (!pidfd) return -1001;
    pollfd p{pidfd.get(), POLLIN, 0};
    if (poll(&p, 1, kDeadlineMs) != 1) return -1000;
    int status = 0;
    if (waitpid(child_, &status, 0) != child_) return -1002;
    child_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  // Accepts the agent's (next) event connection and returns its hello.
  Result<protocol::HelloEvent> accept_events() {
    pollfd p{events_listener_.get(), POLLIN, 0};
    if (poll(&p, 1, kDeadlineMs) != 1) return make_error("no event connection from the agent");
    events_.reset(accept4(events_listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!events_) return errno_error("accept");
    events_decoder_ = protocol::FrameDecoder();
    KILN_ASSIGN_OR_RETURN(Frame f, read_frame(events_.get(), events_decoder_));
    if (f.type != FrameType::kHello) return make_error("first event is not hello");
    return protocol::decode_hello(f.payload);
  }

  void drop_events() { events_.reset(); }

  // Next event frame, logs collected on the way into logs_.
  Result<Frame> next_event() { return read_frame(events_.get(), events_decoder_); }

  // Reads events until one of `type` arrives (collecting log lines on the way).
  Result<Frame> wait_event(FrameType type) {
    while (true) {
      KILN_ASSIGN_OR_RETURN(Frame f, next_event());
      seen_.push_back(f.type);
      if (f.type == FrameType::kLog) {
        KILN_ASSIGN_OR_RETURN(protocol::LogEvent l, protocol::decode_log(f.payload));
        logs_.push_back(l);
      }
      if (f.type == type) return f;
    }
  }

  // Waits for a log line containing `needle`.
  Result<protocol::LogEvent> wait_log(const std::string& needle) {
    for (const auto& l : logs_) {
      if (l.data.find(needle) != std::string::npos) return l;
    }
    while (true) {
      KILN_TRY(wait_event(FrameType::kLog));
      if (logs_.back().data.find(needle) != std::string::npos) return logs_.back();
    }
  }

  // One control request, one reply frame.
  Result<Frame> control(const std::string& frame_bytes) {
    bool in_progress = false;
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, connect_to(Endpoint::unix_path(sock_dir_ + "/control.sock"), &in_progress));
    set_blocking(fd.get());
    if (send(fd.get(), frame_bytes.data(), frame_bytes.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(frame_bytes.size())) {
      return errno_error("send control");
    }
    protocol::FrameDecoder dec;
    return read_frame(fd.get(), dec);
  }

  Result<protocol::Ack> control_ack(const Result<std::string>& frame_bytes) {
    if (!frame_bytes.ok()) return frame_bytes.error();
    KILN_ASSIGN_OR_RETURN(Frame f, control(*frame_bytes));
    if (f.type != FrameType::kAck) return make_error("reply is not an ack");
    return protocol::decode_ack(f.payload);
  }

  // Sends raw bytes on the proxy port, half-closes, reads the whole answer.
  Result<std::string> proxy_request(const std::string& request) {
    bool in_progress = false;
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, connect_to(Endpoint::unix_path(sock_dir_ + "/proxy.sock"), &in_progress));
    set_blocking(fd.get());
    if (send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      return errno_error("send proxy");
    }
    shutdown(fd.get(), SHUT_WR);  // half-close: the answer must still come back
    return kiln::testing::read_until_eof(fd.get(), kDeadlineMs, "proxy answer");
  }

  const std::string& sock_dir() const { return sock_dir_; }
  // The forked child: it shares the agent's network namespace (the agent is its only child).
  pid_t child() const { return child_; }
  const std::vector<protocol::LogEvent>& logs() const { return logs_; }
  const std::vector<FrameType>& seen() const { return seen_; }

 private:
  static void set_blocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); }

  static Result<Frame> read_frame(int fd, protocol::FrameDecoder& dec) {
    std::uint64_t deadline = monotonic_ms() + kDeadlineMs;
    Frame f;
    while (!dec.next(&f)) {
      if (dec.failed()) return make_error("corrupt frame stream: " + dec.failure());
      pollfd p{fd, POLLIN, 0};
      int left = static_cast<int>(deadline > monotonic_ms() ? deadline - monotonic_ms() : 0);
      if (poll(&p, 1, left) != 1) return make_error("timed out waiting for a frame");
      char buf[65536];
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return make_error("connection closed while waiting for a frame");
      KILN_TRY(dec.feed(std::string_view(buf, static_cast<std::size_t>(n))));
    }
    return f;
  }

  // Runs in the namespaced child as PID 1.
  int run_agent(const std::optional<LaunchSpec>& preset, std::uint64_t drain_ms) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getpid() != 1) return 94;
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) return 95;
    if (!bring_up_loopback().ok()) return 96;
    AgentOptions opt;
    opt.control = Endpoint::unix_path(sock_dir_ + "/control.sock");
    opt.proxy = Endpoint::unix_path(sock_dir_ + "/proxy.sock");
    opt.events = Endpoint::unix_path(sock_dir_ + "/events.sock");
    opt.spec = preset;
    opt.pid1 = true;
    opt.drain_ms = drain_ms;
    opt.boot_id = "test-boot";
    std::string tree = image().tree.string();
    std::string work = work_dir_;
    std::string socks = sock_dir_;
    // As guest-agent/main.cc wires it: the network after the switch into the overlay root, the
    // refresh on identity requests.
    auto network = std::make_shared<net::GuestNetwork>();
    opt.prepare_root = [tree, work, socks, network](const LaunchSpec& spec) -> Status {
      KILN_TRY(set_hostname(spec.hostname));
      RootOptions root;
      root.device.clear();
      root.lower_dir = tree;
      root.work_dir = work;
      root.overlay_mib = spec.overlay_mib;
      root.move_mounts = {"/proc"};
      root.bind_dirs = {"/dev", socks};
      KILN_TRY(mount_overlay_root(root));
      KILN_TRY(write_etc_files(spec.hostname));
      KILN_TRY(network->apply(spec.net, "/etc", default_hosts(spec.hostname)));
      return ok_status();
    };
    opt.after_identity = [network]() { return network->refresh(); };
    Agent agent(std::move(opt));
    Status st = agent.run();
    if (!st.ok()) {
      std::fprintf(stderr, "agent: %s\n", st.error().message.c_str());
      return 97;
    }
    const auto& e = agent.exit_info();
    return e.signaled ? 128 + e.code : e.code;
  }

  std::string sock_dir_;
  std::string work_dir_;
  UniqueFd events_listener_;
  UniqueFd events_;
  protocol::FrameDecoder events_decoder_;
  pid_t child_ = -1;
  std::vector<protocol::LogEvent> logs_;
  std::vector<FrameType> seen_;
};

class HostProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mount/pid/net namespaces, overlayfs)";
    ASSERT_TRUE(image().error.empty()) << image().error;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!image().dir.empty()) fs::remove_all(image().dir, ec);
  }
};

// The main path: hello from the agent, spec over the control port, ready, an invocation
// through the proxy, its timestamped log line, a reconnect of the event stream, status,
// hostile control frames, then a graceful shutdown with the exit event.
TEST_F(HostProcess, LaunchReadyInvokeLogsReconnectShutdown) {
  AgentHost host;
  host.start();
  auto hello = host.accept_events();
  ASSERT_TRUE(hello.ok()) << hello.error().message;
  EXPECT_EQ(hello->state, "waiting");
  EXPECT_EQ(hello->boot_id, "test-boot");
  EXPECT_EQ(hello->seq, 1u);

  // Hostile control input first: an unknown type is refused, a corrupt stream hangs up.
  std::string unknown;
  protocol::append_frame_header(unknown, static_cast<FrameType>(99), 0);
  auto bad = host.control_ack(unknown);
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  EXPECT_FALSE(bad->ok);
  auto corrupt = host.control_ack(std::string("GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(corrupt.ok()) << corrupt.error().message;
  EXPECT_FALSE(corrupt->ok);
  EXPECT_NE(corrupt->message.find("magic"), std::string::npos);
  std::string oversized;
  protocol::append_frame_header(oversized, FrameType::kLaunchSpec, protocol::kMaxPayload + 1);
  auto over = host.control_ack(oversized);
  ASSERT_TRUE(over.ok());
  EXPECT_FALSE(over->ok);
  auto invalid = host.control_ack(protocol::encode_frame(FrameType::kLaunchSpec, ""));
  ASSERT_TRUE(invalid.ok());
  EXPECT_FALSE(invalid->ok);

  LaunchSpec spec = image().spec;
  ASSERT_EQ(spec.user, "app");
  std::uint64_t before_ns = kiln::realtime_ns();
  auto ack = host.control_ack(protocol::encode_config_drive(spec));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_TRUE(ack->ok) << ack->message;
  auto again = host.control_ack(protocol::encode_config_drive(spec));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->ok);  // one launch per boot

  auto ready = host.wait_event(FrameType::kReady);
  ASSERT_TRUE(ready.ok()) << ready.error().message;
  auto r = protocol::decode_ready(ready->payload);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 9000);
  auto listening = host.wait_log("hello: listening on 0.0.0.0:9000");
  ASSERT_TRUE(listening.ok()) << listening.error().message;
  EXPECT_EQ(listening->stream, protocol::LogStream::kStdout);

  std::string body = R"({"name":"kiln","extra":[1,2,3]})";
  std::string req = "POST /event-invoke HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "X-Scf-Request-Id: req-123\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body;
  auto answer = host.proxy_request(req);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_NE(answer->find("HTTP/1.1 200 OK"), std::string::npos) << *answer;
  auto json_at = answer->find("\r\n\r\n");
  ASSERT_NE(json_at, std::string::npos);
  auto json = nlohmann::json::parse(answer->substr(json_at + 4), nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << *answer;
  EXPECT_EQ(json["message"], "hello, kiln");
  EXPECT_EQ(json["event_bytes"], body.size());
  EXPECT_EQ(json["request_id"], "req-123");

  auto line = host.wait_log("hello: POST /event-invoke 200 request_id=req-123");
  ASSERT_TRUE(line.ok()) << line.error().message;
  EXPECT_EQ(line->stream, protocol::LogStream::kStdout);
  EXPECT_FALSE(line->partial);
  EXPECT_GE(line->ts_ns, before_ns);
  EXPECT_LE(line->ts_ns, kiln::realtime_ns());

  // GET / through the proxy too.
  auto page = host.proxy_request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(page.ok());
  EXPECT_NE(page->find("hello from kiln"), std::string::npos);

  // The event stream survives a broken connection (what a vsock transport reset does).
  std::uint64_t last_seq = line->seq;
  host.drop_events();
  auto hello2 = host.accept_events();
  ASSERT_TRUE(hello2.ok()) << hello2.error().message;
  EXPECT_EQ(hello2->state, "ready");
  EXPECT_GT(hello2->seq, last_seq);
  auto again_page = host.proxy_request("GET /missing HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(again_page.ok());
  EXPECT_NE(again_page->find("404"), std::string::npos);
  auto line2 = host.wait_log("hello: GET /missing 404");
  ASSERT_TRUE(line2.ok()) << line2.error().message;
  EXPECT_GE(line2->seq, hello2->seq);

  // Status and identity (the after-restore path), then the identity forces a reconnect.
  auto status = host.control(*protocol::encode_status_request());
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->type, FrameType::kStatus);
  auto st = protocol::decode_status(status->payload);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, "ready");
  EXPECT_TRUE(st->ready);
  EXPECT_GT(st->pid, 1u);
  EXPECT_EQ(st->instance_id, "inst-1");
  auto id_ack = host.control_ack(protocol::encode(protocol::IdentityRequest{"restored", "inst-2", 0, std::string(32, '\x11')}));
  ASSERT_TRUE(id_ack.ok());
  EXPECT_TRUE(id_ack->ok) << id_ack->message;
  auto hello3 = host.accept_events();
  ASSERT_TRUE(hello3.ok()) << hello3.error().message;
  EXPECT_EQ(hello3->instance_id, "inst-2");

  auto down = host.control_ack(protocol::encode(protocol::ShutdownRequest{true, 5000}));
  ASSERT_TRUE(down.ok());
  EXPECT_TRUE(down->ok);
  auto exit_frame = host.wait_event(FrameType::kExit);
  ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
  auto ex = protocol::decode_exit(exit_frame->payload);
  ASSERT_TRUE(ex.ok());
  EXPECT_FALSE(ex->signaled);  // hello handles SIGTERM and exits 0
  EXPECT_EQ(ex->code, 0);
  EXPECT_TRUE(host.wait_log("hello: shutting down").ok());
  EXPECT_EQ(host.wait_agent(), 0);
}

// Calls back to back on one kept connection, as kilnd makes them: hello writes its line for a
// call just before answering it, and the next call follows at once. kiln-init tags each line
// with the X-Kiln-Request-Id of the call it belongs to (the pipes are read before the next head
// reaches the app), never with the next one's. Output before any call carries no tag.
TEST_F(HostProcess, BackToBackCallsTagEachLineWithItsRequest) {
  AgentHost host;
  host.start(image().spec);
  ASSERT_TRUE(host.accept_events().ok());
  ASSERT_TRUE(host.wait_event(FrameType::kReady).ok());
  auto listening = host.wait_log("hello: listening on 0.0.0.0:9000");
  ASSERT_TRUE(listening.ok()) << listening.error().message;
  EXPECT_EQ(listening->request_id, "");

  bool in_progress = false;
  auto conn = connect_to(Endpoint::unix_path(host.sock_dir() + "/proxy.sock"), &in_progress);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  const int fd = conn->get();
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  constexpr int kCalls = 40;
  std::string pending;  // bytes read past an answer
  for (int i = 0; i < kCalls; ++i) {
    const std::string id = "b2b-" + std::to_string(i);
    const std::string body = R"({"name":"n)" + std::to_string(i) + R"("})";
    const std::string req = "POST /event-invoke HTTP/1.1\r\nHost: localhost\r\nX-Kiln-Request-Id: " + id +
                            "\r\nX-Scf-Request-Id: " + id + "\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body;
    ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    // One whole answer (head + Content-Length bytes), then straight on to the next call.
    std::size_t head_end = std::string::npos, want = 0;
    char buf[4096];
    while (head_end == std::string::npos || pending.size() < want) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      ASSERT_GT(n, 0) << "answer " << i << " cut short: " << pending;
      pending.append(buf, static_cast<std::size_t>(n));
      if (head_end == std::string::npos && (head_end = pending.find("\r\n\r\n")) != std::string::npos) {
        auto cl = pending.find("Content-Length: ");
        ASSERT_NE(cl, std::string::npos) << pending;
        want = head_end + 4 + std::stoul(pending.substr(cl + 16));
      }
    }
    ASSERT_NE(pending.find("\"request_id\":\"" + id + "\""), std::string::npos) << pending;
    pending.erase(0, want);
  }
  for (int i = 0; i < kCalls; ++i) {
    const std::string id = "b2b-" + std::to_string(i);
    auto line = host.wait_log("request_id=" + id + " ");
    ASSERT_TRUE(line.ok()) << line.error().message;
    EXPECT_EQ(line->request_id, id) << line->data;
  }
}

// Runs the command as the image's user with its supplementary groups, in the working dir,
// with the spec's env; output of a launch failure and of a crash both end in an exit event.
TEST_F(HostProcess, CrashReportsExitWithLogs) {
  AgentHost host;
  LaunchSpec spec = image().spec;
  spec.argv = {"sh", "-c", "id -u; id -G; pwd; echo \"g=$GREETING home=$HOME\"; "
                           "echo boom >&2; exit 3"};
  host.start(spec);  // preset: the config-drive path
  auto hello = host.accept_events();
  ASSERT_TRUE(hello.ok()) << hello.error().message;
  auto exit_frame = host.wait_event(FrameType::kExit);
  ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
  auto ex = protocol::decode_exit(exit_frame->payload);
  ASSERT_TRUE(ex.ok());
  EXPECT_FALSE(ex->signaled);
  EXPECT_EQ(ex->code, 3);
  auto has = [&host](const std::string& text, protocol::LogStream s) {
    for (const auto& l : host.logs()) {
      if (l.data == text && l.stream == s) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("1000", protocol::LogStream::kStdout));
  EXPECT_TRUE(has("1000 2000", protocol::LogStream::kStdout));
  EXPECT_TRUE(has("/srv", protocol::LogStream::kStdout));
  EXPECT_TRUE(has("g=hello home=/home/app", protocol::LogStream::kStdout));
  EXPECT_TRUE(has("boom", protocol::LogStream::kStderr));
  for (auto t : host.seen()) EXPECT_NE(t, FrameType::kReady);
  EXPECT_EQ(host.wait_agent(), 3);
}

// A launch that fails before the command runs: an exit event with `code`, a log line saying why.
void expect_launch_failure(const LaunchSpec& spec, int code, const std::string& why) {
  AgentHost host;
  host.start(spec);
  ASSERT_TRUE(host.accept_events().ok());
  auto exit_frame = host.wait_event(FrameType::kExit);
  ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
  auto ex = protocol::decode_exit(exit_frame->payload);
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(ex->code, code);
  EXPECT_TRUE(host.wait_log(why).ok()) << "no log line with: " << why;
  EXPECT_EQ(host.wait_agent(), code);
}

TEST_F(HostProcess, MissingCommandIsAnExitEvent) {
  LaunchSpec spec = image().spec;
  spec.argv = {"no-such-command"};
  expect_launch_failure(spec, 127, "not found");
}

// A server that never listens: a clear not-ready event after the timeout, then shutdown
// escalates from SIGTERM to SIGKILL for a process that ignores SIGTERM.
TEST_F(HostProcess, NeverListensIsNotReadyThenKilled) {
  AgentHost host;
  LaunchSpec spec = image().spec;
  spec.user = "";
  spec.argv = {"sh", "-c", "trap '' TERM; echo waiting; while :; do sleep 1; done"};
  spec.ready_timeout_ms = 300;
  spec.stop_grace_ms = 200;
  host.start(spec, /*drain_ms=*/200);
  ASSERT_TRUE(host.accept_events().ok());
  auto nr = host.wait_event(FrameType::kNotReady);
  ASSERT_TRUE(nr.ok()) << nr.error().message;
  auto n = protocol::decode_not_ready(nr->payload);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->message.rfind("not ready after 0.3 s", 0), 0u) << n->message;
  EXPECT_GE(n->waited_ms, 300u);
  EXPECT_TRUE(host.wait_log("waiting").ok());
  auto status = host.control(*protocol::encode_status_request());
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(protocol::decode_status(status->payload)->state, "not-ready");

  auto down = host.control_ack(protocol::encode(protocol::ShutdownRequest{}));
  ASSERT_TRUE(down.ok());
  EXPECT_TRUE(down->ok);
  auto exit_frame = host.wait_event(FrameType::kExit);
  ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
  auto ex = protocol::decode_exit(exit_frame->payload);
  ASSERT_TRUE(ex.ok());
  EXPECT_TRUE(ex->signaled);
  EXPECT_EQ(ex->code, SIGKILL);
  EXPECT_EQ(host.wait_agent(), 128 + SIGKILL);
}

// A server that starts listening only after the not-ready event still produces a ready one.
TEST_F(HostProcess, LateListenerReadyAfterNotReady) {
  AgentHost host;
  std::string fifo = host.sock_dir() + "/go";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  LaunchSpec spec = image().spec;
  spec.user = "";
  spec.argv = {"sh", "-c", "read x < " + fifo + "; exec /usr/bin/hello"};
  spec.ready_timeout_ms = 100;
  host.start(spec);
  ASSERT_TRUE(host.accept_events().ok());
  auto nr = host.wait_event(FrameType::kNotReady);
  ASSERT_TRUE(nr.ok()) << nr.error().message;
  {
    UniqueFd w(open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(w.valid());
    ASSERT_EQ(write(w.get(), "go\n", 3), 3);
  }
  auto ready = host.wait_event(FrameType::kReady);
  ASSERT_TRUE(ready.ok()) << ready.error().message;
  auto status = host.control(*protocol::encode_status_request());
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(protocol::decode_status(status->payload)->state, "ready");
  auto down = host.control_ack(protocol::encode(protocol::ShutdownRequest{}));
  ASSERT_TRUE(down.ok());
  ASSERT_TRUE(host.wait_event(FrameType::kExit).ok());
  EXPECT_EQ(host.wait_agent(), 0);
}

// SIGTERM/SIGINT to PID 1 (from the host side, as the VMM's Ctrl-Alt-Del) are forwarded to the
// command's process group (graceful stop). The function's own `kill 1` reaches only its
// namespace init (agent/boundary.h), which drops it.
TEST_F(HostProcess, SignalsToPid1AreForwarded) {
  for (int signo : {SIGTERM, SIGINT}) {
    const char* sig = signo == SIGTERM ? "TERM" : "INT";
    AgentHost host;
    LaunchSpec spec = image().spec;
    spec.user = "";  // root inside the namespaces
    spec.argv = {"sh", "-c", std::string("trap 'echo got-") + sig + "; exit 0' " + sig + "; kill -" + sig +
                                 " 1; echo fn-up; while :; do sleep 1 & wait $!; done"};
    host.start(spec);
    ASSERT_TRUE(host.accept_events().ok());
    ASSERT_TRUE(host.wait_log("fn-up").ok()) << sig;
    const std::string agent_pid =
        slurp("/proc/" + std::to_string(host.child()) + "/task/" + std::to_string(host.child()) + "/children");
    ASSERT_EQ(kill(std::stoi(agent_pid), signo), 0) << sig;
    auto exit_frame = host.wait_event(FrameType::kExit);
    ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
    auto ex = protocol::decode_exit(exit_frame->payload);
    ASSERT_TRUE(ex.ok());
    EXPECT_FALSE(ex->signaled) << sig;
    EXPECT_EQ(ex->code, 0) << sig;
    EXPECT_TRUE(host.wait_log(std::string("got-") + sig).ok()) << sig;
    EXPECT_EQ(host.wait_agent(), 0);
  }
}

// The shipped static binary in --no-boot mode: spec from a file (the config-drive format),
// events over a Unix socket, its exit code is the command's.
TEST(StaticBinary, NoBootModeRunsSpecFromFile) {
  AgentHost host;  // only for its socket dir and events listener; no namespaces here
  std::string spec_file = host.sock_dir() + "/spec.img";
  std::string events = "unix:" + host.sock_dir() + "/events.sock";
  std::vector<std::string> write = {kiln::testing::build_path("guest-agent/kiln-init"), "--write-spec", spec_file, "--port", "1",
                                    "--ready-timeout-ms", "0", "--", "/bin/sh", "-c",
                                    "echo out-line; echo err-line >&2; exit 5"};
  ASSERT_EQ(kiln::testing::run(write), 0);
  std::vector<std::string> argv = {kiln::testing::build_path("guest-agent/kiln-init"), "--no-boot",
                                   "--control", "unix:" + host.sock_dir() + "/control.sock",
                                   "--proxy", "unix:" + host.sock_dir() + "/proxy.sock",
                                   "--events", events, "--spec-file", spec_file};
  std::vector<char*> a;
  for (auto& x : argv) a.push_back(x.data());
  a.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, a[0], nullptr, nullptr, a.data(), environ), 0);
  auto hello = host.accept_events();
  ASSERT_TRUE(hello.ok()) << hello.error().message;
  auto exit_frame = host.wait_event(FrameType::kExit);
  ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
  EXPECT_EQ(protocol::decode_exit(exit_frame->payload)->code, 5);
  EXPECT_TRUE(host.wait_log("out-line").ok());
  EXPECT_TRUE(host.wait_log("err-line").ok());
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_TRUE(pidfd.valid());
  pollfd p{pidfd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, kDeadlineMs), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 5);
}

// Long lines are split at the limit; orphaned grandchildren are reaped by PID 1.
TEST_F(HostProcess, LongLinesSplitAndOrphansReaped) {
  AgentHost host;
  LaunchSpec spec = image().spec;
  spec.argv = {"sh", "-c",
               "(sleep 0 &) ; head -c 40000 /dev/zero | tr '\\0' a; echo; echo end"};
  host.start(spec);
  ASSERT_TRUE(host.accept_events().ok());
  auto exit_frame = host.wait_event(FrameType::kExit);
  ASSERT_TRUE(exit_frame.ok()) << exit_frame.error().message;
  std::string joined;
  std::vector<std::size_t> sizes;
  for (const auto& l : host.logs()) {
    if (l.data == "end") break;
    sizes.push_back(l.data.size());
    joined += l.data;
    if (!l.partial) break;
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{16384, 16384, 40000 - 2 * 16384}));
  EXPECT_EQ(joined, std::string(40000, 'a'));
  EXPECT_EQ(host.wait_agent(), 0);
}

// The network from the launch spec, a TAP in the agent's namespace standing in for the
// guest's virtio-net: configured before the command runs (link, route, files in the overlay
// root); an identity request (a restore) flushes the neighbours and announces the address.
TEST_F(HostProcess, NetworkFromTheSpecAndRefreshOnIdentity) {
  AgentHost host;
  host.start();
  ASSERT_TRUE(host.accept_events().ok());
  const protocol::MacAddress mac = {0x02, 0xfc, 0x00, 0x00, 0x00, 0x07};
  UniqueFd tap;
  net::testing::in_netns_of(host.child(), [&tap, &mac] { tap = net::testing::make_tap("eth0", mac); });
  ASSERT_TRUE(tap);

  LaunchSpec spec = image().spec;
  spec.net.mac = protocol::format_mac(mac);
  spec.net.address = "10.0.0.2/30";
  spec.net.gateway = "10.0.0.1";
  spec.net.dns = {"10.0.0.1"};
  spec.net.hosts = {"10.0.0.9 db"};
  auto ack = host.control_ack(protocol::encode_config_drive(spec));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  ASSERT_TRUE(ack->ok) << ack->message;
  auto ready = host.wait_event(FrameType::kReady);
  ASSERT_TRUE(ready.ok()) << ready.error().message;

  const std::string proc = "/proc/" + std::to_string(host.child());
  std::string route = slurp(proc + "/net/route");
  EXPECT_NE(route.find("eth0\t00000000\t0100000A\t0003"), std::string::npos) << route;
  // The files, seen from the agent (PID 1 of the namespaces, the child's only child) in its root.
  std::string agent_pid = slurp(proc + "/task/" + std::to_string(host.child()) + "/children");
  agent_pid = agent_pid.substr(0, agent_pid.find(' '));
  ASSERT_FALSE(agent_pid.empty());
  EXPECT_NE(slurp("/proc/" + agent_pid + "/root/etc/resolv.conf").find("nameserver 10.0.0.1\n"), std::string::npos);
  EXPECT_NE(slurp("/proc/" + agent_pid + "/root/etc/hosts").find("10.0.0.9\tdb\n"), std::string::npos);

  net::testing::in_netns_of(host.child(), [] { net::testing::add_arp("eth0", "10.0.0.1", false); });
  ASSERT_NE(slurp(proc + "/net/arp").find("10.0.0.1 "), std::string::npos);
  auto id_ack = host.control_ack(protocol::encode(protocol::IdentityRequest{"restored", "inst-2", 0, ""}));
  ASSERT_TRUE(id_ack.ok()) << id_ack.error().message;
  EXPECT_TRUE(id_ack->ok) << id_ack->message;
  // The refresh's note travels in the ack.
  EXPECT_EQ(id_ack->message.rfind("identity applied in ", 0), 0u) << id_ack->message;
  EXPECT_NE(id_ack->message.find(" ms); network: eth0: "), std::string::npos) << id_ack->message;
  EXPECT_NE(id_ack->message.find("gratuitous ARP for 10.0.0.2"), std::string::npos) << id_ack->message;
  EXPECT_EQ(slurp(proc + "/net/arp").find("10.0.0.1 "), std::string::npos) << "the snapshot's neighbour survived";
  EXPECT_EQ(net::testing::wait_for_announcement(tap.get(), mac, *protocol::parse_ip("10.0.0.2"), kDeadlineMs), "");
  EXPECT_NE(slurp(proc + "/net/route").find("eth0\t00000000\t0100000A"), std::string::npos) << "the route went";

  ASSERT_TRUE(host.accept_events().ok());
  auto down = host.control_ack(protocol::encode(protocol::ShutdownRequest{true, 5000}));
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(host.wait_agent(), 0);
}

// A spec naming a NIC the guest does not have: the launch fails with a clear message.
TEST_F(HostProcess, MissingNicFailsTheLaunch) {
  LaunchSpec spec = image().spec;
  spec.net.mac = "02:fc:00:00:00:99";
  expect_launch_failure(spec, 125, "network: no network interface with MAC 02:fc:00:00:00:99");
}

}  // namespace
}  // namespace kiln::agent

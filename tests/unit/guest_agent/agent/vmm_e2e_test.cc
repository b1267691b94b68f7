// e2e (label e2e; a real guest kernel under a KVM that can run Linux, i.e. the nested test
// host here): kiln-rootfs turns the hello image into ext4, kiln-vmm boots it with the kiln-init
// initramfs, and this test is the host: hybrid vsock (`CONNECT <port>`) for the control port
// and invocations, `<uds_path>_10001` for the event stream.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/clock.h"
#include "common/protocol/frame.h"
#include "common/protocol/hybrid_vsock.h"
#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"
#include "guest-agent/agent/endpoint.h"
#include "tests/support/process.h"
#include "tests/support/test_paths.h"

namespace kiln::agent {
namespace {

namespace fs = std::filesystem;
using protocol::Frame;
using protocol::FrameType;
using protocol::LaunchSpec;

constexpr int kDeadlineMs = 120000;  // boot under nested virtualisation is slow; never a sleep

using kiln::testing::monotonic_ms;
using kiln::testing::slurp;
using kiln::testing::spawn;
using kiln::testing::wait_exit;

int run(const std::vector<std::string>& argv, const std::string& log) { return kiln::testing::run(argv, log, kDeadlineMs); }


Result<Frame> read_frame(int fd, protocol::FrameDecoder& dec) {
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

// Shared by the tests: the hello image as ext4 (built by kiln-rootfs) and its launch spec.
struct Fixture {
  std::string skip;  // non-empty: why these tests cannot run here
  std::string error;
  fs::path dir;
  fs::path rootfs;
  std::string kernel;
  LaunchSpec spec;
};

Fixture& fixture() {
  static Fixture fx = [] {
    Fixture f;
    char tmpl[] = "/tmp/kiln-agent-e2e-XXXXXX";
    f.dir = mkdtemp(tmpl);
    f.kernel = std::getenv("KILN_GUEST_KERNEL") ? std::getenv("KILN_GUEST_KERNEL")
                                                : kiln::testing::build_path("guest-kernel/vmlinux");
    if (run({kiln::testing::build_path("vmm/kiln-vmm"), "--self-test"}, (f.dir / "selftest.txt").string()) != 0) {
      std::string why = slurp(f.dir / "selftest.txt");
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      f.skip = why + " (scripts/test runs the e2e tier inside the nested test host)";
      return f;
    }
    if (!fs::exists(f.kernel)) {
      f.error = "no guest kernel at " + f.kernel + " (ninja guest-kernel)";
      return f;
    }
    fs::path oci = kiln::testing::build_path("examples/hello/oci");
    f.rootfs = f.dir / "rootfs.ext4";
    if (run({kiln::testing::build_path("rootfs-builder/kiln-rootfs"), "build", "oci:" + oci.string() + ":latest", "-o", f.rootfs.string(),
             "--cache-dir", (f.dir / "cache").string()},
            (f.dir / "rootfs.log").string()) != 0) {
      f.error = "kiln-rootfs failed: " + slurp(f.dir / "rootfs.log");
      return f;
    }
    auto blob = [&oci](const std::string& digest) { return oci / "blobs/sha256" / digest.substr(7); };
    auto index = nlohmann::json::parse(slurp(oci / "index.json"));
    auto manifest = nlohmann::json::parse(slurp(blob(index["manifests"][0]["digest"])));
    const auto config = nlohmann::json::parse(slurp(blob(manifest["config"]["digest"])))["config"];
    for (const auto& a : config.value("Entrypoint", nlohmann::json::array())) f.spec.argv.push_back(a);
    for (const auto& a : config.value("Cmd", nlohmann::json::array())) f.spec.argv.push_back(a);
    for (const auto& e : config.value("Env", nlohmann::json::array())) f.spec.env.push_back(e);
    f.spec.working_dir = config.value("WorkingDir", "/");
    f.spec.user = config.value("User", "");
    f.spec.hostname = "hello-e2e";
    f.spec.ready_timeout_ms = 60000;
    return f;
  }();
  return fx;
}

// One microVM and the host side of its vsock.
class Vm {
 public:
  Vm() {
    char tmpl[] = "/tmp/kiln-agent-vm-XXXXXX";
    dir_ = mkdtemp(tmpl);
    uds_ = dir_ + "/v.sock";
    auto l = listen_on(Endpoint::unix_path(uds_ + "_10001"));
    if (l.ok()) events_listener_ = std::move(l.value());
  }
  ~Vm() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Boots; with a spec, it goes on a second drive (the config drive) instead of port 10000.
  void boot(const std::optional<LaunchSpec>& drive_spec = std::nullopt) {
    std::string drives = R"([{"drive_id": "rootfs", "path_on_host": ")" + fixture().rootfs.string() +
                         R"(", "is_root_device": false, "is_read_only": true})";
    if (drive_spec) {
      auto bytes = protocol::encode_config_drive(*drive_spec);
      ASSERT_TRUE(bytes.ok()) << bytes.error().message;
      std::string data = *bytes;
      data.resize((data.size() + 511) / 512 * 512, '\0');
      std::ofstream(dir_ + "/config.img", std::ios::binary) << data;
      drives += R"(, {"drive_id": "config", "path_on_host": ")" + dir_ +
                R"(/config.img", "is_root_device": false, "is_read_only": true})";
    }
    drives += "]";
    std::ofstream(dir_ + "/vm.json")
        << R"({"boot-source": {"kernel_image_path": ")" << fixture().kernel << R"(", "initrd_path": ")"
        << kiln::testing::build_path("guest-agent/initramfs.cpio") << R"(", "boot_args": "console=ttyS0 reboot=k panic=1 quiet"},
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
             "drives": )" << drives << R"(,
             "vsock": {"guest_cid": 3, "uds_path": ")" << uds_ << R"("}})";
    pid_ = spawn({kiln::testing::build_path("vmm/kiln-vmm"), "--no-api", "--config-file", dir_ + "/vm.json"}, dir_ + "/console.log");
    ASSERT_GT(pid_, 0);
  }

  Result<protocol::HelloEvent> accept_events() {
    pollfd p{events_listener_.get(), POLLIN, 0};
    if (poll(&p, 1, kDeadlineMs) != 1) return make_error("the agent never connected to port 10001");
    events_.reset(accept4(events_listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!events_) return errno_error("accept");
    KILN_ASSIGN_OR_RETURN(Frame f, read_frame(events_.get(), decoder_));
    if (f.type != FrameType::kHello) return make_error("first event is not hello");
    return protocol::decode_hello(f.payload);
  }

  Result<Frame> wait_event(FrameType type) {
    while (true) {
      KILN_ASSIGN_OR_RETURN(Frame f, read_frame(events_.get(), decoder_));
      if (f.type == FrameType::kLog) {
        KILN_ASSIGN_OR_RETURN(protocol::LogEvent l, protocol::decode_log(f.payload));
        logs_.push_back(l);
      }
      if (f.type == type) return f;
    }
  }

  const std::vector<protocol::LogEvent>& logs() const { return logs_; }

  Result<protocol::LogEvent> wait_log(const std::string& needle) {
    for (const auto& l : logs_) {
      if (l.data.find(needle) != std::string::npos) return l;
    }
    while (true) {
      KILN_TRY(wait_event(FrameType::kLog));
      if (logs_.back().data.find(needle) != std::string::npos) return logs_.back();
    }
  }

  // A stream to guest port `port` through the VMM's hybrid vsock socket.
  Result<UniqueFd> connect_guest(std::uint32_t port) {
    bool in_progress = false;
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, connect_to(Endpoint::unix_path(uds_), &in_progress));
    fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    std::string req = protocol::hybrid_connect_request(port);
    if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return errno_error("send CONNECT");
    }
    std::string got;
    while (true) {  // byte by byte: nothing after the reply line may be consumed here
      pollfd p{fd.get(), POLLIN, 0};
      if (poll(&p, 1, kDeadlineMs) != 1) return make_error("no reply to CONNECT");
      char c;
      if (recv(fd.get(), &c, 1, 0) != 1) return make_error("CONNECT refused (closed)");
      got.push_back(c);
      KILN_ASSIGN_OR_RETURN(protocol::HybridReply r, protocol::parse_hybrid_reply(got));
      if (r.complete) return fd;
    }
  }

  Result<Frame> control(const Result<std::string>& frame) {
    if (!frame.ok()) return frame.error();
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, connect_guest(10000));
    if (send(fd.get(), frame->data(), frame->size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame->size())) {
      return errno_error("send control");
    }
    protocol::FrameDecoder dec;
    return read_frame(fd.get(), dec);
  }

  Result<std::string> invoke(const std::string& request) {
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, connect_guest(9000));
    if (send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      return errno_error("send invocation");
    }
    shutdown(fd.get(), SHUT_WR);
    return kiln::testing::read_until_eof(fd.get(), kDeadlineMs, "invocation answer");
  }

  // kiln-vmm's exit code once the guest rebooted.
  int wait_vmm() {
    int rc = wait_exit(pid_, kDeadlineMs);
    pid_ = -1;
    return rc;
  }
  std::string console() const { return slurp(dir_ + "/console.log"); }

 private:
  std::string dir_;
  std::string uds_;
  UniqueFd events_listener_;
  UniqueFd events_;
  protocol::FrameDecoder decoder_;
  pid_t pid_ = -1;
  std::vector<protocol::LogEvent> logs_;
};

class AgentInVm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fixture().skip.empty()) GTEST_SKIP() << fixture().skip;
    ASSERT_TRUE(fixture().error.empty()) << fixture().error;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!fixture().dir.empty()) fs::remove_all(fixture().dir, ec);
  }
};

TEST_F(AgentInVm, InvokeThroughVsockWithLogLine) {
  Vm vm;
  vm.boot();
  auto hello = vm.accept_events();
  ASSERT_TRUE(hello.ok()) << hello.error().message << "\n" << vm.console();
  EXPECT_EQ(hello->state, "waiting");
  LaunchSpec spec = fixture().spec;
  spec.wall_clock_ns = kiln::realtime_ns();
  auto ack = vm.control(protocol::encode_config_drive(spec));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  ASSERT_EQ(ack->type, FrameType::kAck);
  EXPECT_TRUE(protocol::decode_ack(ack->payload)->ok);
  auto ready = vm.wait_event(FrameType::kReady);
  ASSERT_TRUE(ready.ok()) << ready.error().message << "\n" << vm.console();

  std::string body = R"({"name":"e2e"})";
  auto answer = vm.invoke("POST /event-invoke HTTP/1.1\r\nHost: fn\r\nX-Scf-Request-Id: e2e-1\r\n"
                          "Content-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  auto at = answer->find("\r\n\r\n");
  ASSERT_NE(at, std::string::npos) << *answer;
  auto json = nlohmann::json::parse(answer->substr(at + 4), nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << *answer;
  EXPECT_EQ(json["message"], "hello, e2e");
  EXPECT_EQ(json["request_id"], "e2e-1");
  auto line = vm.wait_log("hello: POST /event-invoke 200 request_id=e2e-1");
  ASSERT_TRUE(line.ok()) << line.error().message;
  EXPECT_EQ(line->stream, protocol::LogStream::kStdout);
  EXPECT_GE(line->ts_ns, spec.wall_clock_ns);
  std::printf("e2e invocation answer: %s\ne2e log line (port 10001): ts=%llu stream=%s \"%s\"\n",
              answer->substr(at + 4).c_str(), static_cast<unsigned long long>(line->ts_ns),
              protocol::log_stream_name(line->stream), line->data.c_str());

  auto down = vm.control(protocol::encode(protocol::ShutdownRequest{}));
  ASSERT_TRUE(down.ok()) << down.error().message;
  auto ex = vm.wait_event(FrameType::kExit);
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  EXPECT_EQ(protocol::decode_exit(ex->payload)->code, 0);
  EXPECT_EQ(vm.wait_vmm(), 0) << vm.console();
}

TEST_F(AgentInVm, NeverListensIsNotReadyConfigDrive) {
  Vm vm;
  LaunchSpec spec = fixture().spec;
  spec.argv = {"sh", "-c", "echo up; exec sleep 1000"};
  spec.ready_timeout_ms = 2000;
  spec.stop_grace_ms = 1000;
  vm.boot(spec);  // the config-drive path
  ASSERT_TRUE(vm.accept_events().ok()) << vm.console();
  auto nr = vm.wait_event(FrameType::kNotReady);
  ASSERT_TRUE(nr.ok()) << nr.error().message << "\n" << vm.console();
  auto n = protocol::decode_not_ready(nr->payload);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->message.rfind("not ready after 2 s", 0), 0u) << n->message;
  auto down = vm.control(protocol::encode(protocol::ShutdownRequest{}));
  ASSERT_TRUE(down.ok()) << down.error().message;
  auto ex = vm.wait_event(FrameType::kExit);
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  auto e = protocol::decode_exit(ex->payload);
  EXPECT_TRUE(e->signaled);
  EXPECT_EQ(e->code, SIGTERM);
  EXPECT_EQ(vm.wait_vmm(), 0) << vm.console();
}

TEST_F(AgentInVm, CrashReportsExitAndGuestReboots) {
  Vm vm;
  vm.boot();
  ASSERT_TRUE(vm.accept_events().ok()) << vm.console();
  LaunchSpec spec = fixture().spec;
  spec.argv = {"sh", "-c", "echo boom >&2; exit 3"};
  auto ack = vm.control(protocol::encode_config_drive(spec));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  auto ex = vm.wait_event(FrameType::kExit);
  ASSERT_TRUE(ex.ok()) << ex.error().message << "\n" << vm.console();
  auto e = protocol::decode_exit(ex->payload);
  EXPECT_FALSE(e->signaled);
  EXPECT_EQ(e->code, 3);
  auto boom = vm.wait_log("boom");
  ASSERT_TRUE(boom.ok()) << boom.error().message;
  EXPECT_EQ(boom->stream, protocol::LogStream::kStderr);
  EXPECT_EQ(vm.wait_vmm(), 0) << vm.console();  // the agent rebooted the guest by itself
}

// The platform boundary in a real guest (agent/boundary.h): a root function sees only its own
// namespace in /proc (no kiln-init), `kill -9 1` leaves the instance running, and neither the
// config drive nor the image's block device is in its /dev.
TEST_F(AgentInVm, RootFunctionSeesNoKilnInitAndCannotStopIt) {
  Vm vm;
  LaunchSpec spec = fixture().spec;
  spec.user = "";
  spec.argv = {"sh", "-c",
               "for p in /proc/[0-9]*; do echo \"proc ${p#/proc/} $(cat $p/comm)\"; done; "
               "kill -9 1; kill -TERM 1; "
               "for d in /dev/vda /dev/vdb /dev/console /dev/vsock; do [ -e $d ] && echo \"visible $d\"; done; "
               "echo still-here; exit 4"};
  vm.boot(spec);  // the config-drive path: /dev/vdb exists in kiln-init's /dev
  ASSERT_TRUE(vm.accept_events().ok()) << vm.console();
  auto ex = vm.wait_event(FrameType::kExit);
  ASSERT_TRUE(ex.ok()) << ex.error().message << "\n" << vm.console();
  auto e = protocol::decode_exit(ex->payload);
  EXPECT_FALSE(e->signaled);
  EXPECT_EQ(e->code, 4);
  std::vector<std::string> procs;
  bool still_here = false;
  for (const auto& l : vm.logs()) {
    std::printf("guest function: %s\n", l.data.c_str());
    if (l.data.rfind("proc ", 0) == 0) procs.push_back(l.data);
    if (l.data == "still-here") still_here = true;
    EXPECT_EQ(l.data.rfind("visible ", 0), std::string::npos) << l.data;
  }
  EXPECT_EQ(procs, (std::vector<std::string>{"proc 1 fn-init", "proc 2 sh"}));
  EXPECT_TRUE(still_here);
  EXPECT_EQ(vm.wait_vmm(), 0) << vm.console();
}

}  // namespace
}  // namespace kiln::agent

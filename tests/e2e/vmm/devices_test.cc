// e2e (real guest kernel under KVM): kiln-vmm boots with an initramfs and an ext4 drive; the
// guest reads a file from the drive, reads virtio-rng, and exchanges bytes over vsock in both
// directions (host-initiated via `CONNECT 5000`, guest-initiated to `<uds_path>_6000`), then
// reboots and kiln-vmm exits 0. Once from --config-file, once through the API socket, once with
// the drive served by nbdkit over a Unix socket (an NBD URI as path_on_host), seccomp on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "tests/support/nbdkit_server.h"
#include "tests/support/process.h"
#include "tests/support/test_paths.h"

extern char** environ;

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kBootDeadline = std::chrono::seconds(240);

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

using kiln::testing::slurp;
using kiln::testing::spawn;

int run(const std::vector<std::string>& args) { return kiln::testing::run(args, "/dev/null"); }

// Waits for `pid` until the deadline; returns its exit code, or -1 (and kills it) on timeout.
int wait_exit(pid_t pid, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  int code = kiln::testing::wait_exit(pid, static_cast<int>(std::max<std::int64_t>(left, 0)));
  return code == kiln::testing::kTimedOut ? -1 : code;
}

sockaddr_un unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  return a;
}

bool wait_readable(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(left)) == 1;
}

// Reads until EOF (or the deadline).
std::string read_to_eof(int fd, Clock::time_point deadline) {
  std::string out;
  char buf[4096];
  while (wait_readable(fd, deadline)) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Reads one '\n'-terminated line byte by byte (the hybrid vsock "OK <port>\n" reply).
std::string read_line(int fd, Clock::time_point deadline) {
  std::string line;
  char c;
  while (wait_readable(fd, deadline) && ::read(fd, &c, 1) == 1) {
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

class VmmDevices : public ::testing::Test {
 protected:
  void SetUp() override {
    build_ = kiln::testing::build_dir();
    kernel_ = env_or("KILN_GUEST_KERNEL", build_ + "/guest-kernel/vmlinux");
    initrd_ = build_ + "/tests/e2e/vmm/devices_initrd.cpio";
    char tmpl[] = "/tmp/kiln-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::mt19937_64 rng(std::random_device{}());
    nonce_ = std::to_string(rng());
    reply_ = "host-reply-" + std::to_string(rng());
    ping_ = "ping-" + std::to_string(rng());
    // The drive: an ext4 image with the nonce, built from a directory.
    ASSERT_EQ(::mkdir((dir_ + "/tree").c_str(), 0755), 0);
    std::ofstream(dir_ + "/tree/hello.txt") << nonce_;
    ASSERT_EQ(run({"/sbin/mkfs.ext4", "-q", "-F", "-d", dir_ + "/tree", dir_ + "/disk.ext4", "8M"}), 0);
    uds_ = dir_ + "/v.sock";
    drive_path_ = dir_ + "/disk.ext4";
  }
  void TearDown() override { run({"/bin/rm", "-rf", dir_}); }

  std::string vm_json() const {
    return R"({"boot-source": {"kernel_image_path": ")" + kernel_ + R"(", "initrd_path": ")" + initrd_ +
           R"(", "boot_args": "console=ttyS0 reboot=k panic=1 quiet"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  "drives": [{"drive_id": "data", "path_on_host": ")" + drive_path_ + R"(", "is_root_device": false, "is_read_only": true}],
  "vsock": {"guest_cid": 3, "uds_path": ")" + uds_ + R"("},
  "entropy": {}})";
  }

  // Runs both vsock directions against a booting guest; returns when both are done.
  void exchange(Clock::time_point deadline) {
    // Guest-initiated: listen where the guest's connection to host port 6000 arrives.
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un la = unix_addr(uds_ + "_6000");
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&la), sizeof la), 0);
    ASSERT_EQ(::listen(listener.get(), 4), 0);
    started_();
    ASSERT_TRUE(wait_readable(listener.get(), deadline)) << "the guest never connected to host port 6000";
    UniqueFd g(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(g.valid());
    EXPECT_EQ(read_to_eof(g.get(), deadline), "guest-hello");
    ASSERT_EQ(::write(g.get(), reply_.data(), reply_.size()), static_cast<ssize_t>(reply_.size()));
    g.reset();

    // Host-initiated: CONNECT 5000 until the guest's listener is up (a refused port is a reset).
    std::string echoed;
    while (Clock::now() < deadline) {
      UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un ca = unix_addr(uds_);
      if (::connect(c.get(), reinterpret_cast<sockaddr*>(&ca), sizeof ca) != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      const std::string hello = "CONNECT 5000\n";
      ASSERT_EQ(::write(c.get(), hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
      std::string ok = read_line(c.get(), deadline);
      if (ok.rfind("OK ", 0) != 0) {  // not listening yet: retry
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      ASSERT_EQ(::write(c.get(), ping_.data(), ping_.size()), static_cast<ssize_t>(ping_.size()));
      ::shutdown(c.get(), SHUT_WR);
      echoed = read_to_eof(c.get(), deadline);
      break;
    }
    EXPECT_EQ(echoed, "echo:" + ping_);
  }

  void check_console(const std::string& console, int code) {
    EXPECT_NE(console.find("drive says: " + nonce_), std::string::npos) << console;
    EXPECT_NE(console.find("vsock-peer: reply: " + reply_), std::string::npos) << console;
    EXPECT_NE(console.find("vsock-peer: echoed " + std::to_string(ping_.size()) + " bytes"), std::string::npos) << console;
    EXPECT_NE(console.find("guest: done"), std::string::npos) << console;
    auto rng = console.find("rng: ");
    ASSERT_NE(rng, std::string::npos) << console;
    EXPECT_EQ(console.substr(rng + 5, 32).size(), 32u) << "virtio-rng gave no bytes: " << console;
    EXPECT_EQ(code, 0) << console;
  }

  std::function<void()> started_ = [] {};
  std::string build_, kernel_, initrd_, dir_, uds_, nonce_, reply_, ping_, drive_path_;
};

TEST_F(VmmDevices, BlockRngAndVsockBothWaysFromConfigFile) {
  std::ofstream(dir_ + "/vm.json") << vm_json();
  auto deadline = Clock::now() + kBootDeadline;
  pid_t pid = -1;
  started_ = [&] {
    pid = spawn({build_ + "/vmm/kiln-vmm", "--no-api", "--config-file", dir_ + "/vm.json"}, dir_ + "/console");
  };
  exchange(deadline);
  ASSERT_GT(pid, 0);
  int code = wait_exit(pid, deadline);
  check_console(slurp(dir_ + "/console"), code);
}

TEST_F(VmmDevices, DriveServedByAnNbdServer) {
  ASSERT_TRUE(kiln::testing::nbdkit_available()) << "nbdkit is missing (scripts/setup installs it)";
  auto server = kiln::testing::NbdkitServer::start(dir_, {"file", dir_ + "/disk.ext4"}, /*read_only=*/true);
  ASSERT_TRUE(server.ok()) << server.error().message;
  drive_path_ = (*server)->uri();
  std::ofstream(dir_ + "/vm.json") << vm_json();
  auto deadline = Clock::now() + kBootDeadline;
  pid_t pid = -1;
  started_ = [&] {
    pid = spawn({build_ + "/vmm/kiln-vmm", "--no-api", "--config-file", dir_ + "/vm.json"}, dir_ + "/console");
  };
  exchange(deadline);
  ASSERT_GT(pid, 0);
  int code = wait_exit(pid, deadline);
  check_console(slurp(dir_ + "/console"), code);
}

TEST_F(VmmDevices, SameThroughTheApiSocket) {
  auto deadline = Clock::now() + kBootDeadline;
  std::string api = dir_ + "/api.sock";
  pid_t pid = spawn({build_ + "/vmm/kiln-vmm", "--api-sock", api}, dir_ + "/console");
  ASSERT_GT(pid, 0);
  // The socket file appears at bind(), before listen(): wait until a connection is taken.
  auto connectable = [&] {
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = unix_addr(api);
    return ::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  };
  while (!connectable() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto put = [&](const std::string& path, const std::string& body) {
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = unix_addr(api);
    EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req = "PUT " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    EXPECT_EQ(::write(c.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string resp = read_to_eof(c.get(), deadline);
    return resp.substr(0, resp.find("\r\n"));
  };
  EXPECT_EQ(put("/boot-source", R"({"kernel_image_path": ")" + kernel_ + R"(", "initrd_path": ")" + initrd_ +
                                    R"(", "boot_args": "console=ttyS0 reboot=k panic=1 quiet"})"),
            "HTTP/1.1 204 No Content");
  EXPECT_EQ(put("/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})"), "HTTP/1.1 204 No Content");
  EXPECT_EQ(put("/drives/data", R"({"drive_id": "data", "path_on_host": ")" + dir_ +
                                    R"(/disk.ext4", "is_root_device": false, "is_read_only": true})"),
            "HTTP/1.1 204 No Content");
  EXPECT_EQ(put("/drives/other", R"({"drive_id": "data", "path_on_host": "/x", "is_root_device": false, "is_read_only": true})"),
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(put("/vsock", R"({"guest_cid": 3, "uds_path": ")" + uds_ + R"("})"), "HTTP/1.1 204 No Content");
  EXPECT_EQ(put("/entropy", "{}"), "HTTP/1.1 204 No Content");
  started_ = [&] { EXPECT_EQ(put("/actions", R"({"action_type": "InstanceStart"})"), "HTTP/1.1 204 No Content"); };
  exchange(deadline);
  int code = wait_exit(pid, deadline);
  check_console(slurp(dir_ + "/console"), code);
}

}  // namespace
}  // namespace kiln

// The real backend without KVM: VmmBackend spawns fake-kiln-vmm (a stand-in for kiln-vmm and
// the guest's kiln-init), configures it over the Firecracker-style API, speaks the agent
// protocol over hybrid-vsock Unix sockets (hello -> launch spec -> ready, logs, status,
// shutdown), invokes through port 9000, and reports failures (exit, not ready, VMM killed,
// boot timeout, API errors). Plus the CONNECT handshake against hostile answers and reap_stale,
// and the jail settings (spec derived from the instance, refusals as values, leftover jails).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "src/jail/jail.h"
#include "src/pool/hybrid_vsock.h"
#include "src/pool/jailed_vmm.h"
#include "src/pool/vmm_backend.h"
#include "tests/support/test_paths.h"

namespace kiln::kilnd::pool {
namespace {

namespace fs = std::filesystem;

std::string fake_vmm() { return kiln::testing::build_path("tests/unit/kilnd/fake-kiln-vmm"); }
using Clock = std::chrono::steady_clock;

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// co_spawn needs a default-constructible result: capture into an optional instead.
asio::awaitable<void> connect_into(std::optional<Result<local::socket>>* out, std::string uds,
                                   Clock::time_point deadline) {
  auto r = co_await hybrid_connect(std::move(uds), 9000, deadline);
  out->emplace(std::move(r));
}

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-vmm-XXXXXX";
    dir_ = mkdtemp(tmpl);
    unsetenv("FAKE_MODE");
    opts_.vmm_path = fake_vmm();
    opts_.kernel_path = "/boot/vmlinux-test";
    opts_.initrd_path = "/boot/initrd-test";
    opts_.run_dir = dir_ + "/run";
    fs::create_directories(opts_.run_dir);
    opts_.jail = false;  // fake-kiln-vmm runs unjailed (a jail needs root and real boot files)
    opts_.stop_grace = std::chrono::milliseconds(2000);
  }
  void TearDown() override {
    unsetenv("FAKE_MODE");
    fs::remove_all(dir_);
  }

  // Runs the loop until pred() holds or 20 s pass (an event wait with a deadline).
  template <typename P>
  bool run_until(P pred) {
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!pred() && Clock::now() < deadline) {
      if (io_.stopped()) io_.restart();  // it stops whenever it runs out of work (an instance that never started)
      io_.run_one_for(std::chrono::milliseconds(100));
    }
    return pred();
  }

  InstanceSpec spec(const std::string& id) {
    InstanceSpec s;
    s.instance_id = id;
    s.function = "fn";
    s.rootfs_path = "/images/fn.ext4";
    s.memory_mib = 256;
    s.vcpus = 2;
    s.launch.argv = {"/hello", "--flag"};
    s.launch.env = {"A=1"};
    s.launch.instance_id = id;
    return s;
  }

  struct Events {
    bool ready = false;
    std::optional<std::string> ended;
    std::vector<std::string> logs;
    std::vector<std::string> notices;
    bool noticed(const std::string& part) const {
      return std::any_of(notices.begin(), notices.end(), [&](const std::string& n) { return n.find(part) != std::string::npos; });
    }
  };
  InstanceCallbacks callbacks(Events& e) {
    InstanceCallbacks cb;
    cb.ready = [&e] { e.ready = true; };
    cb.ended = [&e](const std::string& r) { e.ended = r; };
    cb.log = [&e](const protocol::LogEvent& l) { e.logs.push_back(l.data); };
    cb.notice = [&e](const std::string& n) { e.notices.push_back(n); };
    return cb;
  }

  // Snapshots on, with real boot files (a snapshot key names their identities).
  void use_snapshots(bool park) {
    opts_.kernel_path = dir_ + "/vmlinux";
    opts_.initrd_path = dir_ + "/initrd.cpio";
    for (const auto& f : {opts_.kernel_path, opts_.initrd_path, dir_ + "/fn.ext4"}) std::ofstream(f) << "x";
    opts_.snapshot_dir = dir_ + "/snapshots";
    opts_.park_vmms = park;
  }
  InstanceSpec snap_spec(const std::string& id) {
    InstanceSpec s = spec(id);
    s.rootfs_path = dir_ + "/fn.ext4";
    return s;
  }
  // The one complete snapshot directory in the store.
  std::string snapshot_dir() {
    for (const auto& e : fs::directory_iterator(opts_.snapshot_dir)) {
      const std::string name = e.path().filename().string();
      if (name.find('.') == std::string::npos) return e.path().string();
    }
    return "";
  }
  // Starts `id` and runs until it is ready (false: it ended or never got there).
  bool start_ready(VmmBackend& backend, const std::string& id, Events& ev, std::unique_ptr<VmInstance>* vm) {
    *vm = backend.start(snap_spec(id), callbacks(ev));
    return run_until([&] { return ev.ready || ev.ended; }) && ev.ready;
  }
  std::string invoke_argv0(VmInstance& vm) {
    std::optional<Result<local::socket>> conn;
    vm.connect([&](Result<local::socket> s) { conn.emplace(std::move(s)); });
    if (!run_until([&] { return conn.has_value(); }) || !conn->ok()) return "(no connection)";
    local::socket sock = std::move(conn->value());
    std::string req = "POST /event-invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
    asio::write(sock, asio::buffer(req));
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    return nlohmann::json::parse(res.body(), nullptr, false).value("argv0", "(bad answer)");
  }
  void stop(VmInstance& vm) {
    bool stopped = false;
    vm.stop([&] { stopped = true; });
    ASSERT_TRUE(run_until([&] { return stopped; }));
  }

  std::string dir_;
  VmmBackendOptions opts_;
  asio::io_context io_;
};

TEST_F(BackendTest, BootReadyInvokeCheckStop) {
  VmmBackend backend(io_, opts_);
  Events ev;
  auto vm = backend.start(spec("fn-1-aa"), callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ready || ev.ended; }));
  ASSERT_FALSE(ev.ended) << *ev.ended;
  std::string run = opts_.run_dir + "/fn-1-aa";

  // The API calls, in order, with Firecracker's field names.
  std::vector<nlohmann::json> puts;
  std::vector<std::string> paths;
  std::istringstream api(slurp(run + "/api.log"));
  for (std::string line; std::getline(api, line);) {
    if (line.rfind("PUT ", 0) != 0) continue;
    paths.push_back(line.substr(4, line.find(' ', 4) - 4));
    puts.push_back(nlohmann::json::parse(line.substr(line.find(" {") + 1)));
  }
  ASSERT_EQ(paths, (std::vector<std::string>{"/machine-config", "/boot-source", "/drives/rootfs", "/vsock", "/actions"}));
  EXPECT_EQ(puts[0]["vcpu_count"], 2);
  EXPECT_EQ(puts[0]["mem_size_mib"], 256);
  EXPECT_EQ(puts[1]["kernel_image_path"], "/boot/vmlinux-test");
  EXPECT_EQ(puts[1]["initrd_path"], "/boot/initrd-test");
  EXPECT_EQ(puts[2]["path_on_host"], "/images/fn.ext4");
  EXPECT_EQ(puts[2]["is_read_only"], true);
  EXPECT_EQ(puts[3]["uds_path"], run + "/vsock.sock");
  EXPECT_EQ(puts[4]["action_type"], "InstanceStart");

  // Invocation through port 9000.
  std::optional<Result<local::socket>> conn;
  vm->connect([&](Result<local::socket> s) { conn.emplace(std::move(s)); });
  ASSERT_TRUE(run_until([&] { return conn.has_value(); }));
  ASSERT_TRUE(conn->ok()) << conn->error().message;
  local::socket sock = std::move(conn->value());
  std::string req = "POST /event-invoke HTTP/1.1\r\nHost: x\r\nX-Scf-Request-Id: r-1\r\nContent-Length: 5\r\n\r\nhello";
  asio::write(sock, asio::buffer(req));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  EXPECT_EQ(res.result_int(), 200);
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["request_id"], "r-1");
  EXPECT_EQ(j["body"], "hello");
  EXPECT_EQ(j["argv0"], "/hello");  // the launch spec arrived over the control port
  ASSERT_TRUE(run_until([&] { return ev.logs.size() >= 2; }));
  EXPECT_EQ(ev.logs[0], "fake: launched /hello as fn-1-aa");
  EXPECT_EQ(ev.logs[1], "fake: POST /event-invoke HTTP/1.1 request_id=r-1");

  std::optional<bool> healthy;
  vm->check([&](bool h) { healthy = h; });
  ASSERT_TRUE(run_until([&] { return healthy.has_value(); }));
  EXPECT_TRUE(*healthy);

  pid_t pid = static_cast<pid_t>(std::stol(slurp(run + "/vmm.pid")));
  bool stopped = false;
  vm->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(ev.ended.has_value());  // a requested stop is not an "ended" event
  EXPECT_FALSE(fs::exists(run));  // run dir, sockets, log: all released
  EXPECT_NE(::kill(pid, 0), 0);  // the process is gone (and reaped)
  vm.reset();
}

TEST_F(BackendTest, CommandExitBeforeReadyIsReported) {
  setenv("FAKE_MODE", "exit", 1);
  VmmBackend backend(io_, opts_);
  Events ev;
  auto vm = backend.start(spec("fn-2-bb"), callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ended.has_value(); }));
  EXPECT_FALSE(ev.ready);
  EXPECT_EQ(*ev.ended, "the function's process exited with code 3");
  bool stopped = false;
  vm->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/fn-2-bb"));
}

TEST_F(BackendTest, NotReadyIsReported) {
  setenv("FAKE_MODE", "notready", 1);
  VmmBackend backend(io_, opts_);
  Events ev;
  auto vm = backend.start(spec("fn-3-cc"), callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ended.has_value(); }));
  EXPECT_EQ(*ev.ended, "the function is not ready: not ready after 0.1 s");
}

TEST_F(BackendTest, KilledVmmIsReportedAndConnectFails) {
  VmmBackend backend(io_, opts_);
  Events ev;
  auto vm = backend.start(spec("fn-4-dd"), callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ready || ev.ended; }));
  ASSERT_TRUE(ev.ready);
  pid_t pid = static_cast<pid_t>(std::stol(slurp(opts_.run_dir + "/fn-4-dd/vmm.pid")));
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(run_until([&] { return ev.ended.has_value(); }));
  EXPECT_EQ(ev.ended->rfind("kiln-vmm killed by signal 9", 0), 0u) << *ev.ended;
  std::optional<Result<local::socket>> conn;
  vm->connect([&](Result<local::socket> s) { conn.emplace(std::move(s)); });
  ASSERT_TRUE(run_until([&] { return conn.has_value(); }));
  EXPECT_FALSE(conn->ok());
  vm.reset();  // destroying the handle releases the run dir
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/fn-4-dd"));
}

TEST_F(BackendTest, BootTimeoutWhenTheAgentNeverSpeaks) {
  setenv("FAKE_MODE", "nohello", 1);
  opts_.boot_timeout = std::chrono::milliseconds(300);
  VmmBackend backend(io_, opts_);
  Events ev;
  auto vm = backend.start(spec("fn-5-ee"), callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ended.has_value(); }));
  EXPECT_NE(ev.ended->find("did not report ready"), std::string::npos) << *ev.ended;
}

TEST_F(BackendTest, ApiFaultMessageIsReported) {
  VmmBackend backend(io_, opts_);
  Events ev;
  InstanceSpec s = spec("fn-6-ff");
  s.rootfs_path.clear();
  auto vm = backend.start(s, callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ended.has_value(); }));
  EXPECT_EQ(ev.ended->rfind("configuring kiln-vmm: PUT /drives/rootfs: 400: path_on_host is required", 0), 0u)
      << *ev.ended;
}

TEST_F(BackendTest, MissingVmmBinary) {
  opts_.vmm_path = dir_ + "/no-such-kiln-vmm";
  VmmBackend backend(io_, opts_);
  Events ev;
  auto vm = backend.start(spec("fn-7-gg"), callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ended.has_value(); }));
  EXPECT_NE(ev.ended->find("no-such-kiln-vmm"), std::string::npos) << *ev.ended;
}

// The real kiln-init (--no-boot, on Unix sockets behind fake-kiln-vmm's hybrid-vsock muxer)
// running the real hello server: the whole agent protocol as kilnd speaks it.
TEST_F(BackendTest, RealAgentRunsHello) {
  setenv("FAKE_AGENT", kiln::testing::build_path("guest-agent/kiln-init").c_str(), 1);
  tcp::acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::uint16_t port = probe.local_endpoint().port();
  probe.close();
  VmmBackend backend(io_, opts_);
  Events ev;
  InstanceSpec s = spec("fn-9-real");
  s.launch.argv = {kiln::testing::build_path("examples/hello/hello")};
  s.launch.env = {"HELLO_PORT=" + std::to_string(port)};
  s.launch.port = port;
  s.launch.ready_timeout_ms = 10000;
  s.launch.stop_grace_ms = 2000;
  auto vm = backend.start(s, callbacks(ev));
  ASSERT_TRUE(run_until([&] { return ev.ready || ev.ended; }));
  unsetenv("FAKE_AGENT");
  ASSERT_FALSE(ev.ended) << *ev.ended;
  std::string listening = "hello: listening on 0.0.0.0:" + std::to_string(port);
  ASSERT_TRUE(run_until([&] { return std::find(ev.logs.begin(), ev.logs.end(), listening) != ev.logs.end(); }));

  std::optional<Result<local::socket>> conn;
  vm->connect([&](Result<local::socket> r) { conn.emplace(std::move(r)); });
  ASSERT_TRUE(run_until([&] { return conn.has_value(); }));
  ASSERT_TRUE(conn->ok()) << conn->error().message;
  local::socket sock = std::move(conn->value());
  std::string body = R"({"name":"kiln"})";
  std::string req = "POST /event-invoke HTTP/1.1\r\nHost: x\r\nX-Scf-Request-Id: r-9\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  asio::write(sock, asio::buffer(req));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  beast::error_code ec;
  bool got = false;
  http::async_read(sock, buf, res, [&](const beast::error_code& e, std::size_t) { ec = e; got = true; });
  ASSERT_TRUE(run_until([&] { return got; }));
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 200);
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["message"], "hello, kiln");
  EXPECT_EQ(j["request_id"], "r-9");
  std::string logged = "hello: POST /event-invoke 200 request_id=r-9 bytes=" + std::to_string(body.size());
  ASSERT_TRUE(run_until([&] { return std::find(ev.logs.begin(), ev.logs.end(), logged) != ev.logs.end(); }));

  std::optional<bool> healthy;
  vm->check([&](bool h) { healthy = h; });
  ASSERT_TRUE(run_until([&] { return healthy.has_value(); }));
  EXPECT_TRUE(*healthy);

  bool stopped = false;
  vm->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(ev.ended.has_value());
  EXPECT_NE(std::find(ev.logs.begin(), ev.logs.end(), "hello: shutting down"), ev.logs.end());  // SIGTERM, gracefully
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/fn-9-real"));
}

// A hostile or absent guest side of the CONNECT handshake.
TEST_F(BackendTest, HybridConnectHandshake) {
  std::string uds = dir_ + "/v.sock";
  local::acceptor acc(io_, local::endpoint(uds));
  auto serve = [&](std::string answer) {
    acc.async_accept([answer](const beast::error_code& ec, local::socket s) {
      if (ec) return;
      auto sp = std::make_shared<local::socket>(std::move(s));
      auto line = std::make_shared<asio::streambuf>();
      asio::async_read_until(*sp, *line, '\n', [sp, line, answer](const beast::error_code&, std::size_t) {
        if (answer.empty()) return;  // hang up
        asio::write(*sp, asio::buffer(answer));
      });
    });
  };
  auto attempt = [&](std::chrono::milliseconds budget) {
    std::optional<Result<local::socket>> r;
    asio::co_spawn(io_, connect_into(&r, uds, Clock::now() + budget), asio::detached);
    run_until([&] { return r.has_value(); });
    return std::move(*r);
  };
  serve("OK 5\nHTTP/1.1 200 OK\r\n");
  auto good = attempt(std::chrono::seconds(5));
  ASSERT_TRUE(good.ok()) << good.error().message;
  char first = 0;
  asio::read(good.value(), asio::buffer(&first, 1));
  EXPECT_EQ(first, 'H');  // bytes after the ack line belong to the stream
  // The answer line in two pieces (a short read first): still one line, the rest the stream's.
  acc.async_accept([this](const beast::error_code& ec, local::socket s) {
    if (ec) return;
    auto sp = std::make_shared<local::socket>(std::move(s));
    auto line = std::make_shared<asio::streambuf>();
    asio::async_read_until(*sp, *line, '\n', [this, sp, line](const beast::error_code&, std::size_t) {
      asio::write(*sp, asio::buffer(std::string("OK 10737")));
      auto later = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      later->async_wait([sp, later](const beast::error_code&) { asio::write(*sp, asio::buffer(std::string("41824\nZ"))); });
    });
  });
  auto split = attempt(std::chrono::seconds(5));
  ASSERT_TRUE(split.ok()) << split.error().message;
  asio::read(split.value(), asio::buffer(&first, 1));
  EXPECT_EQ(first, 'Z');
  serve("");
  auto refused = attempt(std::chrono::seconds(5));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("refused"), std::string::npos) << refused.error().message;
  serve("ERR nope\n");
  auto bad = attempt(std::chrono::seconds(5));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("bad answer"), std::string::npos);
  serve(std::string(100, 'x'));
  EXPECT_FALSE(attempt(std::chrono::seconds(5)).ok());
  // The answer goes through the common (fuzzed) codec: only "OK <u32>\n" is a connection.
  for (const std::string& answer : std::vector<std::string>{"OK\n", "OK -1\n", "NO 1\n", "OK \n", "OK 4294967296\n",
                                                            "OK 12x\n", "OK " + std::string(40, '1') + "\n"}) {
    serve(answer);
    auto refused_line = attempt(std::chrono::seconds(5));
    ASSERT_FALSE(refused_line.ok()) << answer;
    EXPECT_NE(refused_line.error().message.find("bad answer"), std::string::npos) << refused_line.error().message;
  }
  serve("OK 4294967295\n");
  EXPECT_TRUE(attempt(std::chrono::seconds(5)).ok());  // the largest port still is one
  auto none = [&] {
    std::optional<Result<local::socket>> r;
    asio::co_spawn(io_, connect_into(&r, dir_ + "/absent.sock", Clock::now() + std::chrono::seconds(1)),
                   asio::detached);
    run_until([&] { return r.has_value(); });
    return std::move(*r);
  }();
  EXPECT_FALSE(none.ok());
}

TEST_F(BackendTest, ReapStaleKillsLeftoversAndRemovesRunDirs) {
  std::string run = opts_.run_dir + "/old-1";
  fs::create_directories(run);
  std::string api = run + "/api.sock";
  std::vector<std::string> args = {fake_vmm(), "--api-sock", api};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  std::ofstream(run + "/vmm.pid") << pid << "\n";
  // Wait (deadline, no sleep) until the leftover is fully up: its API socket exists.
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!fs::exists(api) && Clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(fs::exists(api));
  fs::create_directories(opts_.run_dir + "/old-2");  // no pid file: just removed
  std::ofstream(opts_.run_dir + "/old-2/vmm.pid") << getpid() << "\n";  // not a VMM: spared
  auto report = VmmBackend::reap_stale(opts_.run_dir);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status)) << status << " " << (report.empty() ? "" : report[0]);
  EXPECT_FALSE(fs::exists(run));
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/old-2"));
  EXPECT_EQ(::kill(getpid(), 0), 0);
  EXPECT_EQ(report.size(), 3u);
}

TEST_F(BackendTest, JailSpecFollowsTheInstance) {
  // Real files, so the jail's own validation (paths, types, id) runs on the derived spec.
  const std::string kernel = dir_ + "/vmlinux", initrd = dir_ + "/initrd.cpio", rootfs = dir_ + "/fn.ext4";
  for (const auto& f : {kernel, initrd, rootfs}) std::ofstream(f) << "x";
  opts_.kernel_path = kernel;
  opts_.initrd_path = initrd;
  opts_.jail_uid_count = 3;
  InstanceSpec s = spec("fn-1");
  s.rootfs_path = rootfs;
  s.memory_mib = 128;
  s.vcpus = 2;
  jail::JailSpec j = vmm_jail_spec(opts_, s, 4);
  EXPECT_EQ(jail_base_dir(opts_), dir_ + "/jail");
  EXPECT_EQ(j.chroot_base_dir, dir_ + "/jail");
  EXPECT_EQ(j.id, "fn-1");
  EXPECT_EQ(j.exec_file, fake_vmm());
  EXPECT_EQ(j.uid, 60001u);  // 60000 + 4 % 3
  EXPECT_EQ(j.gid, 60001u);
  EXPECT_EQ(j.limits.memory_bytes, (128ull + 256) << 20);
  EXPECT_EQ(j.limits.cpu_millicores, 3000u);
  EXPECT_EQ(j.limits.pids_max, 34u);
  EXPECT_EQ(j.rlimit_fsize, (128ull + 256) << 20);
  EXPECT_EQ(j.rlimit_nofile, 2048u);
  ASSERT_EQ(j.files.size(), 3u);
  for (const auto& f : j.files) {
    EXPECT_TRUE(f.read_only) << f.host_path;
    EXPECT_FALSE(f.chown_to_vmm) << f.host_path;
  }
  EXPECT_EQ(j.files[0].jail_path, "/vmlinux");
  EXPECT_EQ(j.files[1].jail_path, "/initrd");
  EXPECT_EQ(j.files[2].host_path, rootfs);
  EXPECT_EQ(j.files[2].jail_path, "/rootfs.img");
  EXPECT_TRUE(j.dev_kvm);
  fs::create_directories(j.chroot_base_dir);  // the backend makes it before its first jail
  EXPECT_TRUE(jail::validate_spec(j).ok()) << jail::validate_spec(j).error().message;

  // Huge sizes saturate instead of wrapping; a trailing slash does not move the base.
  s.vcpus = 0xffffffffu;
  s.memory_mib = 0xffffffffu;
  j = vmm_jail_spec(opts_, s, 0);
  EXPECT_EQ(j.limits.cpu_millicores, 0xffffffffu);
  EXPECT_EQ(j.limits.pids_max, 0xffffffffu);
  EXPECT_EQ(j.limits.memory_bytes, (0xffffffffull + 256) << 20);
  opts_.run_dir = dir_ + "/run//";
  EXPECT_EQ(jail_base_dir(opts_), dir_ + "/jail");
  opts_.jail_base = "/srv/kiln-jail";
  EXPECT_EQ(vmm_jail_spec(opts_, s, 0).chroot_base_dir, "/srv/kiln-jail");

  // A lazy root disk: its NBD server's socket is bound instead of an image file.
  s.rootfs_path.clear();
  s.rootfs_nbd_socket = dir_ + "/lazy.sock";
  j = vmm_jail_spec(opts_, s, 0);
  ASSERT_EQ(j.files.size(), 3u);
  EXPECT_EQ(j.files[2].host_path, dir_ + "/lazy.sock");
  EXPECT_EQ(j.files[2].jail_path, "/rootfs.sock");
}

TEST_F(BackendTest, JailRefusalIsReportedAndLeavesNothing) {
  // The kernel does not exist: the jail refuses the spec before creating anything.
  opts_.jail = true;
  VmmBackend backend(io_, opts_);
  Events e;
  auto vm = backend.start(spec("jailed-1"), callbacks(e));
  ASSERT_TRUE(run_until([&] { return e.ended.has_value(); }));
  EXPECT_FALSE(e.ready);
  EXPECT_NE(e.ended->find("/boot/vmlinux-test"), std::string::npos) << *e.ended;
  bool stopped = false;
  vm->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/jailed-1"));
  EXPECT_FALSE(fs::exists(dir_ + "/jail/" + fs::path(fake_vmm()).filename().string() + "/jailed-1"));
}

TEST_F(BackendTest, ReapStaleKillsJailedLeftoversAndRemovesTheirJails) {
  // A jailed VMM's command line names jail paths; this stand-in blocks in `read` on a pipe.
  std::string run = opts_.run_dir + "/old-3";
  fs::create_directories(run);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<std::string> args = {"/kiln-vmm", "-c", "read x", "--api-sock", "/api.sock", "--id", "old-3"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[0]);
  std::ofstream(run + "/vmm.pid") << pid << "\n";
  // A jail left behind (its VMM gone), and one whose id the jail refuses: reported, not removed.
  const std::string jail = dir_ + "/jail/kiln-vmm/old-3";
  fs::create_directories(jail + "/root/dev");
  std::ofstream(jail + "/root/api.sock") << "";
  fs::create_directories(dir_ + "/jail/kiln-vmm/bad.id");
  // Only once sh runs with those arguments (a deadline, no sleep) is the leftover recognizable.
  const std::string cmdline_path = "/proc/" + std::to_string(pid) + "/cmdline";
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (slurp(cmdline_path).find("/api.sock") == std::string::npos && Clock::now() < deadline) std::this_thread::yield();
  auto report = VmmBackend::reap_stale(opts_.run_dir);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(fds[1]);
  std::string all;
  for (const auto& l : report) all += l + "\n";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status << "\n" << all;
  EXPECT_FALSE(fs::exists(run));
  EXPECT_FALSE(fs::exists(jail));
  EXPECT_TRUE(fs::exists(dir_ + "/jail/kiln-vmm/bad.id"));
  EXPECT_NE(all.find("removed jail " + jail), std::string::npos) << all;
  EXPECT_NE(all.find("could not remove jail"), std::string::npos) << all;
}

// Warm starts against fake-kiln-vmm's snapshots: the first instance of a key is snapshotted
// before it serves, the next one is restored (load + identity, no InstanceStart) and serves the
// same command.
TEST_F(BackendTest, FirstInstanceIsSnapshottedAndTheNextRestored) {
  use_snapshots(false);
  VmmBackend backend(io_, opts_);
  Events first;
  std::unique_ptr<VmInstance> vm1;
  ASSERT_TRUE(start_ready(backend, "fn-s-1", first, &vm1)) << first.ended.value_or("not ready");
  EXPECT_TRUE(first.noticed("taken in")) << (first.notices.empty() ? "" : first.notices[0]);
  EXPECT_NE(slurp(opts_.run_dir + "/fn-s-1/api.log").find("PUT /snapshot/create"), std::string::npos);
  EXPECT_EQ(backend.snapshot_stats().created, 1u);
  ASSERT_FALSE(snapshot_dir().empty());
  EXPECT_EQ(invoke_argv0(*vm1), "/hello");  // resumed after the snapshot: it serves
  // Its clock, kept still during the pause, was set again before it served.
  EXPECT_TRUE(first.noticed("guest clock set again in"));
  const std::string id_line = "fake: identity fn-s-1 entropy 64";
  auto has_id = [&] { return std::find(first.logs.begin(), first.logs.end(), id_line) != first.logs.end(); };
  EXPECT_TRUE(run_until(has_id)) << (first.logs.empty() ? "" : first.logs.back());

  Events second;
  std::unique_ptr<VmInstance> vm2;
  ASSERT_TRUE(start_ready(backend, "fn-s-2", second, &vm2)) << second.ended.value_or("not ready");
  EXPECT_TRUE(second.noticed("restored from snapshot")) << (second.notices.empty() ? "" : second.notices[0]);
  EXPECT_TRUE(second.noticed("identity"));
  const std::string api = slurp(opts_.run_dir + "/fn-s-2/api.log");
  EXPECT_NE(api.find("PUT /snapshot/load"), std::string::npos) << api;
  EXPECT_EQ(api.find("InstanceStart"), std::string::npos) << api;
  EXPECT_EQ(invoke_argv0(*vm2), "/hello");
  ASSERT_TRUE(run_until([&] { return second.logs.size() >= 1; }));
  EXPECT_EQ(second.logs[0], "fake: identity fn-s-2 entropy 64");
  EXPECT_EQ(backend.snapshot_stats().restores, 1u);
  stop(*vm2);
  stop(*vm1);
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/fn-s-2"));
}

TEST_F(BackendTest, RefusedSnapshotIsSetAsideAndTheInstanceColdBoots) {
  use_snapshots(false);
  VmmBackend backend(io_, opts_);
  Events first;
  std::unique_ptr<VmInstance> vm1;
  ASSERT_TRUE(start_ready(backend, "fn-r-1", first, &vm1));
  const std::string snap = snapshot_dir();
  ASSERT_FALSE(snap.empty());
  std::ofstream(snap + "/state") << "garbage";

  Events second;
  std::unique_ptr<VmInstance> vm2;
  ASSERT_TRUE(start_ready(backend, "fn-r-2", second, &vm2)) << second.ended.value_or("not ready");
  EXPECT_TRUE(second.noticed("did not load (PUT /snapshot/load: 400: not a snapshot); set aside, cold boot"))
      << (second.notices.empty() ? "" : second.notices[0]);
  EXPECT_NE(slurp(opts_.run_dir + "/fn-r-2/api.log").find("InstanceStart"), std::string::npos);
  EXPECT_TRUE(fs::exists(snap + ".bad"));
  EXPECT_EQ(backend.snapshot_stats().load_failures, 1u);
  EXPECT_EQ(invoke_argv0(*vm2), "/hello");
  // The cold-booted instance took a fresh snapshot in its place.
  EXPECT_TRUE(second.noticed("taken in"));
  EXPECT_TRUE(fs::exists(snap + "/state"));
}

// A pool's next instance gets a kiln-vmm parked ahead (its snapshot loaded paused); starting that
// instance adopts it and only resumes it. A forgotten hint kills its parked VMM.
TEST_F(BackendTest, ParkedVmmIsAdoptedByItsInstance) {
  use_snapshots(true);
  VmmBackend backend(io_, opts_);
  Events first;
  std::unique_ptr<VmInstance> vm1;
  ASSERT_TRUE(start_ready(backend, "fn-p-1", first, &vm1));
  WarmStarts* warm = backend.warm_starts();
  ASSERT_NE(warm, nullptr);
  warm->prepare(7, snap_spec("fn-p-2"));
  ASSERT_TRUE(run_until([&] { return backend.snapshot_stats().parked_ready == 1; }));
  EXPECT_TRUE(fs::exists(opts_.run_dir + "/fn-p-2/parked"));
  const std::string parked_api = slurp(opts_.run_dir + "/fn-p-2/api.log");
  EXPECT_NE(parked_api.find("\"resume_vm\":false"), std::string::npos) << parked_api;
  // Warmed ahead: resumed, its identity taken (the fake agent acks it), paused again.
  const auto warm_resume = parked_api.find("PATCH /vm HTTP/1.1 {\"state\": \"Resumed\"}");
  ASSERT_NE(warm_resume, std::string::npos) << parked_api;
  EXPECT_NE(parked_api.find("\"Paused\"", warm_resume), std::string::npos) << parked_api;

  Events second;
  std::unique_ptr<VmInstance> vm2;
  ASSERT_TRUE(start_ready(backend, "fn-p-2", second, &vm2)) << second.ended.value_or("not ready");
  EXPECT_TRUE(second.noticed("parked kiln-vmm, load paused ahead")) << (second.notices.empty() ? "" : second.notices[0]);
  EXPECT_TRUE(second.noticed(", warmed ahead ")) << (second.notices.empty() ? "" : second.notices[0]);
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/fn-p-2/parked"));
  // The adoption resumes it again: a second Resumed after the warm-up's pause.
  const std::string adopted_api = slurp(opts_.run_dir + "/fn-p-2/api.log");
  const auto paused_at = adopted_api.find("\"Paused\"");
  ASSERT_NE(paused_at, std::string::npos) << adopted_api;
  EXPECT_NE(adopted_api.find("PATCH /vm HTTP/1.1 {\"state\": \"Resumed\"}", paused_at), std::string::npos) << adopted_api;
  EXPECT_EQ(invoke_argv0(*vm2), "/hello");
  EXPECT_EQ(backend.snapshot_stats().parked_ready + backend.snapshot_stats().parked_starting, 0u);

  warm->prepare(8, snap_spec("fn-p-3"));
  ASSERT_TRUE(run_until([&] { return backend.snapshot_stats().parked_ready == 1; }));
  const pid_t parked_pid = static_cast<pid_t>(std::stol(slurp(opts_.run_dir + "/fn-p-3/vmm.pid")));
  warm->forget(8);
  EXPECT_FALSE(fs::exists(opts_.run_dir + "/fn-p-3"));
  EXPECT_NE(::kill(parked_pid, 0), 0);  // killed and reaped
  EXPECT_EQ(backend.snapshot_stats().parked_ready, 0u);
  stop(*vm2);
  stop(*vm1);
}

}  // namespace
}  // namespace kiln::kilnd::pool

// Fuzz target: kilnd's HTTP request handling end to end in one process: the fuzz bytes are
// written raw to kilnd's Unix socket (Beast parsing, caps and deadlines, the router, every API
// handler, invocations through the pool to an in-process echo guest on the fake VM backend).
// A fresh daemon and state dir per input, so inputs do not depend on each other.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "src/daemon/daemon.h"
#include "tests/fuzz/support/fuzz_input.h"
#include "tests/unit/kilnd/support/fake_backend.h"

namespace kiln::fuzz {
namespace {

namespace kd = kiln::kilnd;
using kd::asio::awaitable;
using kd::asio::use_awaitable;

// The guest's function server: answers every request with its own body (or 500 on "fail").
awaitable<void> echo_guest(kd::local::socket s) {
  kd::beast::flat_buffer buf;
  kd::http::request<kd::http::string_body> req;
  kd::beast::error_code ec;
  co_await kd::http::async_read(s, buf, req, kd::asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  bool fail = req.body().find("fail") != std::string::npos;
  kd::http::response<kd::http::string_body> res{fail ? kd::http::status::internal_server_error : kd::http::status::ok, 11};
  res.body() = req.body();
  res.keep_alive(false);
  res.prepare_payload();
  co_await kd::http::async_write(s, res, kd::asio::redirect_error(use_awaitable, ec));
}

// Image preparation without a disk: "bad" in the image fails, everything else is ready at once.
Result<kd::registry::ImageStatus> instant_build(const kd::registry::FunctionConfig& c,
                                                const std::function<void(const kd::registry::ImageStatus&)>&) {
  if (c.image.find("bad") != std::string::npos) return make_error("manifest unknown");
  kd::registry::ImageStatus s;
  s.state = kd::registry::ImageState::kReady;
  s.manifest_digest = "sha256:" + std::string(64, 'f');
  s.rootfs_path = "/dev/null";
  s.entrypoint = {"/fn"};
  return s;
}

// Sends everything, half-closes, and reads until kilnd closes or stays quiet (a follow stream).
awaitable<void> client(kd::asio::io_context& io, std::string path, std::string bytes, std::string* answer, bool* done) {
  // Shared with the quiet timer, whose completion may already be queued when the read ends.
  auto s = std::make_shared<kd::local::socket>(io);
  kd::beast::error_code ec;
  co_await s->async_connect(kd::local::endpoint(path), kd::asio::redirect_error(use_awaitable, ec));
  if (!ec) co_await kd::asio::async_write(*s, kd::asio::buffer(bytes), kd::asio::redirect_error(use_awaitable, ec));
  if (!ec) s->shutdown(kd::local::socket::shutdown_send, ec);
  kd::asio::steady_timer quiet(io);
  char buf[16384];
  while (!ec && answer->size() < (8u << 20)) {
    quiet.expires_after(std::chrono::milliseconds(300));
    quiet.async_wait([s](const kd::beast::error_code& e) {
      kd::beast::error_code ignored;
      if (!e) s->close(ignored);
    });
    std::size_t n = co_await s->async_read_some(kd::asio::buffer(buf), kd::asio::redirect_error(use_awaitable, ec));
    quiet.cancel();
    answer->append(buf, n);
  }
  *done = true;
}

std::string state_root() {
  static const std::string root = [] {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/kiln-fuzz-kilnd-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) fuzz_fail(__FILE__, __LINE__, "mkdtemp");
    return tmpl;
  }();
  return root;
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  namespace kd = kiln::kilnd;
  const std::string dir = state_root() + "/s";
  std::filesystem::remove_all(dir);
  std::string answer;
  bool done = false, stopped = false;
  {
    kd::asio::io_context io;
    kd::test::FakeBackend backend(&io);
    backend.auto_ready = true;
    backend.server = [&io](kd::local::socket s) { kd::asio::co_spawn(io, echo_guest(std::move(s)), kd::asio::detached); };
    kd::daemon::DaemonOptions o;
    o.state_dir = dir;
    o.server.tcp_host.clear();
    o.server.unix_path = dir + "/k.sock";
    o.server.header_timeout = o.server.idle_timeout = o.server.body_timeout = o.server.write_timeout =
        std::chrono::milliseconds(500);
    o.drain_timeout = std::chrono::milliseconds(200);
    kd::daemon::Daemon daemon(io, o, backend, instant_build);
    auto st = daemon.start();
    KILN_FUZZ_CHECK(st.ok());
    kd::asio::co_spawn(io,
                       client(io, o.server.unix_path, std::string(reinterpret_cast<const char*>(data), size), &answer,
                              &done),
                       [&](std::exception_ptr) { daemon.shutdown([&] { stopped = true; io.stop(); }); });
    io.run_for(std::chrono::seconds(8));
    KILN_FUZZ_CHECK(done);  // kilnd answered or went quiet within its deadlines
    KILN_FUZZ_CHECK(stopped);  // and shut down cleanly afterwards
  }
  if (std::getenv("KILN_FUZZ_LOG") != nullptr) std::fprintf(stderr, "%s\n", answer.c_str());
  // Whatever the bytes were, kilnd's answers are HTTP responses; kilnd answers in the request's
  // version (Beast parses 1.0 and 1.1 only), so an HTTP/1.0 request gets an HTTP/1.0 answer.
  KILN_FUZZ_CHECK(answer.empty() || answer.rfind("HTTP/1.1 ", 0) == 0 || answer.rfind("HTTP/1.0 ", 0) == 0);
  return 0;
}

// kilnd's own cost per invocation, natively and without VMs: the real daemon and HTTP server
// in-process (DaemonHarness) in front of the fake backend, whose "instance" is a keep-alive HTTP
// server on its own thread at the other end of a socketpair. A client on a kept TCP connection
// invokes the function N times; the same requests are also sent straight to a fake instance on
// a kept connection (the baseline). Printed: p50/p99 of both, the added p50, and the CPU time
// kilnd's event-loop thread spent per invocation (it runs nothing but kilnd).
//
//   bench_kilnd_daemon_cpu [INVOCATIONS=20000]
//
// It needs no KVM, so it also runs on this machine (perf record works on it, with symbols).
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/percentile.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::bench {
namespace {

using tcp = boost::asio::ip::tcp;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

// The fake instance: one thread per connection, HTTP/1.1 keep-alive, a small JSON answer that
// carries the request id back (as examples/hello's event handler does).
void serve_guest(int fd) {
  asio::io_context io;
  kilnd::local::socket s(io);
  beast::error_code ec;
  s.assign(kilnd::local(), fd, ec);
  if (ec) return;
  beast::flat_buffer buf;
  for (;;) {
    http::request<http::string_body> req;
    http::read(s, buf, req, ec);
    if (ec) return;
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = "{\"ok\":true,\"request_id\":\"" + std::string(req["X-Scf-Request-Id"]) + "\"}\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(s, res, ec);
    if (ec || !req.keep_alive()) return;
  }
}

double thread_cpu_ms(pthread_t t) {
  clockid_t cid;
  if (pthread_getcpuclockid(t, &cid) != 0) return 0;
  timespec ts{};
  clock_gettime(cid, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// N requests on one kept connection; each answer must be 200. Returns per-request wall ms.
template <typename Stream>
std::vector<double> run(Stream& s, const http::request<http::string_body>& req, int n, bool* ok) {
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(n));
  beast::flat_buffer buf;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    beast::error_code ec;
    http::write(s, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(s, buf, res, ec);
    if (ec || res.result_int() != 200) {
      std::fprintf(stderr, "request %d failed: %s %d %s\n", i, ec.message().c_str(), res.result_int(), res.body().c_str());
      *ok = false;
      return ms;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return ms;
}

int main_impl(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: bench_kilnd_daemon_cpu [INVOCATIONS=20000]\n");
    return 2;
  }
  char tmpl[] = "/tmp/kilnd-cpu-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  int rc = 0;
  {
    kilnd::test::DaemonHarness h(dir);
    h.backend_.server = [](kilnd::local::socket s) {
      int fd = s.release();
      std::thread(serve_guest, fd).detach();
    };
    h.deploy("bench", R"({"image": "example.com/bench:1", "concurrency": 4, "min_instances": 1, "max_instances": 1})");

    http::request<http::string_body> invoke{http::verb::post, "/v1/functions/bench/invoke", 11};
    invoke.set(http::field::host, "127.0.0.1");
    invoke.set(http::field::content_type, "application/json");
    invoke.body() = R"({"hello":"kiln"})";
    invoke.keep_alive(true);
    invoke.prepare_payload();
    http::request<http::string_body> direct{http::verb::post, "/event-invoke", 11};
    direct.set(http::field::host, "127.0.0.1");
    direct.set(http::field::content_type, "application/json");
    direct.set("X-Scf-Request-Id", "00000000-0000-4000-8000-000000000000");
    direct.body() = invoke.body();
    direct.keep_alive(true);
    direct.prepare_payload();

    asio::io_context io;
    tcp::socket to_kilnd(io);
    beast::error_code ec;
    to_kilnd.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                   static_cast<unsigned short>(std::stoi(h.ep_.port))),
                     ec);
    to_kilnd.set_option(tcp::no_delay(true), ec);
    kilnd::local::socket to_guest(io), guest_side(io);
    asio::local::connect_pair(to_guest, guest_side);
    std::thread(serve_guest, guest_side.release()).detach();

    bool ok = true;
    const int warm = std::min(n, 2000);
    run(to_kilnd, invoke, warm, &ok);  // warms the instance's kept streams, allocator, caches
    run(to_guest, direct, warm, &ok);
    const double cpu0 = thread_cpu_ms(h.thread_.native_handle());
    auto t0 = Clock::now();
    std::vector<double> through = run(to_kilnd, invoke, n, &ok);
    const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = thread_cpu_ms(h.thread_.native_handle()) - cpu0;
    std::vector<double> straight = run(to_guest, direct, n, &ok);
    if (!ok) {
      rc = 1;
    } else {
      std::printf("kilnd in-process, fake instance (keep-alive HTTP server on a socketpair), %d invocations, "
                  "kept connections on both paths\n",
                  n);
      std::printf("through kilnd (tcp, keep-alive): p50 %.3f ms, p99 %.3f ms, %.0f req/s\n", percentile(through, 50),
                  percentile(through, 99), n / wall_s);
      std::printf("straight to the instance:        p50 %.3f ms, p99 %.3f ms\n", percentile(straight, 50),
                  percentile(straight, 99));
      std::printf("added p50: %.3f ms\n", percentile(through, 50) - percentile(straight, 50));
      std::printf("kilnd event-loop CPU per invocation: %.1f us\n", cpu * 1000.0 / n);
    }
    to_kilnd.close(ec);
    to_guest.close(ec);
  }
  std::filesystem::remove_all(dir);
  return rc;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) { return kiln::bench::main_impl(argc, argv); }

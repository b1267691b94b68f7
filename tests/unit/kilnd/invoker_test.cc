// The invoker against a pool on the fake backend: bare-LF answers are accepted, invalid HTTP is
// a clear error, and a cold start slower than the timeout is not billed against it (Lambda's
// rule) while a slow function still times out.
#include <gtest/gtest.h>

#include "src/invoke/invoker.h"
#include "src/invoke/response_reader.h"
#include "tests/unit/kilnd/support/fake_backend.h"

namespace kiln::kilnd::invoke {
namespace {

using namespace std::chrono_literals;

TEST(ResponseReader, FindsTheEndOfCrlfBareLfAndMixedHeaderBlocks) {
  EXPECT_EQ(header_block_end("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), 25u);
  EXPECT_EQ(header_block_end("HTTP/1.1 200 OK\nA: b\n\nbody"), 22u);
  EXPECT_EQ(header_block_end("HTTP/1.1 200 OK\nA: b\r\n\nbody"), 23u);
  EXPECT_EQ(header_block_end("HTTP/1.1 200 OK\r\nA: b\n\r\nbody"), 24u);
  EXPECT_FALSE(header_block_end("HTTP/1.1 200 OK\r\nA: b\r\n"));
  EXPECT_FALSE(header_block_end(""));
}

TEST(ResponseReader, NormalisesOnlyBareLineFeeds) {
  EXPECT_EQ(normalize_header_block("HTTP/1.1 200 OK\nA: b\r\n\n"), "HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
  EXPECT_EQ(normalize_header_block("X\r\n\r\n"), "X\r\n\r\n");
  EXPECT_EQ(normalize_header_block("\n"), "\r\n");
}

// One pool of one instance on the fake backend, driven by a real io_context.
struct Harness {
  asio::io_context io;
  test::FakeBackend backend{&io};
  std::shared_ptr<pool::FunctionPool> pool;

  explicit Harness(pool::PoolSettings s = {}) {
    s.max_instances = 1;
    pool = std::make_shared<pool::FunctionPool>("fn", s, backend, [](const std::string& id) {
      pool::InstanceSpec spec;
      spec.instance_id = id;
      spec.function = "fn";
      return spec;
    }, 1);
  }
  ~Harness() {
    pool->shutdown([] {});
    io.run_for(1s);
  }

  // Guest side: read the request head, answer with `reply` after `delay`, close.
  void serve(std::string reply, std::chrono::milliseconds delay = 0ms) {
    backend.server = [this, reply, delay](local::socket guest) {
      asio::co_spawn(io, [guest = std::move(guest), reply, delay]() mutable -> asio::awaitable<void> {
        std::string in;
        beast::error_code ec;
        co_await asio::async_read_until(guest, asio::dynamic_buffer(in), "\r\n\r\n", asio::redirect_error(asio::use_awaitable, ec));
        asio::steady_timer t(co_await asio::this_coro::executor, delay);
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_await asio::async_write(guest, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
        guest.close();
      }, asio::detached);
    };
  }

  // Guest side speaking HTTP/1.1 keep-alive: answers requests on each connection until the
  // client closes; `reply(connection, request)` gives the answer, "" = close without one.
  // Counts the connections it was given.
  int connections = 0;
  void serve_kept(std::function<std::string(int connection, int request)> reply) {
    backend.server = [this, reply](local::socket guest) {
      int conn = ++connections;
      asio::co_spawn(io, [guest = std::move(guest), reply, conn]() mutable -> asio::awaitable<void> {
        beast::flat_buffer buf;
        for (int n = 1;; ++n) {
          http::request<http::string_body> req;
          beast::error_code ec;
          co_await http::async_read(guest, buf, req, asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
          std::string answer = reply(conn, n);
          if (answer.empty()) co_return;  // closes
          co_await asio::async_write(guest, asio::buffer(answer), asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
        }
      }, asio::detached);
    };
  }

  InvokeResult run(std::chrono::milliseconds timeout) {
    GuestRequest req{http::verb::post, "/event-invoke", 11};
    req.body() = "{}";
    InvokeOptions opts;
    opts.timeout = timeout;
    std::optional<InvokeResult> got;
    asio::co_spawn(io, invoke(pool, std::move(req), opts), [&got](std::exception_ptr, InvokeResult r) { got = std::move(r); });
    while (!got && io.run_one_for(10s)) {
    }
    io.restart();
    EXPECT_TRUE(got.has_value());
    return got ? *got : InvokeResult{};
  }

  // Makes every started instance ready `after` from now.
  void ready_after(std::chrono::milliseconds after) {
    auto timer = std::make_shared<asio::steady_timer>(io, after);
    timer->async_wait([this, timer](beast::error_code) {
      for (const auto& id : backend.live()) backend.ready(id);
    });
  }
};

TEST(Invoker, AcceptsBareLfHeaders) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve("HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 5\n\nhello");
  InvokeResult r = h.run(2000ms);
  ASSERT_EQ(r.status, InvokeStatus::kOk) << r.detail;
  EXPECT_EQ(r.response.result_int(), 200);
  EXPECT_EQ(r.response.body(), "hello");
  EXPECT_EQ(r.response[http::field::content_type], "text/plain");
}

TEST(Invoker, InvalidHttpIsAClearErrorAndRecyclesTheInstance) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve("this is not http\n\n");
  InvokeResult r = h.run(2000ms);
  EXPECT_EQ(r.status, InvokeStatus::kCrash);
  EXPECT_NE(r.detail.find("invalid HTTP"), std::string::npos) << r.detail;
}

TEST(Invoker, ColdStartLongerThanTheTimeoutIsNotBilledAgainstIt) {
  Harness h;
  h.serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  h.ready_after(400ms);  // init takes four times the timeout
  InvokeResult r = h.run(100ms);
  ASSERT_EQ(r.status, InvokeStatus::kOk) << r.detail;
  EXPECT_TRUE(r.cold_start);
  EXPECT_EQ(r.response.body(), "ok");
}

TEST(Invoker, TheTimeoutStillBoundsTheFunctionItself) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 600ms);
  InvokeResult r = h.run(100ms);
  EXPECT_EQ(r.status, InvokeStatus::kTimeout);
  EXPECT_NE(r.detail.find("Task timed out after 0.10 seconds"), std::string::npos) << r.detail;
}

TEST(Invoker, WaitingForAnInstanceIsBoundedByTheStartAllowancePlusTimeout) {
  pool::PoolSettings s;
  s.start_timeout = 200ms;
  Harness h(s);
  h.serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");  // never ready
  InvokeResult r = h.run(100ms);
  EXPECT_EQ(r.status, InvokeStatus::kTimeout);
  EXPECT_NE(r.detail.find("no instance became available within 0.30 seconds"), std::string::npos) << r.detail;
}

// Keep-alive to the function's server: a stream it keeps open serves the next invocation (no
// new vsock connection); one it closes, or asks to close, does not; a kept stream the server
// closed just as it was reused costs the request nothing (it goes once more on a new stream),
// while a new stream closed without an answer is still the function's crash.
TEST(Invoker, KeptAliveStreamServesTheNextInvocations) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve_kept([](int conn, int n) {
    std::string body = std::to_string(conn) + "/" + std::to_string(n);
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  });
  for (const char* want : {"1/1", "1/2", "1/3"}) {
    InvokeResult r = h.run(2000ms);
    ASSERT_EQ(r.status, InvokeStatus::kOk) << r.detail;
    EXPECT_EQ(r.response.body(), want);
  }
  EXPECT_EQ(h.connections, 1);
}

TEST(Invoker, ConnectionCloseAnswersAreNotReused) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve_kept([](int conn, int) {
    std::string body = std::to_string(conn);
    return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  });
  EXPECT_EQ(h.run(2000ms).response.body(), "1");
  EXPECT_EQ(h.run(2000ms).response.body(), "2");
  EXPECT_EQ(h.connections, 2);
}

TEST(Invoker, KeptStreamClosedAsItIsReusedRetriesOnANewOne) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve_kept([](int conn, int n) -> std::string {
    if (conn == 1 && n == 2) return "";  // the server drops the kept stream, unanswered
    return "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + std::to_string(conn) + "/" + std::to_string(n);
  });
  EXPECT_EQ(h.run(2000ms).response.body(), "1/1");
  InvokeResult r = h.run(2000ms);
  ASSERT_EQ(r.status, InvokeStatus::kOk) << r.detail;
  EXPECT_EQ(r.response.body(), "2/1");
  EXPECT_EQ(h.connections, 2);
}

// The function exits with the request in hand (a Lambda runtime that crashes mid-invocation):
// the kept stream closes because the instance ended, so there is no retry, and the crash names
// the reason.
TEST(Invoker, KeptStreamClosedByTheFunctionsExitIsACrashWithItsReason) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve_kept([&h](int, int n) -> std::string {
    if (n == 2) {
      for (const auto& id : h.backend.live()) h.backend.end(id, "the function's process exited with code 3");
      return "";
    }
    return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  });
  EXPECT_EQ(h.run(2000ms).response.body(), "ok");
  InvokeResult r = h.run(2000ms);
  EXPECT_EQ(r.status, InvokeStatus::kCrash);
  EXPECT_NE(r.detail.find("exited with code 3"), std::string::npos) << r.detail;
  EXPECT_EQ(h.connections, 1);
}

TEST(Invoker, NewStreamClosedWithoutAnAnswerIsACrash) {
  Harness h;
  h.backend.auto_ready = true;
  h.serve_kept([](int, int) { return std::string(); });
  InvokeResult r = h.run(2000ms);
  EXPECT_EQ(r.status, InvokeStatus::kCrash);
  EXPECT_NE(r.detail.find("closed the connection without a complete response"), std::string::npos) << r.detail;
  EXPECT_EQ(h.connections, 1);
}

}  // namespace
}  // namespace kiln::kilnd::invoke

// HttpServer on 127.0.0.1 port 0 and a Unix socket: keep-alive, body cap (413 before the body
// is read), header cap (431), a header deadline that closes a silent connection, 100-continue,
// malformed requests (400), and a graceful stop that lets an in-flight request finish while
// idle connections are closed and new ones refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "src/server/http_server.h"

namespace kiln::kilnd::server {
namespace {

using Clock = std::chrono::steady_clock;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-http-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void start(ServerOptions o) {
    o.tcp_host = "127.0.0.1";
    o.tcp_port = 0;
    o.unix_path = dir_ + "/s.sock";
    auto s = HttpServer::start(io_, o, [this](Exchange& ex) { return handle(ex); });
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }

  asio::awaitable<void> handle(Exchange& ex) {
    if (ex.request().target() == "/slow") {
      // Answers only when the test releases it (an event, not a sleep).
      release_ = std::make_unique<asio::steady_timer>(io_, std::chrono::hours(1));
      slow_started_ = true;
      beast::error_code ec;
      co_await release_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    Response r = make_response(ex.request(), http::status::ok,
                               std::string(ex.request().target()) + " " + std::to_string(ex.request().body().size()) +
                                   (ex.from_unix_socket() ? " unix" : " tcp"),
                               "text/plain");
    co_await ex.respond(std::move(r));
  }

  // Raw exchange over TCP: sends `bytes`, reads until the server closes (or 20 s).
  std::string raw(const std::string& bytes, tcp::socket* keep = nullptr) {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
    asio::write(s, asio::buffer(bytes));
    std::string out;
    std::array<char, 4096> buf;
    bool done = false;
    std::function<void()> read_more = [&] {
      s.async_read_some(asio::buffer(buf), [&](const beast::error_code& ec, std::size_t n) {
        if (ec) {
          done = true;
          return;
        }
        out.append(buf.data(), n);
        read_more();
      });
    };
    read_more();
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!done && Clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(100));
    if (keep) *keep = std::move(s);
    return out;
  }

  asio::io_context io_;
  std::string dir_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<asio::steady_timer> release_;
  bool slow_started_ = false;
};

TEST_F(ServerTest, KeepAliveThenClose) {
  start({});
  std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  std::string out = raw(two);
  EXPECT_NE(out.find("/a 0 tcp"), std::string::npos) << out;
  EXPECT_NE(out.find("/b 3 tcp"), std::string::npos) << out;
}

TEST_F(ServerTest, BodyCapIs413BeforeReadingTheBody) {
  ServerOptions o;
  o.max_body_bytes = 10;
  start(o);
  std::string out = raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
  out = raw("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n0123456789a\r\n0\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
  out = raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789");
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
}

TEST_F(ServerTest, HeaderCapAndMalformed) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  start(o);
  std::string out = raw("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out;
  out = raw("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
}

TEST_F(ServerTest, SilentConnectionClosedAtHeaderDeadline) {
  ServerOptions o;
  o.header_timeout = std::chrono::milliseconds(200);
  start(o);
  std::string out = raw("GET / HTTP/1.1\r\n");  // never finishes its header
  EXPECT_TRUE(out.empty()) << out;  // closed without an answer
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(ServerTest, ExpectContinue) {
  start({});
  std::string out = raw("PUT /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  EXPECT_EQ(out.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", 0), 0u) << out;
}

TEST_F(ServerTest, UnixSocket) {
  start({});
  local::socket s(io_);
  s.connect(local::endpoint(dir_ + "/s.sock"));
  std::string req = "GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(s, asio::buffer(req));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  bool done = false;
  http::async_read(s, buf, res, [&](const beast::error_code&, std::size_t) { done = true; });
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!done && Clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(100));
  EXPECT_EQ(res.body(), "/u 0 unix");
}

TEST_F(ServerTest, GracefulStopFinishesInFlightAndClosesIdle) {
  start({});
  // An idle keep-alive connection and an in-flight slow request.
  tcp::socket idle(io_);
  idle.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
  tcp::socket slow(io_);
  slow.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()));
  std::string req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(slow, asio::buffer(req));
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!slow_started_ && Clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(slow_started_);
  bool stopped = false;
  server_->stop([&] { stopped = true; });
  // The idle connection is closed by the server.
  char c;
  bool idle_closed = false;
  idle.async_read_some(asio::buffer(&c, 1), [&](const beast::error_code& ec, std::size_t) { idle_closed = !!ec; });
  while (!idle_closed && Clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(idle_closed);
  EXPECT_FALSE(stopped);  // the slow request is still running
  // New connections are refused.
  tcp::socket late(io_);
  beast::error_code ec;
  late.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->tcp_port()), ec);
  EXPECT_TRUE(ec);
  // Release the slow request: it gets its full answer, then the server reports stopped.
  release_->cancel();
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  bool got = false;
  http::async_read(slow, buf, res, [&](const beast::error_code&, std::size_t) { got = true; });
  while ((!got || !stopped) && Clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(got);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "/slow 0 tcp");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace kiln::kilnd::server

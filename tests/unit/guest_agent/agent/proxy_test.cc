// Proxy: a 1 MiB request and answer through one session (back-pressure both ways), the
// half-close of the request side, a refused upstream closing the host connection, and host
// connections opened ahead (kilnd's spares) reaching the app only once they carry bytes.
#include "guest-agent/agent/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "guest-agent/agent/endpoint.h"

namespace kiln::agent {
namespace {

// TCP listener on 127.0.0.1 port 0; returns the fd and the port.
UniqueFd tcp_listener(std::uint16_t* port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd.get(), 8) != 0) {
    return UniqueFd();
  }
  socklen_t len = sizeof(a);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// A broken proxy must fail the test, not hang it: bound every blocking read.
void bound_reads(int fd) {
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

std::string read_to_eof(int fd) {
  bound_reads(fd);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-proxy-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/proxy.sock";
    ASSERT_TRUE(loop_.init().ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs the loop until `client` finishes (the client thread stops the loop via a pipe).
  void run_with_client(std::function<void(int)> client) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    UniqueFd done_r(p[0]), done_w(p[1]);
    ASSERT_TRUE(loop_.add(done_r.get(), EPOLLIN, [this](std::uint32_t) { loop_.stop(); }).ok());
    bool timed_out = false;
    auto timer = loop_.add_timer_ms(30000, [&] {
      timed_out = true;
      loop_.stop();
    });
    std::thread t([&] {
      bool in_progress = false;
      auto c = connect_to(Endpoint::unix_path(path_), &in_progress);
      if (c.ok()) {
        fcntl(c->get(), F_SETFL, fcntl(c->get(), F_GETFL) & ~O_NONBLOCK);
        client(c->get());
      }
      (void)!write(done_w.get(), "x", 1);
    });
    ASSERT_TRUE(loop_.run().ok());
    t.join();
    loop_.cancel_timer(timer);
    loop_.remove(done_r.get());
    EXPECT_FALSE(timed_out);
  }

  // A started proxy from this test's Unix socket to 127.0.0.1:<port>; null (and a failure) if not.
  std::unique_ptr<Proxy> start_proxy(std::uint16_t port) {
    auto l = listen_on(Endpoint::unix_path(path_));
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return nullptr;
    auto proxy = std::make_unique<Proxy>(loop_, std::move(l.value()), port);
    if (!proxy->start().ok()) {
      ADD_FAILURE() << "proxy did not start";
      return nullptr;
    }
    return proxy;
  }

  std::string dir_;
  std::string path_;
  EventLoop loop_;
};

TEST_F(ProxyTest, BulkBothWaysWithHalfClose) {
  std::uint16_t port = 0;
  UniqueFd upstream = tcp_listener(&port);
  ASSERT_TRUE(upstream.valid());
  auto proxy = start_proxy(port);
  ASSERT_TRUE(proxy);

  // Upstream: reads the whole request (to EOF, i.e. the proxied half-close), then answers
  // with the request reversed, then closes.
  std::string seen_by_server;
  std::thread server([&] {
    UniqueFd c(accept4(upstream.get(), nullptr, nullptr, SOCK_CLOEXEC));
    seen_by_server = read_to_eof(c.get());
    std::string answer(seen_by_server.rbegin(), seen_by_server.rend());
    write_all(c.get(), answer);
  });
  std::string request(1 << 20, '\0');
  for (std::size_t i = 0; i < request.size(); ++i) request[i] = static_cast<char>(i * 7 + i / 251);
  std::string answer;
  run_with_client([&](int fd) {
    write_all(fd, request);
    shutdown(fd, SHUT_WR);
    answer = read_to_eof(fd);
  });
  server.join();
  EXPECT_EQ(seen_by_server.size(), request.size());
  EXPECT_TRUE(seen_by_server == request);
  EXPECT_TRUE(answer == std::string(request.rbegin(), request.rend()));
}

TEST_F(ProxyTest, RefusedUpstreamClosesHostConnection) {
  std::uint16_t port = 0;
  {
    UniqueFd probe = tcp_listener(&port);  // find a free port, then close it
  }
  auto proxy = start_proxy(port);
  ASSERT_TRUE(proxy);
  std::vector<std::string> reports;
  proxy->set_reporter([&reports](const std::string& what) { reports.push_back(what); });
  std::string answer = "unset";
  run_with_client([&](int fd) {
    write_all(fd, "GET / HTTP/1.1\r\n\r\n");
    answer = read_to_eof(fd);
  });
  EXPECT_EQ(answer, "");
  EXPECT_EQ(proxy->sessions(), 0u);
  // The function's log learns why (kiln-init reports it as a stderr line).
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("cannot reach the function's server on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << reports[0];
}

TEST_F(ProxyTest, AnIdleHostConnectionReachesTheAppOnlyOnceItCarriesBytes) {
  std::uint16_t port = 0;
  UniqueFd upstream = tcp_listener(&port);
  ASSERT_TRUE(upstream.valid());
  auto proxy = start_proxy(port);
  ASSERT_TRUE(proxy);

  // Upstream: serves connections one at a time, echoing "<n>:<request>" (n = its accept count).
  // Had the proxy connected upstream for the idle connection, that one would come first and
  // block this server (its request never comes).
  std::thread server([&] {
    for (int n = 1; n <= 3; ++n) {
      UniqueFd c(accept4(upstream.get(), nullptr, nullptr, SOCK_CLOEXEC));
      bound_reads(c.get());
      char buf[256];
      ssize_t got = recv(c.get(), buf, sizeof(buf), 0);
      write_all(c.get(), std::to_string(n) + ":" + std::string(buf, got > 0 ? static_cast<std::size_t>(got) : 0));
    }
  });
  std::string spare_answer, first, second;
  run_with_client([&](int idle) {
    auto request = [&](const std::string& text) {
      bool in_progress = false;
      auto c = connect_to(Endpoint::unix_path(path_), &in_progress);
      if (!c.ok()) return std::string("connect failed");
      fcntl(c->get(), F_SETFL, fcntl(c->get(), F_GETFL) & ~O_NONBLOCK);
      write_all(c->get(), text);
      shutdown(c->get(), SHUT_WR);
      return read_to_eof(c->get());
    };
    first = request("a");  // served while `idle` stays open and silent
    {
      bool in_progress = false;
      auto unused = connect_to(Endpoint::unix_path(path_), &in_progress);  // opened, then closed unused
    }
    second = request("b");
    write_all(idle, "c");  // the connection opened first, used last
    shutdown(idle, SHUT_WR);
    spare_answer = read_to_eof(idle);
  });
  server.join();
  EXPECT_EQ(first, "1:a");
  EXPECT_EQ(second, "2:b");  // the unused connection never reached the app
  EXPECT_EQ(spare_answer, "3:c");
}

}  // namespace
}  // namespace kiln::agent

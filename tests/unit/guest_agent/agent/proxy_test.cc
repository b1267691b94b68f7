// Proxy: a 1 MiB request and answer through one session (back-pressure both ways), the
// half-close of the request side, a refused upstream closing the host connection, and host
// connections opened ahead (kilnd's spares) reaching the app only once they carry bytes, and
// the observer told of each request head before the app has it.
#include "guest-agent/agent/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
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
    (void)loop_.remove(done_r.get());
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

  // A TCP listener for the app side (*upstream) and a started proxy to it.
  std::unique_ptr<Proxy> start_proxy_to_upstream(UniqueFd* upstream) {
    std::uint16_t port = 0;
    *upstream = tcp_listener(&port);
    EXPECT_TRUE(upstream->valid());
    return upstream->valid() ? start_proxy(port) : nullptr;
  }

  std::string dir_;
  std::string path_;
  EventLoop loop_;
};

TEST_F(ProxyTest, BulkBothWaysWithHalfClose) {
  UniqueFd upstream;
  auto proxy = start_proxy_to_upstream(&upstream);
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
  UniqueFd upstream;
  auto proxy = start_proxy_to_upstream(&upstream);
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

// Two requests back to back on one kept connection, the first head split over two writes: the
// observer hears of each head (whole, up to its blank line) before the app has read all of it,
// of the app's first answer bytes, and of the connection's end; a body that follows an answer
// (the app answered early) is taken for a head only up to kMaxHead and then let through.
TEST_F(ProxyTest, ObserverHearsOfEachHeadBeforeTheAppHasIt) {
  UniqueFd upstream;
  auto proxy = start_proxy_to_upstream(&upstream);
  ASSERT_TRUE(proxy);
  std::vector<std::string> events;  // loop thread only
  std::atomic<int> heads{0};
  proxy->set_observer(Proxy::Observer{
      [&](std::uint64_t, std::string_view head) {
        events.push_back("request " + std::string(head));
        heads.fetch_add(1);
      },
      [&](std::uint64_t) { events.push_back("answer"); },
      [&](std::uint64_t) { events.push_back("closed"); }});

  const std::string head1 = "POST /a HTTP/1.1\r\nX-Kiln-Request-Id: one\r\nContent-Length: 3\r\n\r\n";
  const std::string head2 = "GET /b HTTP/1.1\r\nX-Kiln-Request-Id: two\r\n\r\n";
  std::vector<int> heads_seen_by_app;  // the observer's count when the app had each whole head
  std::thread server([&] {
    UniqueFd c(accept4(upstream.get(), nullptr, nullptr, SOCK_CLOEXEC));
    bound_reads(c.get());
    std::string got;
    char buf[65536];
    auto read_until = [&](std::size_t size) {
      while (got.size() < size) {
        ssize_t n = recv(c.get(), buf, sizeof(buf), 0);
        if (n <= 0) return false;
        got.append(buf, static_cast<std::size_t>(n));
      }
      return true;
    };
    if (!read_until(head1.size())) return;
    heads_seen_by_app.push_back(heads.load());
    if (!read_until(head1.size() + 3)) return;
    write_all(c.get(), "A1");
    if (!read_until(head1.size() + 3 + head2.size())) return;
    heads_seen_by_app.push_back(heads.load());
    write_all(c.get(), "A2");
    // An early answer, then a body with no blank line in it: let through once kMaxHead long.
    if (!read_until(head1.size() + 3 + head2.size() + Proxy::kMaxHead + 10)) return;
    write_all(c.get(), "A3");
  });
  std::string answers;
  run_with_client([&](int fd) {
    bound_reads(fd);
    char buf[16];
    write_all(fd, head1.substr(0, 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the head arrives in two reads
    write_all(fd, head1.substr(20) + "abc");
    ssize_t n = recv(fd, buf, 2, MSG_WAITALL);
    answers.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    write_all(fd, head2);
    n = recv(fd, buf, 2, MSG_WAITALL);
    answers.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    write_all(fd, std::string(Proxy::kMaxHead + 10, 'x'));
    n = recv(fd, buf, 2, MSG_WAITALL);
    answers.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    shutdown(fd, SHUT_WR);
    read_to_eof(fd);
  });
  server.join();
  EXPECT_EQ(answers, "A1A2A3");
  EXPECT_EQ(heads_seen_by_app, (std::vector<int>{1, 2}));
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0], "request " + head1);
  EXPECT_EQ(events[1], "answer");
  EXPECT_EQ(events[2], "request " + head2);
  EXPECT_EQ(events[3], "answer");
  EXPECT_EQ(events[4], "request " + std::string(Proxy::kMaxHead, 'x'));
  EXPECT_EQ(events[5], "answer");
  EXPECT_EQ(events[6], "closed");
}

}  // namespace
}  // namespace kiln::agent

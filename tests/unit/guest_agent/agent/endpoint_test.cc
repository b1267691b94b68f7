// Endpoint parsing and a Unix-socket listen/connect round trip (the test transport).
#include "guest-agent/agent/endpoint.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <filesystem>

namespace kiln::agent {
namespace {

TEST(Endpoint, Parse) {
  auto v = Endpoint::parse("vsock:2:10001");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, Endpoint::Kind::kVsock);
  EXPECT_EQ(v->cid, 2u);
  EXPECT_EQ(v->port, 10001u);
  auto any = Endpoint::parse("vsock:any:9000");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->cid, kVsockAnyCid);
  EXPECT_EQ(any->describe(), "vsock:any:9000");
  auto u = Endpoint::parse("unix:/run/x.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->path, "/run/x.sock");
  for (const char* bad : {"", "tcp:1", "vsock:", "vsock:2", "vsock:x:1", "vsock:2:99999999999",
                          "unix:", "vsock:2:-1"}) {
    EXPECT_FALSE(Endpoint::parse(bad).ok()) << bad;
  }
}

TEST(Endpoint, UnixPathTooLong) {
  bool in_progress = false;
  EXPECT_FALSE(connect_to(Endpoint::unix_path(std::string(200, 'a')), &in_progress).ok());
}

TEST(Endpoint, UnixListenConnect) {
  char tmpl[] = "/tmp/kiln-ep-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/s.sock";
  auto l = listen_on(Endpoint::unix_path(path));
  ASSERT_TRUE(l.ok()) << l.error().message;
  bool in_progress = false;
  auto c = connect_to(Endpoint::unix_path(path), &in_progress);
  ASSERT_TRUE(c.ok()) << c.error().message;
  pollfd p{l->get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  UniqueFd a(accept4(l->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(a.valid());
  ASSERT_EQ(send(c->get(), "x", 1, MSG_NOSIGNAL), 1);
  char b = 0;
  ASSERT_EQ(recv(a.get(), &b, 1, 0), 1);
  EXPECT_EQ(b, 'x');
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace kiln::agent

// HttpClient request bodies and deadlines against the fake server: a body from memory and from a
// file (Content-Length announced, method kept), a file shorter than its announced size, and a
// total timeout on a server that does not answer.
#include "rootfs-builder/registry/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include "common/io.h"
#include "common/unique_fd.h"
#include "tests/unit/rootfs/support/fake_http_server.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

using namespace kiln::rootfs::testing;

TEST(HttpClient, BodiesFromMemoryAndFromAFile) {
  FakeHttpServer server([](const FakeRequest&) { return FakeResponse{201, {}, ""}; });
  HttpClient http(HttpOptions{});
  RequestBody text = RequestBody::of("hello");
  HttpRequest req;
  req.method = "POST";
  req.url = server.origin() + "/upload";
  req.body = &text;
  auto r = http.perform(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 201);

  TempDir t;
  ASSERT_TRUE(io::write_file_atomic(t / "f", "0123456789").ok());
  UniqueFd fd(::open((t / "f").c_str(), O_RDONLY | O_CLOEXEC));
  RequestBody file = RequestBody::of_file(fd.get(), 10);
  req.method = "PUT";
  req.body = &file;
  r = http.perform(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].headers["content-length"], "5");
  EXPECT_EQ(seen[1].method, "PUT");
  EXPECT_EQ(seen[1].headers["content-length"], "10");
  EXPECT_EQ(seen[1].headers.count("expect"), 0u);

  // A listener that never answers (the kernel accepts the connection and buffers what is sent),
  // so the transfer runs until the body runs out: the file has 10 bytes, the body says 1 MiB.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  RequestBody longer = RequestBody::of_file(fd.get(), 1 << 20);
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/upload";
  req.body = &longer;
  req.timeout = std::chrono::seconds(10);  // only if the abort did not happen
  r = http.perform(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("request body file ended before 1048576 bytes"), std::string::npos)
      << r.error().message;
}

TEST(HttpClient, TotalTimeout) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  FakeHttpServer server([&](const FakeRequest&) {
    released.wait_for(std::chrono::seconds(20));
    return FakeResponse{200, {}, ""};
  });
  HttpClient http(HttpOptions{});
  HttpRequest req;
  req.url = server.origin() + "/slow";
  req.timeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto r = http.perform(req);
  const auto took = std::chrono::steady_clock::now() - start;
  release.set_value();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
}

}  // namespace
}  // namespace kiln::rootfs

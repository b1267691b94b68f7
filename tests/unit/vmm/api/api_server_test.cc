// The real HTTP server over a Unix socket in a temp dir, with a fake controller behind the
// router: round trips, keep-alive, size cap, malformed HTTP, deadlines, socket file handling.
#include "vmm/api/api_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "common/unique_fd.h"
#include "vmm/logging/logger.h"
#include "tests/unit/vmm/api/fake_controller.h"

namespace kiln::vmm::api {
namespace {

using nlohmann::json;

constexpr int kDeadlineMs = 10000;  // an upper bound for "the event happened", never a timing check

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
};

UniqueFd connect_to(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads some bytes with a deadline; 0 on EOF, -1 on error or deadline.
ssize_t recv_some(int fd, char* buf, size_t len) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, kDeadlineMs) != 1) return -1;
  return ::recv(fd, buf, len, 0);
}

// Reads one response (headers + Content-Length body).
std::optional<HttpReply> read_reply(int fd, std::string& pending) {
  char buf[4096];
  size_t header_end;
  while ((header_end = pending.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = recv_some(fd, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    pending.append(buf, static_cast<size_t>(n));
  }
  HttpReply r;
  r.head = pending.substr(0, header_end);
  pending.erase(0, header_end + 4);
  if (r.head.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
  r.status = std::stoi(r.head.substr(9, 3));
  size_t length = 0;
  const size_t cl = r.head.find("Content-Length: ");
  if (cl != std::string::npos) length = std::stoul(r.head.substr(cl + 16));
  while (pending.size() < length) {
    const ssize_t n = recv_some(fd, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    pending.append(buf, static_cast<size_t>(n));
  }
  r.body = pending.substr(0, length);
  pending.erase(0, length);
  return r;
}

// True once the peer closed the connection (within the deadline).
bool wait_closed(int fd) {
  char buf[256];
  for (;;) {
    const ssize_t n = recv_some(fd, buf, sizeof(buf));
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

std::string request(std::string_view method, std::string_view target, std::string_view body = "",
                    std::string_view extra_headers = "") {
  std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n";
  r += extra_headers;
  if (!body.empty() || method == "PUT" || method == "PATCH") {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  r += "\r\n";
  r += body;
  return r;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logging::Logger::instance().set_level(logging::LogLevel::kOff);  // keep test output readable
    char tmpl[] = "/tmp/kiln-api-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    sock_ = dir_ + "/api.sock";
  }
  void TearDown() override {
    server_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  void start(ApiServerOptions opts = {}) {
    opts.socket_path = sock_;
    auto s = ApiServer::start(opts, [this](std::string_view m, std::string_view t, std::string_view b) {
      return router_.handle(m, t, b);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(s.value());
  }
  std::optional<HttpReply> roundtrip(const std::string& raw) {
    UniqueFd fd = connect_to(sock_);
    if (!fd || !send_all(fd.get(), raw)) return std::nullopt;
    std::string pending;
    return read_reply(fd.get(), pending);
  }

  std::string dir_, sock_;
  FakeController ctl_;
  logging::MetricsRegistry metrics_;
  ApiRouter router_{ctl_, RouterOptions{"srv-vm", &metrics_}};
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ServerTest, GetInstanceInfoRoundTrip) {
  start();
  auto r = roundtrip(request("GET", "/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->head.find("Content-Type: application/json"), std::string::npos);
  auto j = json::parse(r->body);
  EXPECT_EQ(j["id"], "srv-vm");
  EXPECT_EQ(j["state"], "Not started");
  EXPECT_EQ(j["app_name"], "kiln");
}

TEST_F(ServerTest, SocketIsPrivate) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ServerTest, PutThenGetOnOneKeptAliveConnection) {
  start();
  UniqueFd fd = connect_to(sock_);
  ASSERT_TRUE(fd);
  std::string pending;
  ASSERT_TRUE(send_all(fd.get(), request("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})")));
  auto put = read_reply(fd.get(), pending);
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 204);
  EXPECT_TRUE(put->body.empty());
  ASSERT_TRUE(send_all(fd.get(), request("GET", "/machine-config")));
  auto get = read_reply(fd.get(), pending);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(json::parse(get->body)["vcpu_count"], 2);
  // Two pipelined requests in one write are both answered, in order.
  ASSERT_TRUE(send_all(fd.get(), request("GET", "/nope") + request("GET", "/")));
  auto first = read_reply(fd.get(), pending);
  auto second = read_reply(fd.get(), pending);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 400);
  EXPECT_EQ(second->status, 200);
}

TEST_F(ServerTest, ErrorsCarryFaultMessage) {
  start();
  auto r = roundtrip(request("PUT", "/drives/a", R"({"drive_id": "b", "path_on_host": "/x", "is_root_device": false})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["fault_message"], "The id from the path does not match the id from the body!");
}

TEST_F(ServerTest, OversizedBodyIsRefusedWith413) {
  ApiServerOptions opts;
  opts.max_body_bytes = 1024;
  start(opts);
  const std::string body(2000, ' ');
  auto r = roundtrip(request("PUT", "/machine-config", body));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(json::parse(r->body)["fault_message"].get<std::string>().find("larger than the limit of 1024"),
            std::string::npos);
  // At the limit is fine (and then fails as JSON, which proves it reached the router).
  auto ok = roundtrip(request("PUT", "/machine-config", std::string(1024, ' ')));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 400);
  EXPECT_EQ(ctl_.calls.size(), 0u);
}

TEST_F(ServerTest, OversizedChunkedBodyIsRefused) {
  ApiServerOptions opts;
  opts.max_body_bytes = 100;
  start(opts);
  std::string raw = "PUT /machine-config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  raw += "c8\r\n" + std::string(200, 'a') + "\r\n0\r\n\r\n";
  auto r = roundtrip(raw);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(ServerTest, ExpectContinueIsHonoured) {
  start();
  UniqueFd fd = connect_to(sock_);
  ASSERT_TRUE(fd);
  const std::string body = R"({"vcpu_count": 1, "mem_size_mib": 64})";
  std::string head = "PUT /machine-config HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  ASSERT_TRUE(send_all(fd.get(), head));
  std::string pending;
  auto cont = read_reply(fd.get(), pending);  // "HTTP/1.1 100 Continue" has no body
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(send_all(fd.get(), body));
  auto r = read_reply(fd.get(), pending);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
}

TEST_F(ServerTest, MalformedHttpGets400AndClose) {
  start();
  UniqueFd fd = connect_to(sock_);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "THIS IS NOT HTTP\r\n\r\n"));
  std::string pending;
  auto r = read_reply(fd.get(), pending);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(json::parse(r->body).contains("fault_message"));
  EXPECT_TRUE(wait_closed(fd.get()));
}

TEST_F(ServerTest, HugeHeadersAreRefused) {
  ApiServerOptions opts;
  opts.max_header_bytes = 1024;
  start(opts);
  auto r = roundtrip(request("GET", "/", "", "X-Big: " + std::string(4000, 'a') + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
}

TEST_F(ServerTest, IdleConnectionIsClosedAtHeaderDeadline) {
  ApiServerOptions opts;
  opts.header_timeout = std::chrono::milliseconds(100);
  start(opts);
  UniqueFd fd = connect_to(sock_);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "GET / HTTP/1.1\r\n"));  // never finishes the headers
  EXPECT_TRUE(wait_closed(fd.get()));
  // The server still serves others.
  auto r = roundtrip(request("GET", "/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, ConnectionsAreBounded) {
  ApiServerOptions opts;
  opts.max_connections = 2;
  start(opts);
  UniqueFd a = connect_to(sock_), b = connect_to(sock_);
  ASSERT_TRUE(a && b);
  // Make sure both are accepted and served before the third arrives.
  std::string pa, pb;
  ASSERT_TRUE(send_all(a.get(), request("GET", "/")) && read_reply(a.get(), pa));
  ASSERT_TRUE(send_all(b.get(), request("GET", "/")) && read_reply(b.get(), pb));
  UniqueFd c = connect_to(sock_);
  ASSERT_TRUE(c);
  EXPECT_TRUE(wait_closed(c.get()));
  a.reset();
  b.reset();
  // Slots free up once the clients leave; a new client is eventually served.
  std::optional<HttpReply> r;
  for (int attempt = 0; attempt < 100 && !r; ++attempt) r = roundtrip(request("GET", "/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, HandlerExceptionBecomes500) {
  auto s = ApiServer::start(ApiServerOptions{sock_}, [](std::string_view, std::string_view, std::string_view) -> ApiResponse {
    throw std::runtime_error("boom");
  });
  ASSERT_TRUE(s.ok());
  server_ = std::move(s.value());
  auto r = roundtrip(request("GET", "/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(ServerTest, StaleSocketIsReplacedAndStopRemovesIt) {
  {
    // A socket file left behind by a dead process.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_EQ(::access(sock_.c_str(), F_OK), 0);
  start();
  auto r = roundtrip(request("GET", "/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  server_->stop();
  EXPECT_NE(::access(sock_.c_str(), F_OK), 0);
  EXPECT_FALSE(connect_to(sock_));
  server_->stop();  // idempotent
}

TEST_F(ServerTest, StopFromAHandlerDoesNotDeadlock) {
  ApiServer* self = nullptr;
  auto s = ApiServer::start(ApiServerOptions{sock_}, [&self](std::string_view, std::string_view, std::string_view) {
    self->stop();
    return ApiResponse::no_content();
  });
  ASSERT_TRUE(s.ok());
  server_ = std::move(s.value());
  self = server_.get();
  UniqueFd fd = connect_to(sock_);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), request("GET", "/")));
  EXPECT_TRUE(wait_closed(fd.get()));  // the loop stopped (the response may or may not be out)
  server_.reset();                     // joins from this thread
  EXPECT_NE(::access(sock_.c_str(), F_OK), 0);
}

TEST_F(ServerTest, RefusesToDeleteANonSocketFile) {
  std::ofstream(sock_) << "precious";
  auto s = ApiServer::start(ApiServerOptions{sock_}, [](std::string_view, std::string_view, std::string_view) {
    return ApiResponse::no_content();
  });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not a socket"), std::string::npos);
  std::ifstream in(sock_);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(ServerTest, TooLongSocketPathIsAnError) {
  auto s = ApiServer::start(ApiServerOptions{dir_ + "/" + std::string(200, 'a')},
                            [](std::string_view, std::string_view, std::string_view) { return ApiResponse::no_content(); });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("--api-sock"), std::string::npos);
}

TEST_F(ServerTest, FullBootFlowThroughTheSocket) {
  start();
  const std::string kernel = dir_ + "/vmlinux";
  std::ofstream(kernel) << "ELF";
  auto put = [&](std::string_view path, const std::string& body) {
    auto r = roundtrip(request("PUT", path, body));
    return r ? r->status : -1;
  };
  EXPECT_EQ(put("/boot-source", R"({"kernel_image_path": ")" + kernel + R"("})"), 204);
  EXPECT_EQ(put("/vsock", R"({"guest_cid": 3, "uds_path": ")" + dir_ + R"(/v.sock"})"), 204);
  EXPECT_EQ(put("/actions", R"({"action_type": "InstanceStart"})"), 204);
  EXPECT_EQ(ctl_.count("start"), 1u);
  EXPECT_EQ(put("/actions", R"({"action_type": "InstanceStart"})"), 400);
  auto info = roundtrip(request("GET", "/"));
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["state"], "Running");
  auto patch = roundtrip(request("PATCH", "/vm", R"({"state": "Paused"})"));
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 204);
  EXPECT_EQ(put("/snapshot/create", R"({"snapshot_path": "/s", "mem_file_path": "/m"})"), 204);
  EXPECT_EQ(ctl_.count("create_snapshot"), 1u);
}

}  // namespace
}  // namespace kiln::vmm::api

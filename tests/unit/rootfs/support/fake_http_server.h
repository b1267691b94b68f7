// A tiny HTTP/1.1 server on 127.0.0.1:0 for registry-protocol tests the real registry cannot
// stage (bearer token flow, redirects to another origin, lying headers). One request per
// connection; handler runs on the server thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace kiln::rootfs::testing {

struct FakeRequest {
  std::string method, target;                  // target includes the query string
  std::map<std::string, std::string> headers;  // lowercased names
};

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long content_length = -1;  // >= 0: announce this length instead (e.g. to cut a body short)
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  int port() const { return port_; }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<FakeRequest> requests() const;

 private:
  void serve();
  void handle(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<FakeRequest> log_;
  std::thread thread_;
};

}  // namespace kiln::rootfs::testing

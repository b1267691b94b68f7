// HTTP/1.1 server for the API on a Unix socket (Boost.Beast), on its own thread. One
// session per connection, every read under a deadline, body size capped, connections
// bounded. Requests are handed, one at a time, to a handler (normally ApiRouter::handle).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "vmm/api/api_router.h"

namespace kiln::vmm::api {

using RequestHandler =
    std::function<ApiResponse(std::string_view method, std::string_view target, std::string_view body)>;

struct ApiServerOptions {
  std::string socket_path;
  size_t max_body_bytes = 51200;  // Firecracker's default --http-api-max-payload-size
  size_t max_header_bytes = 8192;
  // Covers waiting for the next request on a kept-alive connection and reading its headers.
  std::chrono::milliseconds header_timeout{60000};
  std::chrono::milliseconds body_timeout{10000};
  size_t max_connections = 16;
};

class ApiServer {
 public:
  // Removes a stale socket file at the path (only if it is a socket), binds, listens with
  // mode 0600 and starts the server thread. The handler runs on that thread.
  static Result<std::unique_ptr<ApiServer>> start(ApiServerOptions options, RequestHandler handler);

  // Stops the thread, closes every connection and removes the socket file. From a handler
  // (the server thread) stop() only halts the loop; the owner must still destroy the server
  // from another thread.
  ~ApiServer();
  void stop();

  const std::string& socket_path() const;

  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  struct Impl;

 private:
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::vmm::api

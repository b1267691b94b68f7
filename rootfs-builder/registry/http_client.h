// A small blocking HTTP(S) client over libcurl for registry requests. Redirects are NOT
// followed here: the registry client follows them itself to control credential forwarding.
// One client is one curl easy handle: use it from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::rootfs {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercased names; last value wins
  std::string body;                             // when no sink was given (capped)
  std::string effective_url;
};

struct HttpOptions {
  bool tls_verify = true;
  std::string ca_file;
};

// A request body (uploads): bytes in memory, or `size` bytes of the file open at `fd` from
// byte 0 (read with pread, so the same body can be sent again, e.g. after a 401). A file
// shorter than `size` aborts the transfer. The fd is borrowed.
struct RequestBody {
  std::string data;
  int fd = -1;
  uint64_t size = 0;

  static RequestBody of(std::string bytes) {
    RequestBody b;
    b.size = bytes.size();
    b.data = std::move(bytes);
    return b;
  }
  static RequestBody of_file(int fd, uint64_t size) {
    RequestBody b;
    b.fd = fd;
    b.size = size;
    return b;
  }
};

using BodySink = std::function<bool(const char*, size_t)>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  size_t max_body = 64 << 10;  // cap of HttpResponse::body
  // Receives the body of 2xx responses (return false to abort with *sink_error); other bodies
  // (and all bodies when sink is empty) land in HttpResponse::body, up to max_body.
  BodySink sink;
  std::string* sink_error = nullptr;
  const RequestBody* body = nullptr;  // sent when set (Content-Length: body->size)
  // Total time for the whole exchange (connect, send, receive); 0: none (connects still time out
  // after 30 s and a transfer stalled for 60 s is aborted).
  std::chrono::milliseconds timeout{0};
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // sink receives the body of 2xx responses (return false to abort with sink_error);
  // other bodies (and all bodies when sink is empty) land in HttpResponse::body, up to max_body.
  Result<HttpResponse> request(const std::string& method, const std::string& url,
                               const std::vector<std::string>& headers, size_t max_body,
                               const std::function<bool(const char*, size_t)>& sink = {},
                               std::string* sink_error = nullptr);
  // The general form: errors are transport failures ("HTTP request to URL failed: ...", with
  // "Operation timed out after N milliseconds ..." when `timeout` ran out), an aborted sink, a body over max_body or a
  // request body whose file ended early; any HTTP status is a response.
  Result<HttpResponse> perform(const HttpRequest& req);

 private:
  HttpOptions opts_;
  void* curl_ = nullptr;  // CURL*
};

// Resolves a Location header against the URL it came from (RFC 3986 §5).
Result<std::string> resolve_url(const std::string& base, const std::string& location);
// "scheme://host:port" of a URL, with default ports made explicit.
Result<std::string> url_origin(const std::string& url);

}  // namespace kiln::rootfs

// A small blocking HTTP(S) client over libcurl for registry requests. Redirects are NOT
// followed here: the registry client follows them itself to control credential forwarding.
#pragma once

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

 private:
  HttpOptions opts_;
  void* curl_ = nullptr;  // CURL*
};

// Resolves a Location header against the URL it came from (RFC 3986 §5).
Result<std::string> resolve_url(const std::string& base, const std::string& location);
// "scheme://host:port" of a URL, with default ports made explicit.
Result<std::string> url_origin(const std::string& url);

}  // namespace kiln::rootfs

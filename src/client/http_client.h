// HttpClient: the small blocking HTTP/1.1 client the `kiln` CLI (and kilnd's tests) use to
// talk to kilnd over TCP ("host:port") or its Unix socket (a path). One request per call.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "common/result.h"

namespace kiln::kilnd::client {

struct Endpoint {
  std::string host;  // TCP host (empty when unix_path is set)
  std::string port;
  std::string unix_path;
  // "unix:PATH" or anything with a '/' (Unix socket), else "host:port" (or http://host:port).
  static Result<Endpoint> parse(const std::string& text);
};

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct RequestOptions {
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds timeout{0};  // 0: none
  // When set, body bytes are handed over as they arrive (follow streams) and not kept.
  std::function<bool(std::string_view chunk)> on_body;
};

Result<HttpResult> request(const Endpoint& ep, const std::string& method, const std::string& target,
                           const std::string& body = "", const RequestOptions& options = {});

}  // namespace kiln::kilnd::client

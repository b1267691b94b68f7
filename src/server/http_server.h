// HttpServer: HTTP/1.1 on a TCP address and/or a Unix socket (Boost.Beast, one coroutine per
// connection). Every request has a body cap (413), a header/idle deadline and a body deadline;
// stop() stops accepting, closes idle connections and lets in-flight requests finish.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "src/server/net.h"

namespace kiln::kilnd::server {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct ServerOptions {
  std::string tcp_host = "127.0.0.1";  // empty: no TCP listener
  std::uint16_t tcp_port = 0;  // 0: any free port (see tcp_port())
  std::string unix_path;  // empty: no Unix listener
  std::size_t max_body_bytes = 6 * 1024 * 1024 + 64 * 1024;
  std::size_t max_header_bytes = 64 * 1024;
  std::chrono::milliseconds header_timeout{10000};  // first request: whole header
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive: until the next header
  std::chrono::milliseconds body_timeout{60000};
  std::chrono::milliseconds write_timeout{60000};
  std::size_t max_connections = 4096;
};

// One request being answered. Handlers either respond() once, or stream: start_stream(),
// write_chunk()* (false = the client is gone or the server stops), then end_stream().
// A handler answers in one line: `co_return co_await ex.respond(json_error(...));`. (GCC 12
// destroys a braced aggregate temporary in a co_await expression twice, e.g.
// `respond(f(Reply{...}))`: build such a value in a variable first.)
class Exchange {
 public:
  virtual ~Exchange() = default;
  Request& request() { return request_; }
  bool from_unix_socket() const { return unix_; }
  // The client's address ("203.0.113.7", "::1"); "" on the Unix socket.
  const std::string& peer_address() const { return peer_; }
  virtual asio::awaitable<void> respond(Response response) = 0;
  virtual asio::awaitable<bool> start_stream(http::status status, std::string content_type) = 0;
  virtual asio::awaitable<bool> write_chunk(std::string data) = 0;
  virtual asio::awaitable<void> end_stream() = 0;
  bool responded() const { return responded_; }

 protected:
  Request request_;
  bool unix_ = false;
  std::string peer_;
  bool responded_ = false;
};

using Handler = std::function<asio::awaitable<void>(Exchange&)>;

// A plain response with the common headers.
Response make_response(const Request& req, http::status status, std::string body,
                       std::string content_type = "application/json");
// A JSON body (compact, invalid UTF-8 replaced, one trailing newline).
Response json_response(const Request& req, http::status status, const nlohmann::json& body);
// {"error": code, "message": message} (+ "field" when given).
Response json_error(const Request& req, http::status status, std::string_view code, std::string_view message,
                    std::string_view field = {});

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> start(asio::io_context& io, ServerOptions options, Handler handler);
  ~HttpServer();

  std::uint16_t tcp_port() const { return tcp_port_; }
  // Stops accepting and closes idle connections; calls done() once no connection is left.
  void stop(std::function<void()> done);
  bool stopping() const { return stopping_; }
  std::size_t connections() const { return connections_; }

 private:
  HttpServer(asio::io_context& io, ServerOptions options, Handler handler);
  asio::awaitable<void> accept_tcp();
  asio::awaitable<void> accept_unix();
  template <typename Stream>
  asio::awaitable<void> session(Stream stream, bool is_unix, std::string peer);
  void session_ended();

  asio::io_context& io_;
  ServerOptions options_;
  Handler handler_;
  std::unique_ptr<tcp::acceptor> tcp_;
  std::unique_ptr<local::acceptor> unix_;
  std::uint16_t tcp_port_ = 0;
  bool stopping_ = false;
  std::size_t connections_ = 0;
  std::function<void()> stop_done_;
  // Idle-connection cancellers, keyed by a session id; run on stop().
  std::map<std::uint64_t, std::function<void()>> idle_;
  std::uint64_t next_session_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::server

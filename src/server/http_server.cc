// Beast HTTP/1.1 server: accept loops for TCP and a Unix socket, one coroutine per connection
// with header/idle/body/write deadlines, body cap, 100-continue, graceful stop.
#include "src/server/http_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace kiln::kilnd::server {
namespace {

using LocalStream = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;
using asio::use_awaitable;

template <typename Stream>
class StreamExchange : public Exchange {
 public:
  StreamExchange(Stream& s, const ServerOptions& o, bool is_unix, std::string peer, const bool& stopping)
      : s_(s), o_(o), stopping_(stopping) {
    unix_ = is_unix;
    peer_ = std::move(peer);
  }

  asio::awaitable<void> respond(Response response) override {
    if (responded_) co_return;
    responded_ = true;
    if (stopping_) response.keep_alive(false);  // draining: this is the connection's last answer
    response.prepare_payload();
    keep_alive_ = response.keep_alive();
    s_.expires_after(o_.write_timeout);
    beast::error_code ec;
    co_await http::async_write(s_, response, asio::redirect_error(use_awaitable, ec));
    s_.expires_never();
    if (ec) broken_ = true;
  }

  asio::awaitable<bool> start_stream(http::status status, std::string content_type) override {
    if (responded_) co_return false;
    responded_ = true;
    streaming_ = true;
    http::response<http::empty_body> res{status, request_.version()};
    res.set(http::field::server, "kilnd");
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-cache");
    res.chunked(true);
    res.keep_alive(false);
    keep_alive_ = false;
    http::response_serializer<http::empty_body> sr{res};
    s_.expires_after(o_.write_timeout);
    beast::error_code ec;
    co_await http::async_write_header(s_, sr, asio::redirect_error(use_awaitable, ec));
    s_.expires_never();
    if (ec) broken_ = true;
    co_return !broken_;
  }

  asio::awaitable<bool> write_chunk(std::string data) override {
    if (!streaming_ || broken_) co_return false;
    if (data.empty()) co_return true;  // an empty chunk would end the stream
    s_.expires_after(o_.write_timeout);
    beast::error_code ec;
    co_await asio::async_write(s_, http::make_chunk(asio::buffer(data)), asio::redirect_error(use_awaitable, ec));
    s_.expires_never();
    if (ec) broken_ = true;
    co_return !broken_;
  }

  asio::awaitable<void> end_stream() override {
    if (!streaming_ || broken_) co_return;
    streaming_ = false;
    s_.expires_after(o_.write_timeout);
    beast::error_code ec;
    co_await asio::async_write(s_, http::make_chunk_last(), asio::redirect_error(use_awaitable, ec));
    s_.expires_never();
    if (ec) broken_ = true;
  }

  bool keep_alive() const { return keep_alive_ && !broken_; }

 private:
  Stream& s_;
  const ServerOptions& o_;
  const bool& stopping_;
  bool keep_alive_ = false;
  bool streaming_ = false;
  bool broken_ = false;
};

template <typename Stream>
asio::awaitable<void> write_plain(Stream& s, Response res, std::chrono::milliseconds timeout) {
  res.keep_alive(false);
  res.prepare_payload();
  s.expires_after(timeout);
  beast::error_code ec;
  co_await http::async_write(s, res, asio::redirect_error(use_awaitable, ec));
}

}  // namespace

Response make_response(const Request& req, http::status status, std::string body, std::string content_type) {
  Response res{status, req.version()};
  res.set(http::field::server, "kilnd");
  if (!content_type.empty()) res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  return res;
}

Response json_error(const Request& req, http::status status, std::string_view code, std::string_view message,
                    std::string_view field) {
  nlohmann::json j = {{"error", code}, {"message", message}};
  if (!field.empty()) j["field"] = field;
  return json_response(req, status, j);
}

Response json_response(const Request& req, http::status status, const nlohmann::json& body) {
  return make_response(req, status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

HttpServer::HttpServer(asio::io_context& io, ServerOptions options, Handler handler)
    : io_(io), options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() { alive_.reset(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& io, ServerOptions options, Handler handler) {
  std::unique_ptr<HttpServer> s(new HttpServer(io, std::move(options), std::move(handler)));
  beast::error_code ec;
  if (!s->options_.tcp_host.empty()) {
    auto addr = asio::ip::make_address(s->options_.tcp_host, ec);
    if (ec) return make_error("--listen: invalid address " + s->options_.tcp_host);
    s->tcp_ = std::make_unique<tcp::acceptor>(io);
    tcp::endpoint ep(addr, s->options_.tcp_port);
    s->tcp_->open(ep.protocol(), ec);
    if (!ec) s->tcp_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) s->tcp_->bind(ep, ec);
    if (!ec) s->tcp_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error("listen on " + s->options_.tcp_host + ":" + std::to_string(s->options_.tcp_port) + ": " + ec.message());
    s->tcp_port_ = s->tcp_->local_endpoint().port();
  }
  if (!s->options_.unix_path.empty()) {
    ::unlink(s->options_.unix_path.c_str());  // a stale socket from an earlier run
    s->unix_ = std::make_unique<local::acceptor>(io);
    local::endpoint ep(s->options_.unix_path);
    s->unix_->open(ep.protocol(), ec);
    if (!ec) s->unix_->bind(ep, ec);
    if (!ec) s->unix_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error("listen on " + s->options_.unix_path + ": " + ec.message());
    ::chmod(s->options_.unix_path.c_str(), 0600);
  }
  if (s->tcp_) asio::co_spawn(io, s->accept_tcp(), asio::detached);
  if (s->unix_) asio::co_spawn(io, s->accept_unix(), asio::detached);
  return s;
}

asio::awaitable<void> HttpServer::accept_tcp() {
  while (!stopping_) {
    beast::error_code ec;
    tcp::socket sock = co_await tcp_->async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      continue;  // EMFILE and friends: keep serving the connections we have
    }
    if (connections_ >= options_.max_connections) continue;  // closes on scope exit
    sock.set_option(tcp::no_delay(true), ec);
    const tcp::endpoint peer = sock.remote_endpoint(ec);
    ++connections_;
    asio::co_spawn(io_, session(beast::tcp_stream(std::move(sock)), false, ec ? std::string() : peer.address().to_string()),
                   asio::detached);
  }
}

asio::awaitable<void> HttpServer::accept_unix() {
  while (!stopping_) {
    beast::error_code ec;
    local::socket sock = co_await unix_->async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      continue;
    }
    if (connections_ >= options_.max_connections) continue;
    ++connections_;
    asio::co_spawn(io_, session(LocalStream(std::move(sock)), true, std::string()), asio::detached);
  }
}

template <typename Stream>
asio::awaitable<void> HttpServer::session(Stream stream, bool is_unix, std::string peer) {
  std::uint64_t sid = next_session_++;
  beast::flat_buffer buffer;
  bool first = true;
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser.body_limit(options_.max_body_bytes);
    beast::error_code ec;
    // Waiting for a request: an idle connection, closed right away by stop().
    idle_[sid] = [&stream] { stream.cancel(); };
    stream.expires_after(first ? options_.header_timeout : options_.idle_timeout);
    co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    idle_.erase(sid);
    if (ec) {
      if (ec == http::error::body_limit) {  // Content-Length over the cap, known from the header
        co_await write_plain(stream, json_error(Request{}, http::status::payload_too_large, "payload_too_large",
                                                "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes"),
                             options_.write_timeout);
      } else if (ec == http::error::header_limit) {
        co_await write_plain(stream, json_error(Request{}, http::status::request_header_fields_too_large,
                                                "header_too_large", "request header too large"),
                             options_.write_timeout);
      } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                 ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
                 ec != asio::error::eof) {
        co_await write_plain(stream, json_error(Request{}, http::status::bad_request, "bad_request",
                                                "malformed HTTP request: " + ec.message()),
                             options_.write_timeout);
      }
      break;
    }
    const auto& hdr = parser.get();
    if (parser.content_length() && *parser.content_length() > options_.max_body_bytes) {
      co_await write_plain(stream, json_error(Request{}, http::status::payload_too_large, "payload_too_large",
                                              "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes"),
                           options_.write_timeout);
      break;
    }
    if (beast::iequals(hdr[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, hdr.version()};
      stream.expires_after(options_.write_timeout);
      co_await http::async_write(stream, cont, asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
    if (!parser.is_done()) {
      stream.expires_after(options_.body_timeout);
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == http::error::body_limit) {
          co_await write_plain(stream, json_error(Request{}, http::status::payload_too_large, "payload_too_large",
                                                  "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes"),
                               options_.write_timeout);
        }
        break;
      }
    }
    stream.expires_never();
    StreamExchange<Stream> ex(stream, options_, is_unix, peer, stopping_);
    ex.request() = parser.release();
    bool failed = false;
    std::string what;
    try {
      co_await handler_(ex);
    } catch (const std::exception& e) {
      failed = true;
      what = e.what();
    }
    if (failed && !ex.responded()) {
      co_await ex.respond(json_error(ex.request(), http::status::internal_server_error, "internal", what));
    } else if (!ex.responded()) {
      co_await ex.respond(json_error(ex.request(), http::status::internal_server_error, "internal", "no response"));
    }
    if (!ex.keep_alive()) break;
    first = false;
  }
  idle_.erase(sid);
  beast::error_code ignored;
  stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
  stream.close();
  session_ended();
}

void HttpServer::session_ended() {
  if (connections_ > 0) --connections_;
  if (stopping_ && connections_ == 0 && stop_done_) {
    auto done = std::move(stop_done_);
    stop_done_ = nullptr;
    asio::post(io_, std::move(done));
  }
}

void HttpServer::stop(std::function<void()> done) {
  stopping_ = true;
  beast::error_code ec;
  if (tcp_) tcp_->close(ec);
  if (unix_) {
    unix_->close(ec);
    ::unlink(options_.unix_path.c_str());
  }
  auto idle = std::move(idle_);
  idle_.clear();
  for (auto& [id, cancel] : idle) cancel();
  stop_done_ = std::move(done);
  if (connections_ == 0 && stop_done_) {
    auto d = std::move(stop_done_);
    stop_done_ = nullptr;
    asio::post(io_, std::move(d));
  }
}

}  // namespace kiln::kilnd::server

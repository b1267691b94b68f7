// Boost.Beast implementation of the API server (see api_server.h). Everything after start()
// runs on the server thread; only stop() crosses threads, through io_context::post.
#include "vmm/api/api_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/unique_fd.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Proto = net::local::stream_protocol;
using Stream = beast::basic_stream<Proto, net::any_io_executor, beast::unlimited_rate_policy>;

namespace {
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}
}  // namespace

class Session;

struct ApiServer::Impl {
  // Declared before io_: sessions destroyed with io_'s pending handlers still use them.
  ApiServerOptions options;
  RequestHandler handler;
  size_t live_sessions = 0;
  std::vector<std::weak_ptr<Session>> sessions;
  bool stopped = false;

  net::io_context io{1};
  Proto::acceptor acceptor{io};
  std::thread thread;

  void accept_next();
  void on_readable(const beast::error_code& ec);
  void close_all();
  void run();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ApiServer::Impl& server, Proto::socket socket) : server_(server), stream_(std::move(socket)) {
    ++server_.live_sessions;
  }
  ~Session() { --server_.live_sessions; }

  void start() { read_header(); }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(Proto::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(server_.options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    // curl sends "Expect: 100-continue" for bodies over 1 KiB and waits for this line.
    auto expect = parser_->get()[http::field::expect];
    if (iequals(std::string_view(expect.data(), expect.size()), "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code wec, size_t) {
                         if (wec) return self->close();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(server_.options.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return close();  // peer left, idled out, or we are stopping
    }
    if (ec == http::error::body_limit) {
      // Beast may refuse a large Content-Length before the header is complete, when
      // content_length() is not yet available: fall back to the raw field.
      std::string size = "unknown";
      if (parser_->is_header_done() && parser_->content_length()) {
        size = std::to_string(*parser_->content_length());
      } else if (auto cl = parser_->get()[http::field::content_length]; !cl.empty()) {
        size = std::string(cl.data(), cl.size());
      }
      return respond(ApiResponse::fault(413, "Request payload with size " + size + " is larger than the limit of " +
                                                 std::to_string(server_.options.max_body_bytes) +
                                                 " allowed by server."),
                     false);
    }
    if (ec == http::error::header_limit) {
      return respond(ApiResponse::fault(431, "Request headers are larger than the limit of " +
                                                 std::to_string(server_.options.max_header_bytes) + " bytes."),
                     false);
    }
    respond(ApiResponse::fault(400, "Invalid HTTP request: " + ec.message() + "."), false);
  }

  void on_body(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    const auto method = req.method_string();
    const auto target = req.target();
    ApiResponse response;
    try {
      response = server_.handler(std::string_view(method.data(), method.size()),
                                 std::string_view(target.data(), target.size()), req.body());
    } catch (...) {
      response = ApiResponse::fault(500, "internal error");
    }
    respond(std::move(response), req.keep_alive());
  }

  void respond(ApiResponse r, bool keep_alive) {
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::server, "kiln-vmm API");
    if (!r.body.empty()) res_.set(http::field::content_type, "application/json");
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    stream_.expires_after(server_.options.body_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) return self->close();
      self->read_header();
    });
  }

  ApiServer::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

void ApiServer::Impl::accept_next() {
  acceptor.async_wait(Proto::acceptor::wait_read, [this](const beast::error_code& ec) { on_readable(ec); });
}

void ApiServer::Impl::on_readable(const beast::error_code& ec) {
  if (stopped || ec == net::error::operation_aborted) return;
  if (!ec) {
    // accept4 rather than asio's accept: the connection fd must be O_CLOEXEC from birth.
    for (;;) {
      const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED) {
          KILN_LOG_WARN("API server: accept: %s", std::strerror(errno));
        }
        break;
      }
      UniqueFd conn(fd);
      if (live_sessions >= options.max_connections) {
        KILN_LOG_WARN("API server: refusing connection, %zu already open", live_sessions);
        continue;  // conn closes here
      }
      Proto::socket sock(io);
      beast::error_code aec;
      sock.assign(Proto(), conn.get(), aec);
      if (aec) continue;
      conn.release();
      auto session = std::make_shared<Session>(*this, std::move(sock));
      std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
      sessions.push_back(session);
      session->start();
    }
  }
  accept_next();
}

// On the server thread: no new connections, every open one closed, loop halted.
void ApiServer::Impl::close_all() {
  stopped = true;
  beast::error_code ec;
  acceptor.close(ec);
  for (auto& weak : sessions) {
    if (auto s = weak.lock()) s->close();
  }
  io.stop();
}

void ApiServer::Impl::run() {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      KILN_LOG_ERROR("API server: unexpected exception: %s", e.what());
    } catch (...) {
      KILN_LOG_ERROR("API server: unexpected exception");
    }
  }
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() { stop(); }

const std::string& ApiServer::socket_path() const { return impl_->options.socket_path; }

Result<std::unique_ptr<ApiServer>> ApiServer::start(ApiServerOptions options, RequestHandler handler) {
  const std::string& path = options.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return make_error("--api-sock " + path + ": path must be 1 to " + std::to_string(sizeof(addr.sun_path) - 1) +
                      " bytes long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  // A socket left behind by a previous run is removed, anything else is not ours to delete.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error("--api-sock " + path + ": exists and is not a socket");
    if (::unlink(path.c_str()) != 0) return errno_error("--api-sock " + path + ": remove stale socket");
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return errno_error("API socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return errno_error("--api-sock " + path + ": bind");
  }
  // Before listen(), so nobody can connect while the mode is still the umask's.
  if (::chmod(path.c_str(), 0600) != 0) {
    auto err = errno_error("--api-sock " + path + ": chmod");
    ::unlink(path.c_str());
    return err;
  }
  if (::listen(fd.get(), 16) != 0) {
    auto err = errno_error("--api-sock " + path + ": listen");
    ::unlink(path.c_str());
    return err;
  }

  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  beast::error_code ec;
  impl->acceptor.assign(Proto(), fd.get(), ec);
  if (ec) {
    ::unlink(path.c_str());
    return make_error("--api-sock " + impl->options.socket_path + ": " + ec.message());
  }
  fd.release();
  impl->accept_next();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

void ApiServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl* impl = impl_.get();
  if (std::this_thread::get_id() == impl->thread.get_id()) {
    // Called from a handler: joining here would deadlock. Stop the loop; the owner's
    // later stop() (or the destructor) joins and removes the socket.
    impl->close_all();
    return;
  }
  net::post(impl->io, [impl] { impl->close_all(); });
  impl->thread.join();
  ::unlink(impl->options.socket_path.c_str());
}

}  // namespace kiln::vmm::api

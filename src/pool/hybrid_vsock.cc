// Hybrid-vsock client (the CONNECT handshake through common/protocol/hybrid_vsock's codec) and
// the one-frame control exchange with kiln-init.
#include "src/pool/hybrid_vsock.h"

#include <memory>

#include "common/protocol/hybrid_vsock.h"

namespace kiln::kilnd::pool {
namespace {

using asio::use_awaitable;

// Cancels (and, with `close`, closes) a socket's pending operations when `deadline` passes;
// the timer is cancelled when the guard goes out of scope.
class SocketDeadline {
 public:
  SocketDeadline(local::socket& sock, std::chrono::steady_clock::time_point deadline, bool close)
      : timer_(sock.get_executor()) {
    timer_.expires_at(deadline);
    timer_.async_wait([&sock, close, fired = fired_](const beast::error_code& ec) {
      if (ec) return;
      *fired = true;
      beast::error_code ignored;
      sock.cancel(ignored);
      if (close) sock.close(ignored);
    });
  }
  ~SocketDeadline() { timer_.cancel(); }
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;
  bool timed_out() const { return *fired_; }

 private:
  std::shared_ptr<bool> fired_ = std::make_shared<bool>(false);
  asio::steady_timer timer_;
};

}  // namespace

asio::awaitable<Result<local::socket>> hybrid_connect(std::string uds_path, std::uint32_t port,
                                                      std::chrono::steady_clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  local::socket sock(ex);
  SocketDeadline guard(sock, deadline, true);
  const std::string where = "vsock port " + std::to_string(port);
  beast::error_code ec;
  co_await sock.async_connect(local::endpoint(uds_path), asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return make_error("connect " + uds_path + ": " + (guard.timed_out() ? std::string("timed out") : ec.message()));
  }
  const std::string hello = protocol::hybrid_connect_request(port);
  co_await asio::async_write(sock, asio::buffer(hello), asio::redirect_error(use_awaitable, ec));
  // Peek at what arrived and take only the reply line: anything after it already belongs to the
  // guest's stream (two system calls for the usual one-segment answer, not one per byte). The
  // codec refuses a line that is not "OK <u32>" or runs past kMaxHybridReply, so this ends.
  std::string taken;  // bytes of the reply read off the socket so far
  while (!ec) {
    char buf[protocol::kMaxHybridReply];
    std::size_t n = co_await sock.async_receive(asio::buffer(buf, sizeof(buf)), local::socket::message_peek,
                                                asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    if (n == 0) {
      ec = asio::error::eof;
      break;
    }
    auto reply = protocol::parse_hybrid_reply(taken + std::string(buf, n));
    if (!reply.ok()) co_return make_error(where + ": bad answer (" + reply.error().message + ")");
    const std::size_t take = reply->complete ? reply->consumed - taken.size() : n;
    std::size_t got = asio::read(sock, asio::buffer(buf, take), ec);  // already there: no wait
    if (ec) break;
    taken.append(buf, got);
    if (reply->complete && got == take) co_return std::move(sock);
  }
  if (guard.timed_out()) co_return make_error(where + ": timed out");
  co_return make_error(where + ": " +
                       (ec == asio::error::eof ? std::string("refused (nothing listens in the guest)") : ec.message()));
}

asio::awaitable<Result<protocol::Frame>> control_request(std::string uds_path, std::string frame,
                                                         std::chrono::steady_clock::time_point deadline) {
  auto conn = co_await hybrid_connect(uds_path, kGuestControlPort, deadline);
  if (!conn.ok()) co_return conn.error();
  local::socket sock = std::move(conn.value());
  SocketDeadline guard(sock, deadline, false);
  beast::error_code ec;
  co_await asio::async_write(sock, asio::buffer(frame), asio::redirect_error(use_awaitable, ec));
  protocol::FrameDecoder decoder;
  protocol::Frame reply;
  bool have = false;
  char buf[4096];
  while (!ec && !have) {
    std::size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    if (auto st = decoder.feed(std::string_view(buf, n)); !st.ok()) co_return st.error().wrap("control reply");
    have = decoder.next(&reply);
  }
  if (!have) {
    co_return make_error(guard.timed_out() ? std::string("control request timed out") : "control connection: " + ec.message());
  }
  co_return reply;
}

}  // namespace kiln::kilnd::pool

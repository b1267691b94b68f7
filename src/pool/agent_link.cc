// The agent link (see agent_link.h): the event stream and the control-port requests.
#include "src/pool/agent_link.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/protocol/messages.h"
#include "src/pool/hybrid_vsock.h"

namespace kiln::kilnd::pool {

using asio::use_awaitable;

AgentLink::AgentLink(asio::io_context& io, std::string vsock, AgentTimeouts timeouts)
    : io_(io), vsock_(std::move(vsock)), timeouts_(timeouts), acceptor_(io) {}

Status AgentLink::listen(const std::function<Status(const std::string& path)>& share, EventHandler on_event,
                         std::function<bool()> accepting) {
  on_event_ = std::move(on_event);
  accepting_ = std::move(accepting);
  beast::error_code ec;
  local::endpoint events_ep(host_port_path(vsock_, kHostEventsPort));
  ::unlink(events_ep.path().c_str());  // an earlier VMM's listener in the same run dir
  acceptor_.open(events_ep.protocol(), ec);
  if (!ec) acceptor_.bind(events_ep, ec);
  if (!ec) acceptor_.listen(4, ec);
  if (ec) return make_error("listening on " + events_ep.path() + ": " + ec.message());
  KILN_TRY(share(events_ep.path()));
  asio::co_spawn(io_, accept_events(shared_from_this()), asio::detached);
  return ok_status();
}

void AgentLink::close() {
  beast::error_code ec;
  acceptor_.close(ec);
  if (events_sock_) events_sock_->close(ec);
}

asio::awaitable<void> AgentLink::accept_events(std::shared_ptr<AgentLink> self) {
  while (self->accepting_()) {
    beast::error_code ec;
    local::socket s = co_await self->acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    if (self->events_sock_) self->events_sock_->close(ec);
    self->events_sock_ = std::make_shared<local::socket>(std::move(s));
    asio::co_spawn(self->io_, read_events(self, self->events_sock_), asio::detached);
  }
}

asio::awaitable<void> AgentLink::read_events(std::shared_ptr<AgentLink> self, std::shared_ptr<local::socket> sock) {
  protocol::FrameDecoder decoder;
  char buf[16384];
  while (true) {
    beast::error_code ec;
    std::size_t n = co_await sock->async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    if (auto st = decoder.feed(std::string_view(buf, n)); !st.ok()) {
      sock->close(ec);  // corrupt stream: drop it; the agent reconnects
      co_return;
    }
    protocol::Frame f;
    while (decoder.next(&f)) self->on_event_(f);
  }
}

asio::awaitable<Result<local::socket>> AgentLink::connect_invoke() {
  co_return co_await hybrid_connect(vsock_, kGuestInvokePort, Clock::now() + timeouts_.connect);
}

asio::awaitable<Status> AgentLink::send_launch_spec(const protocol::LaunchSpec& spec) {
  auto frame = protocol::encode_config_drive(spec);  // one kLaunchSpec frame
  if (!frame.ok()) co_return frame.error().wrap("launch spec");
  auto reply = co_await control_request(vsock_, *frame, Clock::now() + timeouts_.connect);
  if (!reply.ok()) co_return reply.error().wrap("sending the launch spec");
  if (reply->type != protocol::FrameType::kAck) co_return make_error("launch spec: unexpected reply frame");
  auto ack = protocol::decode_ack(reply->payload);
  if (!ack.ok() || !ack->ok) {
    co_return make_error("kiln-init refused the launch spec: " + (ack.ok() ? ack->message : ack.error().message));
  }
  co_return ok_status();
}

asio::awaitable<Result<AgentLink::IdentitySent>> AgentLink::send_identity(const std::string& hostname, const std::string& instance_id,
                                                      const std::function<bool()>& give_up) {
  protocol::IdentityRequest id;
  id.hostname = hostname;
  id.instance_id = instance_id;
  id.wall_clock_ns = kiln::realtime_ns();
  id.entropy.resize(64);
  if (::getrandom(id.entropy.data(), id.entropy.size(), 0) != static_cast<ssize_t>(id.entropy.size())) {
    co_return errno_error("getrandom");
  }
  auto frame = protocol::encode(id);
  if (!frame.ok()) co_return frame.error();
  // The guest is still taking in the vsock transport reset: retry until the agent answers.
  asio::steady_timer retry(io_);
  beast::error_code ec;
  const auto deadline = Clock::now() + timeouts_.connect;
  for (int attempt = 1;; ++attempt) {
    auto reply = co_await control_request(vsock_, *frame, deadline);
    if (give_up()) co_return IdentitySent{};
    if (reply.ok()) {
      auto ack = reply->type == protocol::FrameType::kAck ? protocol::decode_ack(reply->payload)
                                                          : Result<protocol::Ack>(make_error("unexpected reply frame"));
      if (!ack.ok()) co_return ack.error().wrap("identity");
      if (!ack->ok) co_return make_error("kiln-init refused the identity: " + ack->message);
      co_return IdentitySent{attempt, ack->message};
    }
    if (Clock::now() >= deadline) co_return reply.error().wrap("sending the identity");
    retry.expires_after(std::chrono::milliseconds(5));
    co_await retry.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

asio::awaitable<bool> AgentLink::healthy() {
  auto reply = co_await control_request(vsock_, *protocol::encode_status_request(), Clock::now() + timeouts_.check);
  if (!reply.ok() || reply->type != protocol::FrameType::kStatus) co_return false;
  auto s = protocol::decode_status(reply->payload);
  co_return s.ok() && s->ready && !s->exited;
}

asio::awaitable<void> AgentLink::request_shutdown(std::chrono::milliseconds grace, Clock::time_point deadline) {
  protocol::ShutdownRequest req{true, static_cast<std::uint64_t>(grace.count())};
  auto frame = protocol::encode(req);
  if (frame.ok()) (void)co_await control_request(vsock_, *frame, deadline);
}

}  // namespace kiln::kilnd::pool

// VsockUnixMuxer implementation: the listening socket, the CONNECT handshakes, dialing
// "<uds_path>_<port>", and UnixStream, a host stream over one Unix socket on the event loop.
#include "vmm/devices/vsock_unix_muxer.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "common/protocol/hybrid_vsock.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm::devices {

namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return make_error("vsock: Unix socket path is empty or too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

StreamEvents stream_events(uint32_t epoll_events) {
  return StreamEvents{(epoll_events & EPOLLIN) != 0, (epoll_events & EPOLLOUT) != 0,
                      (epoll_events & EPOLLHUP) != 0, (epoll_events & EPOLLERR) != 0};
}

// One connected, non-blocking Unix socket; registered on the loop while watched.
class UnixStream : public VsockHostStream {
 public:
  UnixStream(UniqueFd fd, EventLoop& loop) : fd_(std::move(fd)), loop_(loop) {}
  ~UnixStream() override { stop_watching(); }

  StreamIoResult read(std::span<uint8_t> buf) override {
    while (true) {
      ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n > 0) return {StreamIo::kOk, static_cast<size_t>(n)};
      if (n == 0) return {StreamIo::kEof, 0};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {StreamIo::kWouldBlock, 0};
      return {StreamIo::kError, 0};
    }
  }

  StreamIoResult write(std::span<const uint8_t> data) override {
    while (true) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) return {StreamIo::kOk, static_cast<size_t>(n)};
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {StreamIo::kWouldBlock, 0};
      return {StreamIo::kError, 0};  // EPIPE, ECONNRESET, ...
    }
  }

  void shutdown_write() override { ::shutdown(fd_.get(), SHUT_WR); }

  Status watch(StreamInterest interest, ReadyCallback on_ready) override {
    uint32_t events = (interest.readable ? EPOLLIN : 0u) | (interest.writable ? EPOLLOUT : 0u);
    if (!registered_) {
      // The callback holds no pointer to this stream: it may fire after the stream is gone
      // from the device, which then finds no connection under its key.
      KILN_TRY(loop_.add(fd_.get(), events,
                         [cb = std::move(on_ready)](uint32_t ev) { cb(stream_events(ev)); }));
      registered_ = true;
      events_ = events;
    } else if (events != events_) {
      if (loop_.modify(fd_.get(), events).ok()) events_ = events;
    }
    return ok_status();
  }

  void stop_watching() override {
    if (!registered_) return;
    loop_.remove_if_present(fd_.get());
    registered_ = false;
  }

 private:
  UniqueFd fd_;
  EventLoop& loop_;
  bool registered_ = false;
  uint32_t events_ = 0;  // current epoll interest
};

}  // namespace

Result<std::unique_ptr<VsockUnixMuxer>> VsockUnixMuxer::create(VsockUnixMuxerConfig config, EventLoop& loop) {
  KILN_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(config.uds_path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("vsock: socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return errno_error("vsock: bind " + config.uds_path);
  }
  if (::listen(fd.get(), 128) != 0) {
    ::unlink(config.uds_path.c_str());
    return errno_error("vsock: listen " + config.uds_path);
  }
  auto timer = TickTimer::create(loop, config.handshake_timeout);
  if (!timer.ok()) {
    ::unlink(config.uds_path.c_str());
    return timer.error();
  }
  // From here the destructor unlinks the path.
  return std::unique_ptr<VsockUnixMuxer>(
      new VsockUnixMuxer(std::move(config), loop, std::move(fd), std::move(*timer)));
}

Status VsockUnixMuxer::start(VsockBackendSink& sink) {
  sink_ = &sink;
  // On failure the destructor unregisters what was added.
  KILN_TRY(loop_.add(listener_.get(), EPOLLIN, [this](uint32_t) { on_listener(); }));
  KILN_TRY(timer_->start([this] { on_timer(); }));
  return ok_status();
}

VsockUnixMuxer::~VsockUnixMuxer() {
  std::lock_guard lock(mu_);
  for (auto& [fd, h] : handshakes_) loop_.remove_if_present(fd);
  loop_.remove_if_present(listener_.get());
  ::unlink(config_.uds_path.c_str());
}

size_t VsockUnixMuxer::pending_count() const {
  std::lock_guard lock(mu_);
  return handshakes_.size();
}

Result<std::unique_ptr<VsockHostStream>> VsockUnixMuxer::connect(uint32_t port) {
  // Hybrid vsock: guest connections to host port P go to "<uds_path>_<P>".
  auto addr = unix_address(config_.uds_path + "_" + std::to_string(port));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!addr.ok()) return addr.error();
  if (!fd) return errno_error("vsock: socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) != 0) {
    return errno_error("vsock: connect " + config_.uds_path + "_" + std::to_string(port));
  }
  return std::unique_ptr<VsockHostStream>(new UnixStream(std::move(fd), loop_));
}

void VsockUnixMuxer::on_timer() {
  std::lock_guard lock(mu_);
  timer_->drain();
  const auto now = std::chrono::steady_clock::now();
  std::vector<int> stale;
  for (auto& [fd, h] : handshakes_) {
    if (now >= h->deadline) stale.push_back(fd);
  }
  for (int fd : stale) {
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: host client sent no CONNECT line in time");
    drop_handshake(fd);
  }
  timer_->set_armed(!handshakes_.empty());
}

void VsockUnixMuxer::on_listener() {
  const size_t held = sink_->connection_count();  // the device's lock, before ours
  std::lock_guard lock(mu_);
  // Bounded: stops at EAGAIN or when the connection limit is reached.
  for (size_t i = 0; i < config_.max_connections + 1; ++i) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR) continue;
      break;  // EAGAIN, or an error the next readiness event retries
    }
    if (handshakes_.size() + held >= config_.max_connections) {
      sink_->on_host_refused();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: connection limit reached, refusing host client");
      continue;  // fd closes
    }
    int raw = fd.get();
    auto st = loop_.add(raw, EPOLLIN, [this, raw](uint32_t ev) { on_handshake(raw, ev); });
    if (!st.ok()) {
      sink_->on_host_refused();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: dropping host client: %s", st.error().message.c_str());
      continue;
    }
    auto h = std::make_unique<Handshake>();
    h->fd = std::move(fd);
    h->deadline = std::chrono::steady_clock::now() + config_.handshake_timeout;
    handshakes_.emplace(raw, std::move(h));
  }
  timer_->set_armed(!handshakes_.empty());
}

void VsockUnixMuxer::drop_handshake(int fd) {
  loop_.remove_if_present(fd);
  handshakes_.erase(fd);
}

void VsockUnixMuxer::on_handshake(int fd, uint32_t events) {
  UniqueFd done;  // the client, once its line is complete
  uint32_t port = 0;
  {
    std::lock_guard lock(mu_);
    auto it = handshakes_.find(fd);
    if (it == handshakes_.end()) return;
    Handshake& h = *it->second;
    // One byte at a time so nothing after the newline is consumed: it is stream data.
    while (h.line.size() < protocol::kMaxHybridConnectLine) {
      char c;
      ssize_t n = ::recv(fd, &c, 1, 0);
      if (n == 1) {
        h.line.push_back(c);
        if (c != '\n') continue;
        auto parsed = protocol::parse_hybrid_connect(h.line);
        if (!parsed.ok()) {
          KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: bad host handshake: %s",
                         parsed.error().message.c_str());
          drop_handshake(fd);
          return;
        }
        port = *parsed;
        done = std::move(h.fd);
        drop_handshake(fd);
        break;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (events & (EPOLLHUP | EPOLLERR)) {
          KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: host client hung up during its CONNECT line");
          drop_handshake(fd);
        }
        return;
      }
      if (n < 0) KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: host client: %s", std::strerror(errno));
      drop_handshake(fd);  // EOF or error before a full line
      return;
    }
    if (!done) {
      drop_handshake(fd);  // line too long
      return;
    }
  }
  sink_->on_host_connect(std::make_unique<UnixStream>(std::move(done), loop_), port);
}

}  // namespace kiln::vmm::devices

// Proxy sessions: two bounded buffers per connection; reading from a side pauses while its
// buffer is full; EOF on one side becomes shutdown(SHUT_WR) on the other once drained. The
// app side is connected once the host side first has something (bytes or EOF): a connection
// the host opened ahead (kilnd's spare) stays invisible to the app until it is used. Bytes read
// from the host are shown to the head watch (host_bytes) before any of them is sent on.
#include "guest-agent/agent/proxy.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

#include "guest-agent/agent/endpoint.h"

namespace kiln::agent {

namespace {

struct Direction {
  char buf[Proxy::kBufferSize];
  std::size_t start = 0;
  std::size_t end = 0;
  bool eof = false;  // source reached EOF
  bool shut = false;  // SHUT_WR sent to the destination
  std::size_t space() const { return sizeof(buf) - end; }
  std::size_t pending() const { return end - start; }
};

}  // namespace

struct Proxy::Session {
  std::uint64_t id = 0;
  UniqueFd host;  // accepted connection (vsock or Unix)
  UniqueFd app;  // TCP to 127.0.0.1:port, once the host side is readable
  bool app_started = false;  // connect issued
  bool app_connected = false;
  std::uint32_t host_mask = 0;
  std::uint32_t app_mask = 0;
  Direction to_app;
  Direction to_host;
  enum class Phase { kHead, kBody, kAnswered } phase = Phase::kHead;  // of the current request
  std::string head;  // the head so far, while kHead
  std::shared_ptr<std::function<void(bool, std::uint32_t)>> step;  // the fds' event handler
};

Proxy::Proxy(EventLoop& loop, UniqueFd listener, std::uint16_t target_port)
    : loop_(loop), listener_(std::move(listener)), target_port_(target_port) {}

Proxy::~Proxy() {
  for (auto& [id, s] : sessions_) {
    loop_.remove_if_present(s->host.get());
    if (s->app) loop_.remove_if_present(s->app.get());
  }
  if (listener_) loop_.remove_if_present(listener_.get());
}

UniqueFd Proxy::release_listener() {
  if (listener_) loop_.remove_if_present(listener_.get());
  return std::move(listener_);
}

Status Proxy::start() {
  return loop_.add(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
}

namespace {

// Reads src into d while it has room. Returns false on a hard error (session must close), with
// errno left as the failing call set it.
bool fill(int src, Direction& d) {
  // Compact so a slow reader does not stall a fast writer on a never-refilled tail.
  if (d.start == d.end) d.start = d.end = 0;
  while (!d.eof && d.space() > 0) {
    ssize_t n = ::recv(src, d.buf + d.end, d.space(), MSG_DONTWAIT);
    if (n > 0) {
      d.end += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) {
      d.eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;
  }
  return true;
}

// Writes d's pending bytes to dst, then SHUT_WR once the source's EOF is drained. Returns
// false on a hard error, as fill().
bool drain(int dst, Direction& d) {
  while (d.pending() > 0) {
    ssize_t n = ::send(dst, d.buf + d.start, d.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      d.start += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  if (d.start == d.end) d.start = d.end = 0;
  if (d.eof && d.pending() == 0 && !d.shut) {
    ::shutdown(dst, SHUT_WR);
    d.shut = true;
  }
  return true;
}

}  // namespace

void Proxy::on_accept() {
  while (true) {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or a transient error (e.g. ECONNABORTED): wait for the next event
    }
    if (sessions_.size() >= kMaxSessions) continue;  // closes conn: the host sees EOF
    auto s = std::make_unique<Session>();
    s->id = next_id_++;
    s->host = std::move(conn);
    std::uint64_t id = s->id;
    Session* raw = s.get();
    sessions_[id] = std::move(s);

    // Shared by both fds' callbacks (the app's is registered once it is connecting).
    auto step = std::make_shared<std::function<void(bool, std::uint32_t)>>();
    *step = [this, id, raw, weak = std::weak_ptr(step)](bool from_app_event, std::uint32_t ev) {
      Session& ss = *raw;
      if (!ss.app_started) {
        // The host side spoke. EOF or an error before any byte: an unused connection, closed
        // without the app ever seeing it. Bytes: now connect to the app.
        char first = 0;
        ssize_t n = ::recv(ss.host.get(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (n <= 0) {
          close_session(id);
          return;
        }
        bool in_progress = false;
        auto app = connect_loopback_tcp(target_port_, &in_progress);
        if (!app.ok()) {
          report("cannot reach the function's server on 127.0.0.1:" + std::to_string(target_port_) + ": " +
                 app.error().message);
          close_session(id);  // refused: the host sees its connection closed
          return;
        }
        ss.app = std::move(app.value());
        ss.app_started = true;
        ss.app_connected = !in_progress;
        ss.app_mask = ss.app_connected ? 0u : static_cast<std::uint32_t>(EPOLLOUT);
        auto fn = weak.lock();
        if (!fn || !loop_.add(ss.app.get(), ss.app_mask, [fn](std::uint32_t e) { (*fn)(true, e); }).ok()) {
          close_session(id);
          return;
        }
        if (!ss.app_connected) {
          ss.host_mask = 0;  // nothing more read from the host until the app side is connected
          (void)loop_.modify(ss.host.get(), 0);
          return;
        }
      }
      if (from_app_event && !ss.app_connected) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        if (auto c = connect_result(ss.app.get()); !c.ok()) {
          report("cannot reach the function's server on 127.0.0.1:" + std::to_string(target_port_) + ": " +
                 c.error().message);
          close_session(id);
          return;
        }
        ss.app_connected = true;
      }
      bool ok = true;
      if (ss.app_connected) {
        const char* broke = nullptr;
        if (ss.to_app.start == ss.to_app.end) ss.to_app.start = ss.to_app.end = 0;
        const std::size_t had = ss.to_app.end;
        bool read_ok = fill(ss.host.get(), ss.to_app);
        host_bytes(ss, ss.to_app.buf + had, ss.to_app.end - had);  // before any of them goes on
        if (!read_ok || !drain(ss.app.get(), ss.to_app)) {
          broke = "request to the function's server";
        } else {
          if (ss.to_host.start == ss.to_host.end) ss.to_host.start = ss.to_host.end = 0;
          const std::size_t answered = ss.to_host.end;
          read_ok = fill(ss.app.get(), ss.to_host);
          if (ss.to_host.end > answered) app_bytes(ss);
          if (!read_ok || !drain(ss.host.get(), ss.to_host)) broke = "response from the function's server";
        }
        if (broke != nullptr) {
          report(std::string("connection broke (") + broke + "): " + std::strerror(errno));
          ok = false;
        }
      }
      bool done = ss.to_app.shut && ss.to_host.shut;
      if (!ok || done) {
        close_session(id);
        return;
      }
      // Interest: read a side only while its buffer has room; write while data is pending.
      std::uint32_t host_mask = 0, app_mask = 0;
      if (!ss.app_connected) {
        app_mask = EPOLLOUT;
      } else {
        if (!ss.to_app.eof && ss.to_app.space() > 0) host_mask |= EPOLLIN | EPOLLRDHUP;
        if (ss.to_host.pending() > 0) host_mask |= EPOLLOUT;
        if (!ss.to_host.eof && ss.to_host.space() > 0) app_mask |= EPOLLIN | EPOLLRDHUP;
        if (ss.to_app.pending() > 0) app_mask |= EPOLLOUT;
      }
      if (host_mask != ss.host_mask) {
        ss.host_mask = host_mask;
        (void)loop_.modify(ss.host.get(), host_mask);
      }
      if (app_mask != ss.app_mask) {
        ss.app_mask = app_mask;
        (void)loop_.modify(ss.app.get(), app_mask);
      }
    };
    raw->host_mask = EPOLLIN | EPOLLRDHUP;  // the first bytes (or EOF) start the app side
    raw->step = step;
    if (!loop_.add(raw->host.get(), raw->host_mask, [step](std::uint32_t ev) { (*step)(false, ev); }).ok()) {
      close_session(id);
      continue;
    }
  }
}

void Proxy::host_bytes(Session& s, const char* p, std::size_t n) {
  if (n == 0) return;
  if (s.phase == Session::Phase::kAnswered) {
    s.phase = Session::Phase::kHead;  // the app answered: these bytes begin the next request
    s.head.clear();
  }
  if (s.phase != Session::Phase::kHead) return;
  const std::size_t from = s.head.size() < 3 ? 0 : s.head.size() - 3;  // "\r\n\r\n" may straddle reads
  s.head.append(p, std::min(n, kMaxHead - s.head.size()));
  auto end = s.head.find("\r\n\r\n", from);
  if (end == std::string::npos && s.head.size() < kMaxHead) return;
  if (end != std::string::npos) s.head.resize(end + 4);
  s.phase = Session::Phase::kBody;
  if (observer_.request) observer_.request(s.id, s.head);
  s.head.clear();
  s.head.shrink_to_fit();
}

void Proxy::app_bytes(Session& s) {
  if (s.phase == Session::Phase::kAnswered) return;
  s.phase = Session::Phase::kAnswered;
  s.head.clear();
  if (observer_.answer) observer_.answer(s.id);
}

void Proxy::close_session(std::uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (observer_.closed) observer_.closed(id);
  loop_.remove_if_present(it->second->host.get());
  if (it->second->app) loop_.remove_if_present(it->second->app.get());
  sessions_.erase(it);
}

}  // namespace kiln::agent

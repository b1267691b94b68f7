// LambdaBridge: connection handling for both sides; every protocol decision is RuntimeApiCore's.
#include "guest-agent/agent/lambda_bridge.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>

#include "common/clock.h"
#include "guest-agent/agent/supervisor.h"

namespace kiln::agent {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

std::uint64_t number_or_zero(std::optional<std::string_view> v) {
  std::uint64_t n = 0;
  if (!v) return 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  return ec == std::errc() && p == v->data() + v->size() ? n : 0;
}

// The id goes into a URL path the runtime builds: printable, no path or query syntax.
bool usable_id(std::string_view id) {
  if (id.empty() || id.size() > LambdaBridge::kMaxRequestId) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '%') return false;
  }
  return true;
}

std::string printable_or_empty(std::optional<std::string_view> v) {
  if (!v || v->size() > 4096) return {};
  for (char c : *v) {
    if (c < 0x20 || c >= 0x7f) return {};
  }
  return std::string(*v);
}

}  // namespace

struct LambdaBridge::Conn {
  Conn(UniqueFd f, bool h)
      : fd(std::move(f)),
        host(h),
        // kilnd's requests carry the event (Lambda's payload limit) plus its metadata headers.
        reader(HttpMessageReader::Limits{16 * 1024, 64, kMaxLambdaPayload}) {}
  UniqueFd fd;
  bool host;  // kilnd's side (port 9000) or the runtime's
  HttpMessageReader reader;
  std::string out;
  bool read_closed = false;  // the peer half-closed: answer, then close
  bool closing = false;      // close once `out` is written
  bool parked = false;       // runtime: its `next` waits for an invocation
  bool keep_alive = true;
  std::string waiting;  // host: the invocation it waits for
};

LambdaBridge::LambdaBridge(EventLoop& loop, UniqueFd host_listener, UniqueFd api_listener,
                           const protocol::LaunchSpec& spec, Callbacks cb)
    : loop_(loop),
      host_listener_(std::move(host_listener)),
      api_listener_(std::move(api_listener)),
      lambda_(spec.lambda),
      cb_(std::move(cb)),
      core_(spec.lambda.invoked_arn()) {}

LambdaBridge::~LambdaBridge() {
  for (auto& [id, c] : conns_) loop_.remove_if_present(c->fd.get());
  if (host_listener_) loop_.remove_if_present(host_listener_.get());
  if (api_listener_) loop_.remove_if_present(api_listener_.get());
}

Status LambdaBridge::start() {
  KILN_TRY(loop_.add(host_listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(true); }));
  return loop_.add(api_listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(false); });
}

LambdaBridge::Conn* LambdaBridge::find(std::uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void LambdaBridge::on_accept(bool host) {
  int listener = host ? host_listener_.get() : api_listener_.get();
  while (true) {
    UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR) continue;
      return;
    }
    if ((host ? host_conns_ : runtime_conns_) >= (host ? kMaxHostConns : kMaxRuntimeConns)) continue;
    std::uint64_t id = next_id_++;
    int raw = fd.get();
    conns_[id] = std::make_unique<Conn>(std::move(fd), host);
    if (!loop_.add(raw, EPOLLIN | EPOLLRDHUP, [this, id](std::uint32_t ev) { on_conn(id, ev); }).ok()) {
      conns_.erase(id);
      continue;
    }
    ++(host ? host_conns_ : runtime_conns_);
  }
}

void LambdaBridge::on_conn(std::uint64_t id, std::uint32_t events) {
  Conn* c = find(id);
  if (!c) return;
  if (events & EPOLLERR) {
    close_conn(id);
    return;
  }
  if (!c->read_closed && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
    char buf[kReadChunk];
    while (c->reader.room() > 0) {  // full: process first, the rest waits in the socket
      ssize_t n = ::recv(c->fd.get(), buf, std::min(sizeof(buf), c->reader.room()), MSG_DONTWAIT);
      if (n > 0) {
        c->reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c->read_closed = true;
      break;
    }
  }
  process(id);
  if ((c = find(id)) == nullptr) return;
  if (events & EPOLLOUT) flush(id);
  if ((c = find(id)) == nullptr) return;
  // A runtime that hangs up on its parked `next` is gone (the core unparks on close); kilnd may
  // half-close after its request and still wants the answer.
  bool idle = c->waiting.empty() && c->out.empty();
  if (c->read_closed && idle) {
    close_conn(id);
    return;
  }
  rearm(id);
}

void LambdaBridge::rearm(std::uint64_t id) {
  Conn* c = find(id);
  if (!c) return;
  // While a request waits for its answer only the peer's hang-up matters: more bytes stay in
  // the socket (level-triggered EPOLLIN would spin on them) until the answer is out.
  bool busy = !c->waiting.empty() || c->parked;
  std::uint32_t in = c->read_closed || c->closing ? 0u : (busy ? EPOLLRDHUP : (EPOLLIN | EPOLLRDHUP));
  std::uint32_t ev = in | (c->out.empty() ? 0u : EPOLLOUT);
  (void)loop_.modify(c->fd.get(), ev);
}

void LambdaBridge::process(std::uint64_t id) {
  while (Conn* c = find(id)) {
    // One request at a time per connection: a pipelined one waits for the answer before it.
    if (c->closing || !c->waiting.empty() || c->parked) return;
    auto state = c->reader.poll();
    if (state == HttpMessageReader::State::kNeedMore) return;
    if (state == HttpMessageReader::State::kRequest) {
      HttpRequest req = c->reader.take();
      c->keep_alive = req.keep_alive;
      if (c->host) {
        host_request(id, std::move(req));
      } else {
        runtime_request(id, std::move(req));
      }
      continue;
    }
    // An oversize body is skipped; other framing errors cannot be resynchronised: answer, close.
    if (!c->host && c->reader.oversize_body()) {
      auto o = core_.handle_oversize(c->reader.head_only());
      bool close = !c->reader.head_only().keep_alive;
      c->reader.skip_oversize_body();
      send(id, format_http_response(o.answer.status, o.answer.headers, o.answer.body, close), close);
      if (o.result) deliver(*o.result);
      continue;
    }
    std::string type = c->reader.error_status() == 413 ? "RequestEntityTooLarge" : "InvalidRequest";
    if (cb_.report && !c->host) cb_.report("runtime API: " + c->reader.error_text());
    send(id,
         format_http_response(c->reader.error_status(), {{"Content-Type", "application/json"}},
                              RuntimeApiCore::error_json(type, c->reader.error_text()), true),
         true);
    return;
  }
}

void LambdaBridge::host_request(std::uint64_t id, HttpRequest req) {
  Invocation inv;
  auto given = req.header("X-Kiln-Request-Id");
  inv.id = given && usable_id(*given) ? std::string(*given) : "kiln-" + std::to_string(++generated_ids_);
  std::uint64_t now = kiln::realtime_ns() / 1000000;
  // kilnd's deadline when it sends one; otherwise the invocation's start plus the timeout.
  std::uint64_t deadline = number_or_zero(req.header("X-Kiln-Deadline-Ms"));
  std::uint64_t timeout = number_or_zero(req.header("X-Kiln-Timeout-Ms"));
  inv.deadline_ms = deadline != 0 ? deadline : now + (timeout != 0 ? timeout : lambda_.timeout_ms);
  inv.trace_id = printable_or_empty(req.header("X-Amzn-Trace-Id"));
  inv.client_context = printable_or_empty(req.header("X-Amz-Client-Context"));
  inv.payload = std::move(req.body);
  if (waiting_.count(inv.id) != 0 || !core_.submit(inv).ok()) {
    send(id,
         format_http_response(429, {{"Content-Type", "application/json"}},
                              RuntimeApiCore::error_json("TooManyRequestsException",
                                                         "the runtime is busy with another invocation")),
         false);
    return;
  }
  Conn* c = find(id);
  c->waiting = inv.id;
  waiting_[inv.id] = id;
  if (cb_.started) cb_.started(id, inv.id);
  pump();
}

void LambdaBridge::runtime_request(std::uint64_t id, HttpRequest req) {
  auto o = core_.handle(req);
  if (o.first_next && cb_.ready) cb_.ready();
  if (o.init_error && cb_.init_error) cb_.init_error(*o.init_error);
  if (o.park) {
    find(id)->parked = true;
    parked_conn_ = id;
  } else {
    send(id, format_http_response(o.answer.status, o.answer.headers, o.answer.body, !find(id)->keep_alive),
         !find(id)->keep_alive);
  }
  if (o.result) deliver(*o.result);
  pump();
}

void LambdaBridge::pump() {
  auto answer = core_.dispatch();
  if (!answer) return;
  std::uint64_t id = parked_conn_;
  parked_conn_ = 0;
  Conn* c = find(id);
  if (!c) return;  // cannot happen: closing a parked connection unparks the core
  c->parked = false;
  send(id, format_http_response(answer->status, answer->headers, answer->body, !c->keep_alive), !c->keep_alive);
}

void LambdaBridge::deliver(const InvocationResult& r) {
  auto it = waiting_.find(r.id);
  if (it == waiting_.end()) return;
  std::uint64_t id = it->second;
  waiting_.erase(it);
  Conn* c = find(id);
  if (!c) return;
  c->waiting.clear();
  if (cb_.answered) cb_.answered(id);
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
  int status = 200;
  if (r.function_error) {
    status = 500;
    headers.emplace_back(kFunctionErrorHeader, "Unhandled");
    headers.emplace_back(kFunctionErrorTypeHeader, r.error_type);
  }
  bool close = !c->keep_alive || c->read_closed;
  send(id, format_http_response(status, headers, r.body, close), close);
  // A request kilnd pipelined behind this one can go now.
  loop_.post([this, id] {
    process(id);
    rearm(id);
  });
}

void LambdaBridge::send(std::uint64_t id, const std::string& bytes, bool close) {
  Conn* c = find(id);
  if (!c) return;
  c->out += bytes;
  if (close) c->closing = true;
  flush(id);
}

void LambdaBridge::flush(std::uint64_t id) {
  Conn* c = find(id);
  if (!c) return;
  while (!c->out.empty()) {
    ssize_t n = ::send(c->fd.get(), c->out.data(), c->out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close_conn(id);
    return;
  }
  if (c->closing && c->out.empty()) {
    close_conn(id);
    return;
  }
  rearm(id);
}

void LambdaBridge::close_conn(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  loop_.remove_if_present(c->fd.get());
  --(c->host ? host_conns_ : runtime_conns_);
  if (c->host) {
    if (!c->waiting.empty()) {
      core_.cancel(c->waiting);  // kilnd gave up (timeout): a late answer is refused
      waiting_.erase(c->waiting);
    }
    if (cb_.closed) cb_.closed(id);
  } else if (c->parked) {
    core_.unpark();
    parked_conn_ = 0;
  }
}

}  // namespace kiln::agent

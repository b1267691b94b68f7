// EventStream implementation. A frame cut by a broken connection is re-sent whole on the
// next one, so the host's decoder never sees a torn frame from a single connection.
#include "guest-agent/agent/event_stream.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdio>

namespace kiln::agent {

using protocol::LogStream;

EventStream::EventStream(EventLoop& loop, Endpoint target, EventStreamLimits limits,
                         std::function<protocol::HelloEvent()> hello)
    : loop_(loop), target_(std::move(target)), limits_(limits), hello_(std::move(hello)) {}

EventStream::~EventStream() {
  if (fd_) loop_.remove_if_present(fd_.get());
  if (retry_timer_) loop_.cancel_timer(retry_timer_);
  if (flush_timer_) loop_.cancel_timer(flush_timer_);
}

void EventStream::start() {
  if (state_ == State::kIdle) try_connect();
}

void EventStream::enqueue(Result<std::string> frame, bool is_log) {
  if (!frame.ok()) {
    std::fprintf(stderr, "kiln-init: dropping event: %s\n", frame.error().message.c_str());
    return;
  }
  if (is_log) {
    ++log_events_;
    log_bytes_ += frame->size();
  }
  queue_.push_back(Pending{std::move(frame.value()), is_log});
  pump();
}

void EventStream::log(LogStream stream, std::uint64_t ts_ns, std::string_view data, bool partial,
                      std::string_view request) {
  if (log_events_ >= limits_.max_log_events || log_bytes_ + data.size() > limits_.max_log_bytes) {
    ++dropped_pending_;
    ++dropped_total_;
    return;
  }
  if (dropped_pending_ > 0) {
    enqueue(protocol::encode(protocol::DroppedEvent{next_seq_++, dropped_pending_}), false);
    dropped_pending_ = 0;
  }
  enqueue(protocol::encode(
              protocol::LogEvent{next_seq_++, ts_ns, stream, std::string(data), partial, std::string(request)}),
          true);
}

void EventStream::ready(std::uint16_t port, std::uint64_t elapsed_ms) {
  enqueue(protocol::encode(protocol::ReadyEvent{next_seq_++, port, elapsed_ms}), false);
}

void EventStream::not_ready(std::uint16_t port, std::uint64_t waited_ms, std::string message) {
  enqueue(protocol::encode(protocol::NotReadyEvent{next_seq_++, port, waited_ms, std::move(message)}),
          false);
}

void EventStream::exit(std::uint64_t pid, bool signaled, int code) {
  if (dropped_pending_ > 0) {
    enqueue(protocol::encode(protocol::DroppedEvent{next_seq_++, dropped_pending_}), false);
    dropped_pending_ = 0;
  }
  enqueue(protocol::encode(protocol::ExitEvent{next_seq_++, pid, signaled, code}), false);
}

void EventStream::try_connect() {
  retry_timer_ = 0;
  bool in_progress = false;
  auto fd = connect_to(target_, &in_progress);
  if (!fd.ok()) {
    disconnect_and_retry();
    return;
  }
  fd_ = std::move(fd.value());
  state_ = in_progress ? State::kConnecting : State::kConnected;
  auto hello = hello_();
  hello.seq = queue_.empty() ? next_seq_ : next_seq_ - queue_.size();
  auto frame = protocol::encode(hello);
  hello_frame_ = frame.ok() ? std::move(frame.value()) : std::string();
  hello_offset_ = 0;
  front_offset_ = 0;
  want_out_ = true;
  auto st = loop_.add(fd_.get(), EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                      [this](std::uint32_t ev) { on_socket(ev); });
  if (!st.ok()) {
    disconnect_and_retry();
    return;
  }
  if (state_ == State::kConnected) pump();
}

void EventStream::on_socket(std::uint32_t events) {
  if (state_ == State::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (!connect_result(fd_.get()).ok()) {
      disconnect_and_retry();
      return;
    }
    state_ = State::kConnected;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    // The host never sends on this port: any read result but EAGAIN means the peer is gone.
    char buf[256];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      disconnect_and_retry();
      return;
    }
  }
  pump();
}

void EventStream::disconnect_and_retry() {
  if (fd_) {
    loop_.remove_if_present(fd_.get());
    fd_.reset();
  }
  front_offset_ = 0;
  state_ = State::kBackoff;
  backoff_ms_ = backoff_ms_ == 0 ? limits_.backoff_min_ms
                                 : std::min(backoff_ms_ * 2, limits_.backoff_max_ms);
  if (retry_timer_) loop_.cancel_timer(retry_timer_);
  retry_timer_ = loop_.add_timer_ms(backoff_ms_, [this] { try_connect(); });
}

void EventStream::reconnect_now() {
  if (fd_) {
    loop_.remove_if_present(fd_.get());
    fd_.reset();
  }
  front_offset_ = 0;
  backoff_ms_ = 0;
  if (retry_timer_) loop_.cancel_timer(retry_timer_);
  retry_timer_ = 0;
  try_connect();
}

void EventStream::pump() {
  if (state_ != State::kConnected) return;
  while (true) {
    const std::string* buf;
    std::size_t* off;
    if (hello_offset_ < hello_frame_.size()) {
      buf = &hello_frame_;
      off = &hello_offset_;
    } else if (!queue_.empty()) {
      buf = &queue_.front().frame;
      off = &front_offset_;
    } else {
      break;
    }
    ssize_t n = ::send(fd_.get(), buf->data() + *off, buf->size() - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      disconnect_and_retry();
      return;
    }
    *off += static_cast<std::size_t>(n);
    if (off == &front_offset_ && front_offset_ == queue_.front().frame.size()) {
      if (queue_.front().is_log) {
        --log_events_;
        log_bytes_ -= queue_.front().frame.size();
      }
      queue_.pop_front();
      front_offset_ = 0;
      backoff_ms_ = 0;  // a delivered frame proves the connection works
    }
  }
  update_interest();
  check_flush();
}

void EventStream::update_interest() {
  if (!fd_) return;
  bool want_out = hello_offset_ < hello_frame_.size() || !queue_.empty();
  if (want_out == want_out_) return;
  want_out_ = want_out;
  (void)loop_.modify(fd_.get(), EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0u));
}

void EventStream::flush(std::uint64_t deadline_ms, std::function<void()> done) {
  flush_done_ = std::move(done);
  flush_timer_ = loop_.add_timer_ms(deadline_ms, [this] {
    flush_timer_ = 0;
    auto cb = std::move(flush_done_);
    flush_done_ = nullptr;
    if (cb) cb();
  });
  check_flush();
}

void EventStream::check_flush() {
  if (!flush_done_ || !queue_.empty()) return;
  if (flush_timer_) loop_.cancel_timer(flush_timer_);
  flush_timer_ = 0;
  auto cb = std::move(flush_done_);
  flush_done_ = nullptr;
  cb();
}

}  // namespace kiln::agent

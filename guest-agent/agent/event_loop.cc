// EventLoop implementation over epoll(7), level-triggered.
#include "guest-agent/agent/event_loop.h"

#include <sys/epoll.h>
#include <time.h>

#include <vector>

namespace kiln::agent {

std::uint64_t EventLoop::now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

Status EventLoop::init() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return errno_error("epoll_create1");
  return ok_status();
}

Status EventLoop::add(int fd, std::uint32_t events, FdCallback cb) {
  std::uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl add");
  fds_[fd] = FdEntry{token, std::move(cb)};
  token_fd_[token] = fd;
  return ok_status();
}

Status EventLoop::modify(int fd, std::uint32_t events) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return make_error("epoll modify: fd not registered");
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second.token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return errno_error("epoll_ctl mod");
  return ok_status();
}

void EventLoop::remove(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  token_fd_.erase(it->second.token);
  fds_.erase(it);
}

EventLoop::TimerId EventLoop::add_timer_ms(std::uint64_t delay_ms, TimerCallback cb) {
  TimerId id = next_timer_++;
  std::uint64_t deadline = now_ms() + delay_ms;
  timers_[id] = Timer{deadline, std::move(cb)};
  timer_order_.emplace(deadline, id);
  return id;
}

void EventLoop::cancel_timer(TimerId id) { timers_.erase(id); }

Status EventLoop::run() {
  stopped_ = false;
  std::vector<epoll_event> events(64);
  while (!stopped_) {
    int timeout = -1;
    // Drop cancelled timers at the head, then compute the wait.
    while (!timer_order_.empty() && !timers_.count(timer_order_.begin()->second)) {
      timer_order_.erase(timer_order_.begin());
    }
    if (!timer_order_.empty()) {
      std::uint64_t now = now_ms();
      std::uint64_t d = timer_order_.begin()->first;
      timeout = d <= now ? 0 : static_cast<int>(std::min<std::uint64_t>(d - now, 60000));
    }
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("epoll_wait");
    }
    for (int i = 0; i < n && !stopped_; ++i) {
      auto t = token_fd_.find(events[i].data.u64);
      if (t == token_fd_.end()) continue;  // removed earlier in this batch
      FdCallback cb = fds_[t->second].cb;  // copy: the callback may remove itself
      cb(events[i].events);
    }
    std::uint64_t now = now_ms();
    while (!stopped_ && !timer_order_.empty() && timer_order_.begin()->first <= now) {
      TimerId id = timer_order_.begin()->second;
      timer_order_.erase(timer_order_.begin());
      auto it = timers_.find(id);
      if (it == timers_.end()) continue;
      TimerCallback cb = std::move(it->second.cb);
      timers_.erase(it);
      cb();
    }
  }
  return ok_status();
}

}  // namespace kiln::agent

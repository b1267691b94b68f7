// EventLoop implementation: epoll tokens are never reused, so a stale event for a removed
// (or removed-and-re-added) fd in the same batch is dropped instead of hitting a new owner.
#include "vmm/event_loop/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::vmm {

namespace {
constexpr uint64_t kWakeToken = 0;
constexpr int kMaxEvents = 64;
}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errno_error("epoll_create1");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return errno_error("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) {
    return errno_error("epoll_ctl add wakeup");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(ep), std::move(wake)));
}

Status EventLoop::add(int fd, uint32_t events, Callback cb) {
  std::lock_guard lock(mu_);
  if (token_of_fd_.count(fd) != 0) return make_error("event loop: fd already registered");
  uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl add");
  by_token_.emplace(token, Entry{fd, std::make_shared<Callback>(std::move(cb))});
  token_of_fd_.emplace(fd, token);
  return ok_status();
}

Status EventLoop::modify(int fd, uint32_t events) {
  std::lock_guard lock(mu_);
  auto it = token_of_fd_.find(fd);
  if (it == token_of_fd_.end()) return make_error("event loop: fd not registered");
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return errno_error("epoll_ctl mod");
  return ok_status();
}

Status EventLoop::remove(int fd) {
  std::lock_guard lock(mu_);
  auto it = token_of_fd_.find(fd);
  if (it == token_of_fd_.end()) return make_error("event loop: fd not registered");
  by_token_.erase(it->second);
  token_of_fd_.erase(it);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) return errno_error("epoll_ctl del");
  return ok_status();
}

bool EventLoop::contains(int fd) const {
  std::lock_guard lock(mu_);
  return token_of_fd_.count(fd) != 0;
}

void EventLoop::wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void EventLoop::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake();
}

bool EventLoop::stopped() const {
  std::lock_guard lock(mu_);
  return stop_;
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  wake();
}

Result<int> EventLoop::run_once(int timeout_ms) {
  epoll_event events[kMaxEvents];
  int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return errno_error("epoll_wait");
  }
  int ran = 0;
  for (int i = 0; i < n; ++i) {
    uint64_t token = events[i].data.u64;
    if (token == kWakeToken) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(wake_.get(), &v, sizeof v);
      continue;
    }
    std::shared_ptr<Callback> cb;
    {
      std::lock_guard lock(mu_);
      auto it = by_token_.find(token);
      if (it == by_token_.end()) continue;  // removed earlier in this batch
      cb = it->second.cb;                   // keeps the callable alive if it removes itself
    }
    (*cb)(events[i].events);
    ++ran;
  }
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard lock(mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
  return ran;
}

Status EventLoop::run() {
  while (!stopped()) {
    auto r = run_once(-1);
    if (!r.ok()) return r.error();
  }
  return ok_status();
}

}  // namespace kiln::vmm

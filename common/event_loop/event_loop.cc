// EventLoop implementation over epoll(7). Timers live in a multimap keyed by deadline; the
// epoll_wait timeout is cut to the earliest one, so no timerfd (and no extra syscall) is needed.
#include "common/event_loop/event_loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "common/clock.h"

namespace kiln {

namespace {
constexpr std::uint64_t kWakeToken = 0;
constexpr int kMaxEvents = 64;
// Longest single wait for a timer, so a far deadline never overflows epoll_wait's int.
constexpr std::uint64_t kMaxTimerWaitMs = 60000;
}  // namespace

std::uint64_t EventLoop::now_ms() { return kiln::monotonic_ns() / 1000000; }

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  auto loop = std::make_unique<EventLoop>();
  KILN_TRY(loop->init());
  return loop;
}

Status EventLoop::init() {
  if (epoll_) return make_error("event loop: already initialised");
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errno_error("epoll_create1");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return errno_error("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) return errno_error("epoll_ctl add wakeup");
  epoll_ = std::move(ep);
  wake_ = std::move(wake);
  return ok_status();
}

Status EventLoop::add(int fd, std::uint32_t events, FdCallback cb) {
  std::lock_guard lock(mu_);
  if (token_of_fd_.count(fd) != 0) return make_error("event loop: fd already registered");
  const std::uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl add");
  by_token_.emplace(token, FdEntry{fd, std::make_shared<FdCallback>(std::move(cb))});
  token_of_fd_.emplace(fd, token);
  return ok_status();
}

Status EventLoop::modify(int fd, std::uint32_t events) {
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

void EventLoop::remove_if_present(int fd) { (void)remove(fd); }

bool EventLoop::contains(int fd) const {
  std::lock_guard lock(mu_);
  return token_of_fd_.count(fd) != 0;
}

EventLoop::TimerId EventLoop::add_timer_ms(std::uint64_t delay_ms, TimerCallback cb) {
  const TimerId id = next_timer_++;
  const std::uint64_t now = now_ms();
  const std::uint64_t deadline =
      delay_ms > std::numeric_limits<std::uint64_t>::max() - now ? std::numeric_limits<std::uint64_t>::max() : now + delay_ms;
  timers_.emplace(id, timer_order_.emplace(deadline, std::make_pair(id, std::move(cb))));
  return id;
}

void EventLoop::cancel_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  timer_order_.erase(it->second);
  timers_.erase(it);
}

void EventLoop::wake() {
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void EventLoop::stop() {
  {
    std::lock_guard lock(mu_);
    ++stop_requests_;
    stop_pending_ = true;
    stopped_ = true;
  }
  wake();
}

bool EventLoop::stopped() const {
  std::lock_guard lock(mu_);
  return stopped_;
}

bool EventLoop::stop_requested_since(std::uint64_t requests) const {
  std::lock_guard lock(mu_);
  return stop_requests_ != requests;
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  wake();
}

int EventLoop::wait_ms(int timeout_ms) const {
  // No clock read without timers: kiln-vmm's loop has none and stays on plain epoll_wait.
  if (timer_order_.empty()) return timeout_ms;
  const std::uint64_t now = now_ms();
  const std::uint64_t due = timer_order_.begin()->first;
  const int until_due = due <= now ? 0 : static_cast<int>(std::min(due - now, kMaxTimerWaitMs));
  return timeout_ms < 0 ? until_due : std::min(timeout_ms, until_due);
}

int EventLoop::run_due_timers(std::uint64_t stop_requests_at_start) {
  int ran = 0;
  // One clock read: a timer added by a callback here for "now" runs in this pass only if its
  // deadline is not later than that read.
  const std::uint64_t now = now_ms();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    if (stop_requested_since(stop_requests_at_start)) break;
    auto first = timer_order_.begin();
    TimerCallback cb = std::move(first->second.second);
    timers_.erase(first->second.first);
    timer_order_.erase(first);
    cb();
    ++ran;
  }
  return ran;
}

Result<int> EventLoop::run_once(int timeout_ms) {
  std::uint64_t stop_requests_at_start;
  {
    std::lock_guard lock(mu_);
    stop_requests_at_start = stop_requests_;
  }
  epoll_event events[kMaxEvents];
  const int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, wait_ms(timeout_ms));
  if (n < 0) {
    if (errno == EINTR) return 0;
    return errno_error("epoll_wait");
  }
  int ran = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t token = events[i].data.u64;
    if (token == kWakeToken) {
      std::uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(wake_.get(), &v, sizeof v);
      continue;
    }
    std::shared_ptr<FdCallback> cb;
    {
      std::lock_guard lock(mu_);
      if (stop_requests_ != stop_requests_at_start) break;  // the rest waits for the next run
      auto it = by_token_.find(token);
      if (it == by_token_.end()) continue;  // removed earlier in this batch
      cb = it->second.cb;
    }
    (*cb)(events[i].events);
    ++ran;
  }
  if (!timer_order_.empty()) ran += run_due_timers(stop_requests_at_start);
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard lock(mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
  return ran;
}

Status EventLoop::run() {
  {
    std::lock_guard lock(mu_);
    if (stop_pending_) {  // stopped before this run began
      stop_pending_ = false;
      return ok_status();
    }
    stopped_ = false;
  }
  for (;;) {
    auto r = run_once(-1);
    if (!r.ok()) return r.error();
    std::lock_guard lock(mu_);
    if (stop_pending_) {
      stop_pending_ = false;
      return ok_status();
    }
  }
}

}  // namespace kiln

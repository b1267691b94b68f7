// EventLoop: one epoll set and a deadline-ordered timer list served by one thread: kiln-vmm's
// device thread and kiln-init's PID 1 loop. Other threads post work or stop it via an eventfd.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln {

// Which thread may call what:
//   any thread:             add, modify, remove, contains, post, stop, stopped
//   the loop thread only:   run, run_once, add_timer_ms, cancel_timer (timers may also be set
//                           before the loop first runs; from elsewhere, post() the call)
// Callbacks run on the loop thread and may call anything, including for their own fd or timer.
// Epoll tokens are never reused, so an event still pending for an fd removed (or removed and
// re-added) earlier in the same batch is dropped instead of reaching the new owner.
class EventLoop {
 public:
  // Receives the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLHUP, ...). Level-triggered unless
  // the caller asks for EPOLLET.
  using FdCallback = std::function<void(std::uint32_t events)>;
  using TimerCallback = std::function<void()>;
  using TimerId = std::uint64_t;  // never 0, so callers may use 0 for "no timer"

  // A ready loop (init() done).
  static Result<std::unique_ptr<EventLoop>> create();
  // Unusable until init() succeeds (for loops held by value).
  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Creates the epoll set and the wakeup eventfd (epoll_create1, eventfd2, epoll_ctl: a caller
  // under seccomp creates the loop before its filter goes on). Once only.
  Status init();

  // Registration. The loop does not own fd; the caller removes it before closing it.
  // add fails for an fd already registered; modify and remove fail for one that is not.
  Status add(int fd, std::uint32_t events, FdCallback cb);
  Status modify(int fd, std::uint32_t events);
  Status remove(int fd);
  // Teardown: removes fd when it is registered; one that is not is fine. Nothing is left behind
  // even if epoll_ctl fails: the fd's token is gone, so an event still queued for it is dropped.
  void remove_if_present(int fd);
  bool contains(int fd) const;

  // cb runs once on the loop thread, in deadline order, no earlier than delay_ms from now.
  TimerId add_timer_ms(std::uint64_t delay_ms, TimerCallback cb);
  // No-op for a timer that already ran, was cancelled, or 0.
  void cancel_timer(TimerId id);

  // Runs iterations until stop(); returns an error only if epoll_wait fails. A stop() made
  // while no run() is active makes the next run() return at once; each run() consumes one.
  Status run();
  // One iteration: epoll_wait of at most timeout_ms (-1 = until an fd is ready or the next
  // timer is due), the ready fd callbacks, the due timers, then the posted functions. A stop()
  // made during the call skips the fd callbacks and timers not yet run (they wait for the next
  // iteration); posted functions still run. Returns the fd and timer callbacks run (not the
  // internal wakeup, not posted functions); 0 when interrupted by a signal.
  Result<int> run_once(int timeout_ms);

  // Any thread: run() returns after the callback in progress.
  void stop();
  // Any thread: fn runs on the loop thread at the end of the current or next iteration.
  void post(std::function<void()> fn);
  // True once stop() was called, until a later run() starts iterating.
  bool stopped() const;

  // Monotonic milliseconds (the timers' clock).
  static std::uint64_t now_ms();

 private:
  struct FdEntry {
    int fd;
    std::shared_ptr<FdCallback> cb;  // shared: a callback that removes itself stays alive
  };
  using TimerOrder = std::multimap<std::uint64_t, std::pair<TimerId, TimerCallback>>;

  void wake();
  bool stop_requested_since(std::uint64_t requests) const;
  int wait_ms(int timeout_ms) const;
  int run_due_timers(std::uint64_t stop_requests_at_start);

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd; its epoll token is kWakeToken

  // Guarded by mu_: registrations, posted work, stop state (reachable from any thread).
  mutable std::mutex mu_;
  std::uint64_t next_token_ = 1;
  std::unordered_map<std::uint64_t, FdEntry> by_token_;
  std::unordered_map<int, std::uint64_t> token_of_fd_;
  std::vector<std::function<void()>> posted_;
  std::uint64_t stop_requests_ = 0;  // counts stop() calls; run_once compares before and after
  bool stop_pending_ = false;        // a stop() no run() has consumed yet
  bool stopped_ = false;

  // Loop thread only: timers by deadline (equal deadlines in the order they were added).
  TimerOrder timer_order_;
  std::unordered_map<TimerId, TimerOrder::iterator> timers_;
  TimerId next_timer_ = 1;
};

}  // namespace kiln

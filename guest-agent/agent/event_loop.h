// EventLoop: the agent's single thread. epoll for fds plus a deadline-ordered timer list;
// callbacks may add/remove fds and timers freely (stale events are filtered by token).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::agent {

class EventLoop {
 public:
  using FdCallback = std::function<void(std::uint32_t events)>;
  using TimerCallback = std::function<void()>;
  using TimerId = std::uint64_t;

  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Status init();
  // Registers fd (not owned) with epoll event mask `events`.
  Status add(int fd, std::uint32_t events, FdCallback cb);
  Status modify(int fd, std::uint32_t events);
  void remove(int fd);

  TimerId add_timer_ms(std::uint64_t delay_ms, TimerCallback cb);
  void cancel_timer(TimerId id);

  // Runs until stop(); returns an error only if epoll itself fails.
  Status run();
  void stop() { stopped_ = true; }

  // Monotonic milliseconds.
  static std::uint64_t now_ms();

 private:
  struct FdEntry {
    std::uint64_t token;
    FdCallback cb;
  };
  struct Timer {
    std::uint64_t deadline;
    TimerCallback cb;
  };
  UniqueFd epoll_;
  std::unordered_map<int, FdEntry> fds_;
  std::unordered_map<std::uint64_t, int> token_fd_;
  std::multimap<std::uint64_t, TimerId> timer_order_;
  std::unordered_map<TimerId, Timer> timers_;
  std::uint64_t next_token_ = 1;
  TimerId next_timer_ = 1;
  bool stopped_ = false;
};

}  // namespace kiln::agent

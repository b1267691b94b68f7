// TickTimer: a timerfd on the event loop that ticks only while something waits for a deadline
// (vsock handshakes, unanswered connection requests), at a quarter of the timeout (1-250 ms),
// so a deadline is noticed at most ~1/4 of the timeout late.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/event_loop/event_loop.h"

namespace kiln::vmm::devices {

class TickTimer {
 public:
  // Creates the timerfd (not yet on the loop). The loop must outlive the timer.
  static Result<std::unique_ptr<TickTimer>> create(EventLoop& loop, std::chrono::milliseconds timeout);
  ~TickTimer();
  TickTimer(const TickTimer&) = delete;
  TickTimer& operator=(const TickTimer&) = delete;

  // Registers on the loop: on_tick runs on the loop thread at each tick while armed.
  Status start(std::function<void()> on_tick);
  // Ticking or not; a system call only when this changes.
  void set_armed(bool armed);
  // Call at each tick: consumes the expirations so the fd stops being readable.
  void drain();

 private:
  TickTimer(EventLoop& loop, UniqueFd fd, std::chrono::milliseconds tick)
      : loop_(loop), fd_(std::move(fd)), tick_(tick) {}

  EventLoop& loop_;
  const UniqueFd fd_;
  const std::chrono::milliseconds tick_;
  bool armed_ = false;
};

}  // namespace kiln::vmm::devices

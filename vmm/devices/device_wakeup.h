// DeviceWakeup: runs a device's callback on its event-loop thread soon (post) or after a delay
// (a loop timer), with at most one of each pending, so a guest kicking a throttled queue adds
// nothing. For rate-limited devices (net, block) waiting for tokens.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "common/event_loop/event_loop.h"
#include "vmm/rate_limiter/token_bucket.h"

namespace kiln::vmm::devices {

class DeviceWakeup {
 public:
  // The loop must outlive this object, which is destroyed on the loop thread or after the loop
  // stopped (like the devices); callbacks still pending then are dropped.
  DeviceWakeup(EventLoop& loop, std::function<void()> fn);
  ~DeviceWakeup();
  DeviceWakeup(const DeviceWakeup&) = delete;
  DeviceWakeup& operator=(const DeviceWakeup&) = delete;

  // Any thread.
  void soon();
  void after(rate_limiter::Nanos delay);  // rounded up to whole ms; 0 = soon()

 private:
  struct State {
    std::function<void()> fn;
    bool alive = true;  // loop thread only
    std::atomic<bool> soon_pending{false};
    std::atomic<bool> timer_pending{false};
  };
  EventLoop& loop_;
  std::shared_ptr<State> state_;
};

}  // namespace kiln::vmm::devices

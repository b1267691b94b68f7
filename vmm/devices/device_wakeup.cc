// DeviceWakeup implementation.
#include "vmm/devices/device_wakeup.h"


namespace kiln::vmm::devices {

DeviceWakeup::DeviceWakeup(EventLoop& loop, std::function<void()> fn)
    : loop_(loop), state_(std::make_shared<State>()) {
  state_->fn = std::move(fn);
}

DeviceWakeup::~DeviceWakeup() { state_->alive = false; }

void DeviceWakeup::soon() {
  if (state_->soon_pending.exchange(true)) return;
  loop_.post([s = state_] {
    s->soon_pending = false;
    if (s->alive) s->fn();
  });
}

void DeviceWakeup::after(rate_limiter::Nanos delay) {
  if (delay == 0) return soon();
  if (state_->timer_pending.exchange(true)) return;
  const uint64_t ms = (delay + 999'999) / 1'000'000;
  // Timers are added on the loop thread only.
  loop_.post([s = state_, ms, loop = &loop_] {
    if (!s->alive) return;
    loop->add_timer_ms(ms, [s] {
      s->timer_pending = false;
      if (s->alive) s->fn();
    });
  });
}

}  // namespace kiln::vmm::devices

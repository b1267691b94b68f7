// TickTimer implementation.
#include "vmm/devices/tick_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace kiln::vmm::devices {

Result<std::unique_ptr<TickTimer>> TickTimer::create(EventLoop& loop, std::chrono::milliseconds timeout) {
  UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd) return errno_error("vsock: timerfd_create");
  auto tick = std::clamp(timeout / 4, std::chrono::milliseconds(1), std::chrono::milliseconds(250));
  return std::unique_ptr<TickTimer>(new TickTimer(loop, std::move(fd), tick));
}

TickTimer::~TickTimer() {
  loop_.remove_if_present(fd_.get());
}

Status TickTimer::start(std::function<void()> on_tick) {
  return loop_.add(fd_.get(), EPOLLIN, [cb = std::move(on_tick)](uint32_t) { cb(); });
}

void TickTimer::set_armed(bool armed) {
  if (armed == armed_) return;
  itimerspec spec{};
  if (armed) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tick_).count();
    spec.it_interval.tv_sec = ns / 1000000000;
    spec.it_interval.tv_nsec = ns % 1000000000;
    spec.it_value = spec.it_interval;
  }
  if (::timerfd_settime(fd_.get(), 0, &spec, nullptr) == 0) armed_ = armed;
}

void TickTimer::drain() {
  uint64_t ticks;
  [[maybe_unused]] ssize_t n = ::read(fd_.get(), &ticks, sizeof ticks);
}

}  // namespace kiln::vmm::devices

// Clock readings as integer nanoseconds: the one place kiln turns a clock_gettime reading into
// a number. Wall time (CLOCK_REALTIME) for timestamps and deadlines another party reads;
// monotonic time (CLOCK_MONOTONIC) for durations and budgets, which a wall-clock step must not
// move.
#pragma once

#include <time.h>

#include <cstdint>

namespace kiln {

inline std::uint64_t timespec_ns(const timespec& ts) {
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return timespec_ns(ts);
}

inline std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return timespec_ns(ts);
}

}  // namespace kiln

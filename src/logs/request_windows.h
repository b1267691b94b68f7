// RequestWindows: which request a guest's output line belongs to, when kiln-init did not say
// (LogEvent::request_id, checked with served()). Per instance, the recent
// requests' windows (lease to release, host wall clock); a line stamped by the guest's clock,
// brought onto the host's (host_time), goes to the one request whose window holds its stamp, so
// output that trails its answer is not given to the next request. Single-threaded (kilnd's loop).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace kiln::kilnd::logs {

class RequestWindows {
 public:
  static constexpr std::size_t kPerInstance = 16;   // windows kept per instance
  static constexpr std::size_t kInstances = 4096;   // instances tracked (oldest dropped first)

  void begin(const std::string& instance, const std::string& request, std::uint64_t now_ns);
  void end(const std::string& instance, const std::string& request, std::uint64_t now_ns);
  // The request a line stamped `ts_ns` on `instance` belongs to: the only window holding it;
  // else, with one request in flight, that one; else, nothing in flight, the last one served;
  // else "" (ambiguous: several requests in flight at once and the stamp does not decide).
  std::string attribute(const std::string& instance, std::uint64_t ts_ns) const;
  // Whether `request` is one of the recent requests kept for `instance` (a guest's own claim
  // that a line belongs to it is taken only then).
  bool served(const std::string& instance, const std::string& request) const;
  // The host's time of a line the guest stamped `guest_ns` (its wall clock) and that arrived at
  // `arrival_ns` (the host's). A guest's clock is off the host's by a steady offset (set at boot,
  // seen at ~50 ms behind under the emulated test host); the smallest arrival-minus-stamp seen on
  // the instance is that offset plus the shortest delivery delay, and shifts every stamp. The
  // result keeps the guest's own spacing of its lines and is never later than the arrival.
  std::uint64_t host_time(const std::string& instance, std::uint64_t guest_ns, std::uint64_t arrival_ns);
  void forget(const std::string& instance) { instances_.erase(instance); }

 private:
  struct Window {
    std::string request;
    std::uint64_t start_ns = 0;
    std::uint64_t end_ns = 0;  // 0 while in flight
  };
  struct PerInstance {
    std::deque<Window> windows;  // in lease order
    bool have_offset = false;
    std::int64_t offset_ns = 0;  // min(arrival - guest stamp)
  };
  PerInstance& slot(const std::string& instance);
  std::map<std::string, PerInstance> instances_;
};

}  // namespace kiln::kilnd::logs

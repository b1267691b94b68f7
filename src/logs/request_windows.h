// RequestWindows: which request a guest's output line belongs to. Per instance, the recent
// requests' windows (lease to release, host wall clock); a line stamped by the guest's clock
// (synchronised with the host's) goes to the one request whose window holds its stamp, so output
// that trails its answer is not given to the next request. Single-threaded (kilnd's loop).
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
  void forget(const std::string& instance) { windows_.erase(instance); }

 private:
  struct Window {
    std::string request;
    std::uint64_t start_ns = 0;
    std::uint64_t end_ns = 0;  // 0 while in flight
  };
  std::map<std::string, std::deque<Window>> windows_;
};

}  // namespace kiln::kilnd::logs

// Attribution of guest output lines to requests by their time stamps (see request_windows.h).
#include "src/logs/request_windows.h"

#include <algorithm>

namespace kiln::kilnd::logs {

RequestWindows::PerInstance& RequestWindows::slot(const std::string& instance) {
  if (instances_.size() >= kInstances && instances_.count(instance) == 0) instances_.erase(instances_.begin());
  return instances_[instance];
}

void RequestWindows::begin(const std::string& instance, const std::string& request, std::uint64_t now_ns) {
  auto& w = slot(instance).windows;
  w.push_back(Window{request, now_ns, 0});
  while (w.size() > kPerInstance) w.pop_front();
}

void RequestWindows::end(const std::string& instance, const std::string& request, std::uint64_t now_ns) {
  auto it = instances_.find(instance);
  if (it == instances_.end()) return;
  for (auto w = it->second.windows.rbegin(); w != it->second.windows.rend(); ++w) {
    if (w->request == request && w->end_ns == 0) {
      w->end_ns = now_ns;
      return;
    }
  }
}

std::uint64_t RequestWindows::host_time(const std::string& instance, std::uint64_t guest_ns, std::uint64_t arrival_ns) {
  PerInstance& p = slot(instance);
  const std::int64_t delta = static_cast<std::int64_t>(arrival_ns - guest_ns);  // two's complement: may be < 0
  if (!p.have_offset || delta < p.offset_ns) {
    p.offset_ns = delta;
    p.have_offset = true;
  }
  return std::min(arrival_ns, guest_ns + static_cast<std::uint64_t>(p.offset_ns));
}

bool RequestWindows::served(const std::string& instance, const std::string& request) const {
  auto it = instances_.find(instance);
  if (it == instances_.end() || request.empty()) return false;
  for (const Window& w : it->second.windows) {
    if (w.request == request) return true;
  }
  return false;
}

std::string RequestWindows::attribute(const std::string& instance, std::uint64_t ts_ns) const {
  auto it = instances_.find(instance);
  if (it == instances_.end() || it->second.windows.empty()) return "";
  const std::deque<Window>& ws = it->second.windows;  // in lease order
  const Window* holder = nullptr;
  const Window* latest_before = nullptr;  // the last window that began before the stamp
  const Window* in_flight = nullptr;
  std::size_t holders = 0, flying = 0;
  for (const Window& w : ws) {
    if (w.end_ns == 0) {
      ++flying;
      in_flight = &w;
    }
    if (w.start_ns > ts_ns) continue;
    latest_before = &w;
    if (w.end_ns == 0 || ts_ns <= w.end_ns) {
      ++holders;
      holder = &w;
    }
  }
  if (holders == 1) return holder->request;
  if (holders > 1) return "";  // concurrent requests on one instance: the stamp does not decide
  if (latest_before != nullptr) return latest_before->request;  // output that trails its answer
  // Stamped before every window (output from before the first request kept here).
  if (flying == 1) return in_flight->request;
  if (flying == 0) return ws.back().request;
  return "";
}

}  // namespace kiln::kilnd::logs

// Attribution of guest output lines to requests by their time stamps (see request_windows.h).
#include "src/logs/request_windows.h"

namespace kiln::kilnd::logs {

void RequestWindows::begin(const std::string& instance, const std::string& request, std::uint64_t now_ns) {
  if (windows_.size() >= kInstances && windows_.count(instance) == 0) windows_.erase(windows_.begin());
  auto& w = windows_[instance];
  w.push_back(Window{request, now_ns, 0});
  while (w.size() > kPerInstance) w.pop_front();
}

void RequestWindows::end(const std::string& instance, const std::string& request, std::uint64_t now_ns) {
  auto it = windows_.find(instance);
  if (it == windows_.end()) return;
  for (auto w = it->second.rbegin(); w != it->second.rend(); ++w) {
    if (w->request == request && w->end_ns == 0) {
      w->end_ns = now_ns;
      return;
    }
  }
}

std::string RequestWindows::attribute(const std::string& instance, std::uint64_t ts_ns) const {
  auto it = windows_.find(instance);
  if (it == windows_.end() || it->second.empty()) return "";
  const std::deque<Window>& ws = it->second;  // in lease order
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
  // Stamped before every window (a guest clock behind the host's): as before stamps were used.
  if (flying == 1) return in_flight->request;
  if (flying == 0) return ws.back().request;
  return "";
}

}  // namespace kiln::kilnd::logs

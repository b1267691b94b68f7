// Proxy: invocation port 9000. Each accepted host connection (vsock, or Unix in tests) is
// spliced to a fresh TCP connection to 127.0.0.1:<port>, both directions, with half-close.
// It does not parse HTTP beyond noticing where each request's head ends (Observer).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/event_loop/event_loop.h"

namespace kiln::agent {

class Proxy {
 public:
  static constexpr std::size_t kBufferSize = 64 * 1024;
  static constexpr std::size_t kMaxSessions = 1024;
  static constexpr std::size_t kMaxHead = 16 * 1024;  // a longer head is a request with no id

  // Told of each request as it passes: a session's first bytes, and its first bytes after the
  // app has answered, begin a request head; request() is called once the head is complete (or
  // kMaxHead long) and before its last bytes go to the app, so the app has not seen the request
  // yet; answer() at the app's first bytes after a head; closed() at the session's end.
  struct Observer {
    std::function<void(std::uint64_t session, std::string_view head)> request;
    std::function<void(std::uint64_t session)> answer;
    std::function<void(std::uint64_t session)> closed;
  };

  Proxy(EventLoop& loop, UniqueFd listener, std::uint16_t target_port);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  Status start();
  void set_target_port(std::uint16_t port) { target_port_ = port; }
  // Hands the listener over (Lambda mode: the bridge serves port 9000 instead); the proxy then
  // accepts nothing more.
  UniqueFd release_listener();
  // Told (one line) when a connection ends on an error rather than a clean close: the app could
  // not be reached, or a socket failed mid-stream. The agent puts it in the function's log.
  void set_reporter(std::function<void(const std::string&)> report) { report_ = std::move(report); }
  void set_observer(Observer o) { observer_ = std::move(o); }
  std::size_t sessions() const { return sessions_.size(); }

 private:
  struct Session;
  void on_accept();
  void close_session(std::uint64_t id);
  void report(const std::string& what) const {
    if (report_) report_(what);
  }
  void host_bytes(Session& s, const char* p, std::size_t n);
  void app_bytes(Session& s);

  EventLoop& loop_;
  UniqueFd listener_;
  std::uint16_t target_port_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Session>> sessions_;
  std::function<void(const std::string&)> report_;
  Observer observer_;
};

}  // namespace kiln::agent

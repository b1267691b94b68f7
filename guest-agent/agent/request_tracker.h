// RequestTracker: which invocation the function's output belongs to, as kiln-init sees it. The
// proxy reports each request's head as it passes (before the app can read it: Proxy::Observer),
// the first bytes of each answer, and each connection's end; output lines are tagged with
// current(). With the pipes drained before a new head is passed on, a line the app wrote before
// it could see the next request is never tagged with that request, however late it reaches
// the host (the host-side time windows cannot promise that when calls come back to back).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kiln::agent {

class RequestTracker {
 public:
  // The X-Kiln-Request-Id of an HTTP/1.x request head (request line + headers, up to and
  // including the blank line); "" when the bytes are not such a head, the header is missing or
  // repeated, or its value is empty, longer than kMaxId or not printable ASCII without spaces.
  static constexpr std::size_t kMaxId = 128;
  static std::string request_id_in_head(std::string_view head);

  void started(std::uint64_t session, std::string request_id);  // "" = a request with no id
  void answered(std::uint64_t session);  // the app's first answer bytes for the session's request
  void closed(std::uint64_t session);

  // The request output belongs to now: the request waiting for its answer, or with none
  // waiting the last one started (output that trails its answer); "" once requests overlap
  // (concurrency above 1: the order of output cannot tell them apart) until one starts alone.
  std::string current() const;

 private:
  std::map<std::uint64_t, std::string> waiting_;  // session -> request: started, not answered
  std::string last_;  // the last request started
  bool overlapped_ = false;  // it started while another was waiting
};

}  // namespace kiln::agent

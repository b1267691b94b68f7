// KeptStreams: the streams to one instance's function server that HTTP/1.1 keep-alive (through
// kiln-init) left open after their answers, for the next invocations to reuse instead of a new
// hybrid-vsock connection. Newest first out; a stream is reused only while fresh and quiet.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

#include "src/server/net.h"

namespace kiln::kilnd::pool {

class KeptStreams {
 public:
  using Clock = std::chrono::steady_clock;

  // How long a stream is reused after its last answer: below the idle timeouts servers commonly
  // keep (Node.js 5 s), so the server rarely closes one just as it is reused.
  static constexpr std::chrono::milliseconds kReuseFor{4000};

  // The newest stream that is fresh and still open with nothing to read (a peek that would
  // block); older, closed or unexpectedly readable ones are dropped on the way.
  std::optional<local::socket> take(Clock::time_point now);
  // Keeps an open stream (at most `max` of them, the oldest going first).
  void give(local::socket socket, Clock::time_point now, std::size_t max);
  void clear() { kept_.clear(); }
  std::size_t size() const { return kept_.size(); }

 private:
  struct Kept {
    local::socket socket;
    Clock::time_point since;  // idle since
  };
  std::vector<Kept> kept_;  // oldest first
};

}  // namespace kiln::kilnd::pool

// Kept-alive instance streams: freshness and a non-blocking peek decide reuse.
#include "src/pool/kept_streams.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace kiln::kilnd::pool {

std::optional<local::socket> KeptStreams::take(Clock::time_point now) {
  while (!kept_.empty()) {
    Kept k = std::move(kept_.back());
    kept_.pop_back();
    if (now - k.since > kReuseFor) {
      kept_.clear();  // the rest are older still
      break;
    }
    // Open and quiet: a peek finds nothing to read (EOF or stray bytes: not reusable).
    char c = 0;
    ssize_t n = ::recv(k.socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::move(k.socket);
  }
  return std::nullopt;
}

void KeptStreams::give(local::socket socket, Clock::time_point now, std::size_t max) {
  if (!socket.is_open()) return;
  kept_.push_back(Kept{std::move(socket), now});
  if (kept_.size() > std::max<std::size_t>(max, 1)) kept_.erase(kept_.begin());
}

}  // namespace kiln::kilnd::pool

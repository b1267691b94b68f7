// LineSplitter implementation; "\r\n" endings lose the '\r' as well.
#include "guest-agent/agent/line_splitter.h"

namespace kiln::agent {

void LineSplitter::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    std::string_view chunk = nl == std::string_view::npos ? bytes : bytes.substr(0, nl);
    // Fill pending up to the limit; emit full parts as partial lines.
    while (pending_.size() + chunk.size() > max_line_) {
      std::size_t take = max_line_ - pending_.size();
      pending_.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      sink_(pending_, true);
      pending_.clear();
    }
    pending_.append(chunk);
    if (nl == std::string_view::npos) return;
    if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
    sink_(pending_, false);
    pending_.clear();
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish() {
  if (pending_.empty()) return;
  sink_(pending_, false);
  pending_.clear();
}

}  // namespace kiln::agent

// Request heads and the request each output line belongs to (see request_tracker.h).
#include "guest-agent/agent/request_tracker.h"

#include <cctype>

namespace kiln::agent {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "METHOD SP target SP HTTP/1.x" with an upper-case token for the method.
bool is_request_line(std::string_view line) {
  auto sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos) return false;
  for (char c : line.substr(0, sp1)) {
    if (c < 'A' || c > 'Z') return false;
  }
  auto sp2 = line.rfind(' ');
  if (sp2 == sp1) return false;
  std::string_view version = line.substr(sp2 + 1);
  return version == "HTTP/1.1" || version == "HTTP/1.0";
}

}  // namespace

std::string RequestTracker::request_id_in_head(std::string_view head) {
  auto end = head.find("\r\n\r\n");
  if (end == std::string_view::npos) return "";
  head = head.substr(0, end + 2);
  auto eol = head.find("\r\n");
  if (!is_request_line(head.substr(0, eol))) return "";
  std::string_view found;
  int count = 0;
  for (std::size_t pos = eol + 2; pos < head.size();) {
    auto e = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, e - pos);
    pos = e + 2;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (!iequals(line.substr(0, colon), "x-kiln-request-id")) continue;
    found = trim(line.substr(colon + 1));
    ++count;
  }
  if (count != 1 || found.empty() || found.size() > kMaxId) return "";
  for (char c : found) {
    if (c <= ' ' || c > '~') return "";
  }
  return std::string(found);
}

void RequestTracker::started(std::uint64_t session, std::string request_id) {
  waiting_.erase(session);  // a new head on the same connection: its previous request is over
  overlapped_ = !waiting_.empty();
  waiting_[session] = request_id;
  last_ = std::move(request_id);
}

void RequestTracker::answered(std::uint64_t session) { waiting_.erase(session); }

void RequestTracker::closed(std::uint64_t session) { waiting_.erase(session); }

std::string RequestTracker::current() const {
  if (overlapped_) return "";
  if (waiting_.size() == 1) return waiting_.begin()->second;
  return waiting_.empty() ? last_ : "";
}

}  // namespace kiln::agent

// HttpMessageReader: request line and header syntax checks (RFC 9112 tokens, no obs-fold), a
// single well-formed Content-Length, every size bounded before anything is copied.
#include "guest-agent/agent/http_message.h"

#include <strings.h>

#include <algorithm>
#include <charconv>

namespace kiln::agent {

namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "Status";
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequal(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

HttpMessageReader::State HttpMessageReader::fail(int status, std::string text) {
  error_status_ = status;
  error_text_ = std::move(text);
  return State::kError;
}

void HttpMessageReader::feed(std::string_view bytes) {
  if (error_status_ != 0 && !oversize_body()) return;
  std::size_t dropped = std::min(discard_, bytes.size());
  discard_ -= dropped;
  bytes.remove_prefix(dropped);
  buf_.append(bytes.substr(0, room()));
}

std::size_t HttpMessageReader::room() const {
  // Never more than one request's worth: past that poll() reports the limit anyway. Bytes of a
  // refused body being skipped are dropped as they come, so they need no room.
  std::size_t cap = limits_.max_head + limits_.max_body + 4;
  std::size_t used = buf_.size() > cap ? cap : buf_.size();
  return discard_ > 0 ? cap : cap - used;
}

bool HttpMessageReader::parse_head(std::string_view head) {
  current_ = HttpRequest{};
  auto line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "malformed request line"), false;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method"), false;
  if (target.empty() || target[0] != '/') return fail(400, "request target is not an absolute path"), false;
  for (char c : target) {
    if (c <= 0x20 || c == 0x7f) return fail(400, "control byte in the request target"), false;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(400, "not HTTP/1.x"), false;
  current_.method = std::string(method);
  current_.target = std::string(target);
  current_.keep_alive = version == "HTTP/1.1";
  std::size_t pos = line_end + 2;
  bool have_length = false;
  body_length_ = 0;
  while (pos < head.size()) {
    auto end = head.find("\r\n", pos);
    std::string_view h = head.substr(pos, end - pos);
    pos = end + 2;
    if (h.empty()) break;
    auto colon = h.find(':');
    if (colon == std::string_view::npos || !is_token(h.substr(0, colon))) {
      return fail(400, "malformed header line"), false;
    }
    std::string_view name = h.substr(0, colon);
    std::string_view value = trim(h.substr(colon + 1));
    for (char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(400, "control byte in a header value"), false;
    }
    if (current_.headers.size() >= limits_.max_headers) return fail(431, "too many header fields"), false;
    if (iequal(name, "transfer-encoding")) return fail(411, "chunked bodies are not accepted: send Content-Length"), false;
    if (iequal(name, "content-length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
        return fail(400, "malformed Content-Length"), false;
      }
      if (have_length && n != body_length_) return fail(400, "conflicting Content-Length"), false;
      have_length = true;
      body_length_ = n;
    }
    if (iequal(name, "connection") && iequal(value, "close")) current_.keep_alive = false;
    if (iequal(name, "connection") && iequal(value, "keep-alive")) current_.keep_alive = true;
    current_.headers.emplace_back(std::string(name), std::string(value));
  }
  head_parsed_ = true;
  if (body_length_ > limits_.max_body) {
    fail(413, "body of " + std::to_string(body_length_) + " bytes is over " + std::to_string(limits_.max_body));
    return false;
  }
  return true;
}

HttpMessageReader::State HttpMessageReader::poll() {
  if (error_status_ != 0) return State::kError;
  if (!head_parsed_) {
    auto end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (buf_.size() > limits_.max_head) return fail(431, "request head over " + std::to_string(limits_.max_head) + " bytes");
      return State::kNeedMore;
    }
    if (end + 4 > limits_.max_head) return fail(431, "request head over " + std::to_string(limits_.max_head) + " bytes");
    bool ok = parse_head(std::string_view(buf_).substr(0, end + 4));
    if (head_parsed_) buf_.erase(0, end + 4);  // an oversize body's head too: the body follows
    if (!ok) return State::kError;
  }
  if (buf_.size() < body_length_) return State::kNeedMore;
  return State::kRequest;
}

void HttpMessageReader::skip_oversize_body() {
  if (!oversize_body()) return;
  std::size_t here = std::min(body_length_, buf_.size());
  buf_.erase(0, here);
  discard_ = body_length_ - here;
  current_ = HttpRequest{};
  head_parsed_ = false;
  body_length_ = 0;
  error_status_ = 0;
  error_text_.clear();
}

HttpRequest HttpMessageReader::take() {
  HttpRequest r = std::move(current_);
  r.body = buf_.substr(0, body_length_);
  buf_.erase(0, body_length_);
  current_ = HttpRequest{};
  head_parsed_ = false;
  body_length_ = 0;
  return r;
}

std::string format_http_response(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                                 std::string_view body, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  for (const auto& [n, v] : headers) out += n + ": " + v + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out.append(body);
  return out;
}

}  // namespace kiln::agent

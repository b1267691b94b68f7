// hello: kiln's example function. A tiny static HTTP/1.1 server for the Tencent SCF
// custom-image contract: listens on 0.0.0.0:9000, answers POST /event-invoke with JSON derived
// from the event, GET / with a small page, and logs one line per request to stdout (before
// answering it). A thread per connection; connections are kept alive (HTTP/1.1) until the
// client closes them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

constexpr std::size_t kMaxHeader = 64 * 1024;
constexpr std::size_t kMaxBody = 6 * 1024 * 1024;  // SCF's event size limit

void log_line(const std::string& line) {
  std::string l = line + "\n";
  (void)!write(1, l.data(), l.size());  // unbuffered: one write per line
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// Finds the string value of a top-level-looking "key": "value" pair. Deliberately simple: the
// example only needs to show that the answer is derived from the event.
bool find_string_field(std::string_view body, std::string_view key, std::string* out) {
  std::string needle = "\"" + std::string(key) + "\"";
  auto p = body.find(needle);
  if (p == std::string_view::npos) return false;
  p += needle.size();
  while (p < body.size() && (body[p] == ' ' || body[p] == '\t' || body[p] == '\n' || body[p] == '\r')) ++p;
  if (p >= body.size() || body[p] != ':') return false;
  ++p;
  while (p < body.size() && (body[p] == ' ' || body[p] == '\t' || body[p] == '\n' || body[p] == '\r')) ++p;
  if (p >= body.size() || body[p] != '"') return false;
  ++p;
  std::string v;
  while (p < body.size() && body[p] != '"') {
    if (body[p] == '\\' && p + 1 < body.size()) ++p;
    v += body[p++];
  }
  if (p >= body.size()) return false;
  *out = v;
  return true;
}

bool send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

void respond(int fd, int status, const char* reason, const char* type, const std::string& body, bool keep_alive) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  r += "Content-Type: " + std::string(type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
  r += body;
  send_all(fd, r);
}

// One connection: its requests one after the other until the client closes it or asks to
// (HTTP/1.1 keeps a connection open by default; kilnd reuses it for the next invocation).
void serve(int fd) {
  std::string buf;
  char chunk[16384];
  while (true) {
    std::size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > kMaxHeader) {
        respond(fd, 431, "Request Header Fields Too Large", "text/plain", "header too large\n", false);
        return;
      }
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // closed (readiness probes connect and close without a request), or idle too long
      buf.append(chunk, static_cast<std::size_t>(n));
    }
    std::string_view head(buf.data(), header_end);
    auto line_end = head.find("\r\n");
    std::string_view request_line = head.substr(0, line_end);
    auto sp1 = request_line.find(' ');
    auto sp2 = request_line.find(' ', sp1 == std::string_view::npos ? 0 : sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
      respond(fd, 400, "Bad Request", "text/plain", "bad request line\n", false);
      return;
    }
    std::string method(request_line.substr(0, sp1));
    std::string path(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
    bool keep_alive = request_line.substr(sp2 + 1) == "HTTP/1.1";
    std::size_t content_length = 0;
    std::string request_id = "-";
    std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      auto e = head.find("\r\n", pos);
      if (e == std::string_view::npos) e = head.size();
      std::string_view h = head.substr(pos, e - pos);
      auto colon = h.find(':');
      if (colon != std::string_view::npos) {
        std::string name = lower(h.substr(0, colon));
        std::string_view value = h.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (name == "content-length") {
          content_length = std::strtoull(std::string(value).c_str(), nullptr, 10);
        } else if (name == "x-scf-request-id") {
          request_id = std::string(value);
        } else if (name == "connection" && lower(value) == "close") {
          keep_alive = false;
        }
      }
      pos = e + 2;
    }
    if (content_length > kMaxBody) {
      respond(fd, 413, "Payload Too Large", "text/plain", "event too large\n", false);
      return;
    }
    const std::size_t body_at = header_end + 4;
    while (buf.size() < body_at + content_length) {
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      buf.append(chunk, static_cast<std::size_t>(n));
    }
    std::string body = buf.substr(body_at, content_length);
    buf.erase(0, body_at + content_length);  // what is left belongs to the next request

    // Each request's line is written before its answer, as a Lambda handler's output comes
    // before it returns: kiln-init then files it under this request however soon the next one
    // follows (a line written after the answer can meet the next request first).
    auto log_request = [&](int status) {
      log_line("hello: " + method + " " + path + " " + std::to_string(status) + " request_id=" + request_id +
               " bytes=" + std::to_string(body.size()));
    };
    if (method == "POST" && path == "/event-invoke") {
      std::string name = "world";
      find_string_field(body, "name", &name);
      std::string answer = "{\"message\":\"hello, " + json_escape(name) + "\",\"event_bytes\":" +
                           std::to_string(body.size()) + ",\"request_id\":\"" + json_escape(request_id) + "\"}";
      log_request(200);
      respond(fd, 200, "OK", "application/json", answer, keep_alive);
    } else if (method == "GET" && path == "/") {
      log_request(200);
      respond(fd, 200, "OK", "text/html; charset=utf-8",
              "<!doctype html><title>kiln hello</title><h1>hello from kiln</h1>\n", keep_alive);
    } else {
      log_request(404);
      respond(fd, 404, "Not Found", "text/plain", "not found\n", keep_alive);
    }
    if (!keep_alive) return;
  }
}

void on_term(int) {
  static const char msg[] = "hello: shutting down\n";
  (void)!write(1, msg, sizeof(msg) - 1);
  _exit(0);
}

}  // namespace

int main() {
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGPIPE, SIG_IGN);
  int port = 9000;
  if (const char* p = std::getenv("HELLO_PORT")) port = std::atoi(p);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(s, 128) != 0) {
    std::perror("hello: listen");
    return 1;
  }
  log_line("hello: listening on 0.0.0.0:" + std::to_string(port));
  while (true) {
    int c = accept4(s, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      std::perror("hello: accept");
      continue;
    }
    timeval tv{10, 0};  // a stuck or idle client lets go of its thread after 10 s
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::thread([c] {
      serve(c);
      close(c);
    }).detach();
  }
}

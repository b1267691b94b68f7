// fake-kiln-vmm: stands in for kiln-vmm (and the guest's kiln-init) in kilnd's unit tests.
// Serves the Firecracker-style API on --api-sock (records each PUT in <dir>/api.log), and on
// InstanceStart plays the agent over hybrid vsock on the configured uds_path: hello on
// <uds>_10001, launch spec on port 10000, ready, an HTTP echo server on port 9000 with a log
// event per request, status and shutdown. The launch spec's env FAKE_MODE picks misbehaviour:
// "exit" (the command exits 3 right after launch), "notready", "nohello". With FAKE_AGENT set
// to a kiln-init binary, the real agent runs instead (kiln-init --no-boot on Unix sockets) and
// this process only plays the VMM's hybrid-vsock muxer: CONNECT 9000/10000 are spliced to the
// agent's proxy/control sockets and the agent connects to <uds>_10001 itself.
// Snapshots: PUT /snapshot/create writes a small state file (a marker and the command) and a
// memory file; PUT /snapshot/load refuses anything else with a fault_message and otherwise plays
// a restored agent (hello "ready", identity acked on port 10000), right away or, loaded with
// resume_vm false, once PATCH /vm resumes it.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/protocol/frame.h"
#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"

namespace {

using namespace kiln::protocol;

std::string g_dir;
std::string g_uds;
std::mutex g_events_mu;
int g_events_fd = -1;
std::uint64_t g_seq = 1;
LaunchSpec g_spec;
std::atomic<bool> g_ready{false};
bool g_restored = false;  // loaded from a snapshot: the agent is launched already
bool g_resume_pending = false;  // loaded paused: the agent runs from the next PATCH /vm
constexpr const char* kSnapshotMarker = "fake-kiln-vmm snapshot\n";

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

int unix_listen(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 64) != 0) return -1;
  return fd;
}

int unix_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

template <typename E>
void emit(E e) {
  std::lock_guard<std::mutex> lock(g_events_mu);
  e.seq = g_seq++;
  auto f = encode(e);
  if (f.ok() && g_events_fd >= 0) send_all(g_events_fd, *f);
}

void log_line(const std::string& text) {
  LogEvent e;
  e.ts_ns = kiln::realtime_ns();
  e.data = text;
  emit(e);
}

std::string mode() {
  if (const char* m = std::getenv("FAKE_MODE")) return m;
  for (const auto& e : g_spec.env) {
    if (e.rfind("FAKE_MODE=", 0) == 0) return e.substr(10);
  }
  return "";
}

// Reads until "\r\n\r\n" plus Content-Length bytes.
bool read_http(int fd, std::string* head, std::string* body) {
  std::string buf;
  char c[4096];
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = recv(fd, c, sizeof(c), 0);
    if (n <= 0) return false;
    buf.append(c, static_cast<std::size_t>(n));
  }
  *head = buf.substr(0, end);
  std::size_t len = 0;
  std::string lower = *head;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto p = lower.find("content-length:");
  if (p != std::string::npos) len = std::strtoull(lower.c_str() + p + 15, nullptr, 10);
  *body = buf.substr(end + 4);
  while (body->size() < len) {
    ssize_t n = recv(fd, c, sizeof(c), 0);
    if (n <= 0) return false;
    body->append(c, static_cast<std::size_t>(n));
  }
  return true;
}

std::string header_value(const std::string& head, const std::string& name) {
  std::string lower = head;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto p = lower.find("\r\n" + name + ":");
  if (p == std::string::npos) return "";
  auto s = p + 3 + name.size();
  auto e = head.find("\r\n", s);
  std::string v = head.substr(s, e - s);
  while (!v.empty() && v[0] == ' ') v.erase(0, 1);
  return v;
}

void serve_invoke(int fd) {
  std::string head, body;
  if (!read_http(fd, &head, &body)) return;
  std::string line = head.substr(0, head.find("\r\n"));
  if (body.find("hang") != std::string::npos) {
    char c;
    while (recv(fd, &c, 1, 0) > 0) {
    }
    return;  // never answers; the host gives up
  }
  if (body.find("crash") != std::string::npos) {
    ExitEvent e;
    e.pid = 42;
    e.code = 1;
    log_line("fake: crashing");
    emit(e);
    _exit(0);  // the "VM" ends
  }
  nlohmann::json j = {{"request_line", line},
                      {"body", body},
                      {"request_id", header_value(head, "x-scf-request-id")},
                      {"argv0", g_spec.argv.empty() ? "" : g_spec.argv[0]}};
  std::string out = j.dump();
  std::string res = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(out.size()) + "\r\nConnection: close\r\n\r\n" + out;
  send_all(fd, res);
  log_line("fake: " + line + " request_id=" + header_value(head, "x-scf-request-id"));
}

void serve_control(int fd) {
  FrameDecoder dec;
  char buf[65536];
  Frame f;
  while (!dec.next(&f)) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    if (!dec.feed(std::string_view(buf, static_cast<std::size_t>(n))).ok()) return;
  }
  if (f.type == FrameType::kLaunchSpec) {
    auto spec = decode_launch_spec(f.payload);
    Ack ack;
    ack.ok = spec.ok();
    if (!spec.ok()) ack.message = spec.error().message;
    send_all(fd, *encode(ack));
    if (!spec.ok()) return;
    g_spec = *spec;
    log_line("fake: launched " + (g_spec.argv.empty() ? std::string() : g_spec.argv[0]) + " as " + g_spec.instance_id);
    if (mode() == "exit") {
      ExitEvent e;
      e.pid = 42;
      e.code = 3;
      emit(e);
    } else if (mode() == "notready") {
      NotReadyEvent e;
      e.port = 9000;
      e.message = "not ready after 0.1 s";
      emit(e);
    } else {
      ReadyEvent e;
      e.port = 9000;
      g_ready = true;
      emit(e);
    }
  } else if (f.type == FrameType::kIdentity) {
    auto id = decode_identity(f.payload);
    send_all(fd, *encode(Ack{id.ok(), id.ok() ? "identity applied" : id.error().message}));
    if (!id.ok()) return;
    g_spec.instance_id = id->instance_id;
    log_line("fake: identity " + id->instance_id + " entropy " + std::to_string(id->entropy.size()));
  } else if (f.type == FrameType::kStatusRequest) {
    StatusReply s;
    s.state = g_ready ? "ready" : "starting";
    s.ready = g_ready;
    s.instance_id = g_spec.instance_id;
    send_all(fd, *encode(s));
  } else if (f.type == FrameType::kShutdown) {
    send_all(fd, *encode(Ack{true, ""}));
    log_line("fake: shutting down");
    ExitEvent e;
    e.pid = 42;
    emit(e);
    std::ofstream(g_dir + "/shutdown") << "1\n";
    _exit(0);
  }
}

void vsock_thread() {
  int l = unix_listen(g_uds);
  if (l < 0) _exit(11);
  if (mode() != "nohello") {
    int ev = unix_connect(g_uds + "_10001");
    if (ev < 0) _exit(12);
    {
      std::lock_guard<std::mutex> lock(g_events_mu);
      g_events_fd = ev;
    }
    HelloEvent h;
    h.state = g_restored ? "ready" : "waiting";
    g_ready = g_restored;
    h.version = "fake";
    emit(h);
  }
  while (true) {
    int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::thread([c] {
      std::string line;
      char ch;
      while (recv(c, &ch, 1, 0) == 1 && ch != '\n' && line.size() < 64) line += ch;
      unsigned port = 0;
      if (std::sscanf(line.c_str(), "CONNECT %u", &port) != 1 || (port != 9000 && port != 10000)) {
        close(c);  // nothing listens there: the connection is reset
        return;
      }
      send_all(c, "OK 1073741824\n");
      if (port == 9000) serve_invoke(c);
      else serve_control(c);
      close(c);
    }).detach();
  }
}

// Copies a -> b until EOF, then half-closes b.
void pump(int a, int b) {
  char buf[65536];
  while (true) {
    ssize_t n = recv(a, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (!send_all(b, std::string(buf, static_cast<std::size_t>(n)))) break;
  }
  shutdown(b, SHUT_WR);
}

void real_agent_thread(const std::string& agent) {
  std::string control = g_dir + "/agent-control.sock", proxy = g_dir + "/agent-proxy.sock";
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::string c = "unix:" + control, p = "unix:" + proxy, e = "unix:" + g_uds + "_10001";
    execl(agent.c_str(), agent.c_str(), "--no-boot", "--control", c.c_str(), "--proxy", p.c_str(), "--events",
          e.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // The agent ending is the VM ending (kiln-init reboots the guest, the VMM exits).
  std::thread([child] {
    int status = 0;
    waitpid(child, &status, 0);
    _exit(0);
  }).detach();
  int l = unix_listen(g_uds);
  if (l < 0) _exit(11);
  while (true) {
    int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::thread([c, control, proxy] {
      std::string line;
      char ch;
      while (recv(c, &ch, 1, 0) == 1 && ch != '\n' && line.size() < 64) line += ch;
      unsigned port = 0;
      int target = -1;
      if (std::sscanf(line.c_str(), "CONNECT %u", &port) == 1 && (port == 9000 || port == 10000)) {
        target = unix_connect(port == 9000 ? proxy : control);
      }
      if (target < 0) {
        close(c);
        return;
      }
      send_all(c, "OK 1073741824\n");
      std::thread up([c, target] { pump(c, target); });
      pump(target, c);
      up.join();
      close(target);
      close(c);
    }).detach();
  }
}

void respond(int fd, int status, const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + (status < 300 ? " OK" : " Bad Request") +
                  "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body;
  send_all(fd, r);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::string api;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--api-sock") == 0) api = argv[i + 1];
  }
  if (api.empty()) return 2;
  g_dir = api.substr(0, api.rfind('/'));
  std::printf("fake-kiln-vmm: serving %s\n", api.c_str());
  std::fflush(stdout);
  int l = unix_listen(api);
  if (l < 0) return 3;
  while (true) {
    int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string head, body;
    if (!read_http(c, &head, &body)) {
      close(c);
      continue;
    }
    std::string line = head.substr(0, head.find("\r\n"));
    std::ofstream(g_dir + "/api.log", std::ios::app) << line << " " << body << "\n";
    auto j = nlohmann::json::parse(body.empty() ? "{}" : body, nullptr, false);
    if (line.rfind("GET / ", 0) == 0) {
      respond(c, 200, R"({"id":"fake","state":"Not started"})");
    } else if (line.rfind("PUT /vsock ", 0) == 0) {
      g_uds = j.value("uds_path", "");
      respond(c, 204, "");
    } else if (line.rfind("PUT /drives/", 0) == 0 && j.value("path_on_host", "").empty()) {
      respond(c, 400, R"({"fault_message":"path_on_host is required"})");
    } else if (line.rfind("PUT /snapshot/create ", 0) == 0) {
      std::ofstream(j.value("snapshot_path", "")) << kSnapshotMarker << (g_spec.argv.empty() ? "" : g_spec.argv[0]) << "\n";
      std::ofstream(j.value("mem_file_path", "")) << "guest memory\n";
      respond(c, 204, "");
    } else if (line.rfind("PUT /snapshot/load ", 0) == 0) {
      std::ifstream in(j.value("snapshot_path", ""));
      std::string marker, argv0;
      std::getline(in, marker);
      std::getline(in, argv0);
      if (marker + "\n" != kSnapshotMarker) {
        respond(c, 400, R"({"fault_message":"not a snapshot"})");
      } else {
        g_spec.argv = {argv0};
        g_restored = true;
        g_uds = j.contains("vsock_override") ? j["vsock_override"].value("uds_path", "") : "";
        if (j.value("resume_vm", true)) {
          std::thread(vsock_thread).detach();
        } else {
          g_resume_pending = true;
        }
        respond(c, 204, "");
      }
    } else if (line.rfind("PATCH /vm ", 0) == 0 && g_resume_pending && body.find("Resumed") != std::string::npos) {
      g_resume_pending = false;
      std::thread(vsock_thread).detach();
      respond(c, 204, "");
    } else if (line.rfind("PUT /actions ", 0) == 0) {
      if (g_uds.empty()) {
        respond(c, 400, R"({"fault_message":"no vsock configured"})");
      } else {
        respond(c, 204, "");
        if (const char* agent = std::getenv("FAKE_AGENT")) {
          std::string a = agent;
          std::thread([a] { real_agent_thread(a); }).detach();
        } else {
          std::thread(vsock_thread).detach();
        }
      }
    } else {
      respond(c, 204, "");
    }
    close(c);
  }
}

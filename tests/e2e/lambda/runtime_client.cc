// A Lambda runtime client written for kiln's e2e tests against the documented Runtime API
// (2018-06-01: invocation/next, invocation/{id}/response, invocation/{id}/error, init/error) over
// HTTP/1.1 on one kept TCP connection to $AWS_LAMBDA_RUNTIME_API. Static: it runs in a test image
// with busybox and nothing else. The handler is the event's "action", else "web" for an API
// Gateway event (one with "rawPath"), else $_HANDLER, else argv[1]:
//   echo   the event and the request id, deadline, ARN, trace id, client context it got, as JSON
//   web    an API Gateway proxy result (status 201, headers, a cookie, a body from the event)
//   error  Lambda's error shape on invocation/{id}/error
//   sleep  sleeps "seconds" (default 600), then answers (the timeout case)
//   crash  exits 3 mid-invocation
//   log    a stdout and a stderr line naming the request, then answers
//   probe  what the function sees: /proc's processes, `ps`, kill(1, SIGKILL), `kill -9 1`
// $_HANDLER=initerror reports an init error and exits before the first `next`.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/json/field_reader.h"
#include "common/result.h"
#include "common/spawn.h"
#include "common/unique_fd.h"

namespace {

using kiln::Result;
using kiln::UniqueFd;
using Json = kiln::json::Json;

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMaxBody = 7 * 1024 * 1024;  // Lambda's 6 MiB event and some room

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "runtime_client: %s\n", what.c_str());
  std::exit(2);
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// The Runtime API over one kept connection, opened again when the server closed it.
class RuntimeApi {
 public:
  explicit RuntimeApi(std::string address) : address_(std::move(address)) {}

  Response call(const std::string& method, const std::string& path, const std::string& body = "",
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string request = method + " " + path + " HTTP/1.1\r\nHost: runtime\r\nUser-Agent: kiln-e2e-runtime/1\r\n";
    for (const auto& [k, v] : headers) request += k + ": " + v + "\r\n";
    if (method == "POST") {
      request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n" + body;
    for (int attempt = 0;; ++attempt) {
      if (!conn_) conn_ = connect_api();
      auto r = exchange(request);
      if (r.ok()) return std::move(*r);
      conn_.reset();
      if (attempt == 1) fail(method + " " + path + ": " + r.error().message);
    }
  }

 private:
  UniqueFd connect_api() const {
    const auto colon = address_.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(address_.c_str() + colon + 1)));
    if (colon == std::string::npos || inet_pton(AF_INET, address_.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
      fail("AWS_LAMBDA_RUNTIME_API=" + address_ + " is not IPv4:PORT");
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      fail(kiln::errno_error("connect to " + address_).message);
    }
    return fd;
  }

  // Reads more into in_; an error at end of stream.
  kiln::Status fill() {
    char chunk[65536];
    while (true) {
      ssize_t n = ::recv(conn_.get(), chunk, sizeof(chunk), 0);
      if (n > 0) {
        in_.append(chunk, static_cast<std::size_t>(n));
        return kiln::ok_status();
      }
      if (n < 0 && errno == EINTR) continue;
      return n == 0 ? kiln::make_error("the Runtime API closed the connection") : kiln::errno_error("recv");
    }
  }

  Result<Response> exchange(const std::string& request) {
    in_.clear();
    KILN_TRY(kiln::io::write_all(conn_.get(), request, "the Runtime API connection"));
    std::size_t end = std::string::npos;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (in_.size() > kMaxHead) return kiln::make_error("answer head larger than 64 KiB");
      KILN_TRY(fill());
    }
    Response r;
    r.status = std::atoi(in_.c_str() + in_.find(' ') + 1);  // "HTTP/1.1 NNN ..."
    for (std::size_t at = in_.find("\r\n") + 2; at < end;) {
      const std::size_t eol = in_.find("\r\n", at);
      const std::string line = in_.substr(at, eol - at);
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const std::size_t value = line.find_first_not_of(" \t", colon + 1);
        r.headers[name] = value == std::string::npos ? "" : line.substr(value);
      }
      at = eol + 2;
    }
    const std::size_t length = std::strtoul(r.header("content-length").c_str(), nullptr, 10);
    if (length > kMaxBody) return kiln::make_error("answer body larger than the limit");
    while (in_.size() < end + 4 + length) KILN_TRY(fill());
    r.body = in_.substr(end + 4, length);
    if (strcasecmp(r.header("connection").c_str(), "close") == 0) conn_.reset();
    return r;
  }

  std::string address_;
  UniqueFd conn_;
  std::string in_;
};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Runs `argv` with stdout and stderr captured: {exit code or -1, output}.
std::pair<int, std::string> run_captured(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, "pipe2 failed"};
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  kiln::SpawnPlan plan;
  plan.dup2(write_end.get(), 1).dup2(write_end.get(), 2);
  auto pid = plan.spawn(argv[0], argv);
  write_end.reset();
  if (!pid.ok()) return {-1, pid.error().message};
  auto out = kiln::io::read_fd(read_end.get(), 1 << 20, argv[0]);
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.ok() ? *out : out.error().message};
}

std::string proc_text(const std::string& path) {
  auto text = kiln::io::read_file(path, 4096);
  if (!text.ok()) return "";
  std::string s = *text;
  for (char& c : s) {
    if (c == '\0') c = ' ';
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

Json probe() {
  Json processes = Json::array();
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* e = ::readdir(proc)) {
      if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
      const std::string dir = std::string("/proc/") + e->d_name;
      processes.push_back({{"pid", std::atoi(e->d_name)},
                           {"comm", proc_text(dir + "/comm")},
                           {"cmdline", proc_text(dir + "/cmdline")}});
    }
    ::closedir(proc);
  }
  Json out = {{"uid", ::getuid()}, {"pid", ::getpid()}, {"processes", processes}};
  out["ps"] = run_captured({"/bin/ps"}).second;
  errno = 0;
  const int rc = ::kill(1, SIGKILL);
  out["kill_syscall"] = {{"rc", rc}, {"errno", rc == 0 ? 0 : errno}};
  auto [code, text] = run_captured({"/bin/kill", "-9", "1"});
  out["kill_command"] = {{"exit", code}, {"output", text}};
  return out;
}

// The API Gateway proxy result for a v2.0 event: what the runtime got, in the body.
Json web(const Json& event) {
  auto field = [&event](const char* pointer) { return event.value(Json::json_pointer(pointer), std::string()); };
  const std::string body = "method=" + field("/requestContext/http/method") + " rawPath=" + field("/rawPath") +
                           " rawQueryString=" + field("/rawQueryString") + " x-probe=" + field("/headers/x-probe") +
                           " body=" + field("/body");
  return {{"statusCode", 201},
          {"headers", {{"content-type", "text/plain"}, {"x-runtime", "kiln-e2e"}}},
          {"cookies", {"visited=yes; Path=/"}},
          {"body", body},
          {"isBase64Encoded", false}};
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api || !*api) fail("AWS_LAMBDA_RUNTIME_API is not set");
  RuntimeApi runtime(api);
  const std::string handler = env_or("_HANDLER", argc > 1 ? argv[1] : "echo");
  std::fprintf(stderr, "runtime_client: init, handler %s\n", handler.c_str());
  if (handler == "initerror") {
    Response r = runtime.call("POST", "/2018-06-01/runtime/init/error",
                              R"({"errorMessage":"init failed on purpose","errorType":"Runtime.TestInitError"})",
                              {{"Lambda-Runtime-Function-Error-Type", "Runtime.TestInitError"}});
    std::fprintf(stderr, "runtime_client: init error posted, answered %d\n", r.status);
    return 1;
  }
  while (true) {
    Response next = runtime.call("GET", "/2018-06-01/runtime/invocation/next");
    if (next.status != 200) fail("next answered " + std::to_string(next.status) + ": " + next.body);
    const std::string id = next.header("lambda-runtime-aws-request-id");
    auto parsed = kiln::json::parse(next.body);
    const Json event = parsed.ok() ? *parsed : Json(next.body);
    std::string action = handler;
    if (event.is_object() && event.contains("action") && event["action"].is_string()) {
      action = event["action"].get<std::string>();
    } else if (event.is_object() && event.contains("rawPath")) {
      action = "web";
    }

    Json answer;
    if (action == "web") {
      answer = web(event);
    } else if (action == "error") {
      Json error = {{"errorMessage", "failed on request"},
                    {"errorType", "TestError"},
                    {"stackTrace", {"runtime_client.cc: main", "runtime_client.cc: the error action"}}};
      Response r = runtime.call("POST", "/2018-06-01/runtime/invocation/" + id + "/error", kiln::json::dump(error),
                                {{"Lambda-Runtime-Function-Error-Type", "TestError"}});
      if (r.status != 202) std::fprintf(stderr, "runtime_client: error post answered %d\n", r.status);
      continue;
    } else if (action == "sleep") {
      const int seconds = event.is_object() ? event.value("seconds", 600) : 600;
      std::printf("sleeping %d s in request %s\n", seconds, id.c_str());
      std::this_thread::sleep_for(std::chrono::seconds(seconds));
      answer = {{"slept", seconds}};
    } else if (action == "crash") {
      std::fprintf(stderr, "runtime_client: crashing in request %s\n", id.c_str());
      std::exit(3);
    } else if (action == "log") {
      std::printf("log line on stdout for %s\n", id.c_str());
      std::fprintf(stderr, "log line on stderr for %s\n", id.c_str());
      answer = {{"logged", id}};
    } else if (action == "probe") {
      answer = probe();
    } else {
      answer = {{"action", action},
                {"request_id", id},
                {"deadline_ms", next.header("lambda-runtime-deadline-ms")},
                {"function_arn", next.header("lambda-runtime-invoked-function-arn")},
                {"trace_id", next.header("lambda-runtime-trace-id")},
                {"client_context", next.header("lambda-runtime-client-context")},
                {"handler", env_or("_HANDLER", "")},
                {"function_name", env_or("AWS_LAMBDA_FUNCTION_NAME", "")},
                {"now_ms", wall_ms()},
                {"event", event}};
    }
    Response r = runtime.call("POST", "/2018-06-01/runtime/invocation/" + id + "/response", kiln::json::dump(answer));
    if (r.status != 202) std::fprintf(stderr, "runtime_client: response post answered %d\n", r.status);
  }
}

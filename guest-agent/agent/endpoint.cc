// Endpoint sockets: AF_VSOCK (guest) or AF_UNIX (tests), all non-blocking and O_CLOEXEC.
#include "guest-agent/agent/endpoint.h"

#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/protocol/record.h"

namespace kiln::agent {

Endpoint Endpoint::vsock(std::uint32_t cid, std::uint32_t port) {
  Endpoint e;
  e.kind = Kind::kVsock;
  e.cid = cid;
  e.port = port;
  return e;
}

Endpoint Endpoint::unix_path(std::string path) {
  Endpoint e;
  e.kind = Kind::kUnix;
  e.path = std::move(path);
  return e;
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  if (text.substr(0, 5) == "unix:") {
    if (text.size() == 5) return make_error("endpoint: empty unix path");
    return unix_path(std::string(text.substr(5)));
  }
  if (text.substr(0, 6) == "vsock:") {
    std::string_view rest = text.substr(6);
    auto colon = rest.find(':');
    if (colon == std::string_view::npos) return make_error("endpoint: want vsock:CID:PORT");
    std::string_view cid_s = rest.substr(0, colon);
    auto port = protocol::parse_u64(rest.substr(colon + 1));
    if (!port || *port > 0xffffffffu) return make_error("endpoint: bad vsock port");
    std::uint32_t cid = kVsockAnyCid;
    if (cid_s != "any") {
      auto c = protocol::parse_u64(cid_s);
      if (!c || *c > 0xffffffffu) return make_error("endpoint: bad vsock cid");
      cid = static_cast<std::uint32_t>(*c);
    }
    return vsock(cid, static_cast<std::uint32_t>(*port));
  }
  return make_error("endpoint: expected unix:PATH or vsock:CID:PORT, got '" + std::string(text) + "'");
}

std::string Endpoint::describe() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return "vsock:" + (cid == kVsockAnyCid ? std::string("any") : std::to_string(cid)) + ":" +
         std::to_string(port);
}

namespace {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
};

Result<SockAddr> address_of(const Endpoint& ep) {
  SockAddr a;
  if (ep.kind == Endpoint::Kind::kVsock) {
    auto* vm = reinterpret_cast<sockaddr_vm*>(&a.storage);
    vm->svm_family = AF_VSOCK;
    vm->svm_cid = ep.cid;
    vm->svm_port = ep.port;
    a.len = sizeof(sockaddr_vm);
    return a;
  }
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
  if (ep.path.empty() || ep.path.size() >= sizeof(un->sun_path)) {
    return make_error("endpoint: unix path too long or empty: " + ep.path);
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, ep.path.data(), ep.path.size());
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.path.size() + 1);
  return a;
}

int family_of(const Endpoint& ep) { return ep.kind == Endpoint::Kind::kVsock ? AF_VSOCK : AF_UNIX; }

Result<UniqueFd> start_connect(int family, const sockaddr* addr, socklen_t len, bool* in_progress,
                               const std::string& what) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket " + what);
  *in_progress = false;
  if (::connect(fd.get(), addr, len) != 0) {
    if (errno == EINPROGRESS || errno == EAGAIN) {
      *in_progress = true;
    } else {
      return errno_error("connect " + what);
    }
  }
  return fd;
}

}  // namespace

Result<UniqueFd> listen_on(const Endpoint& ep, int backlog) {
  KILN_ASSIGN_OR_RETURN(SockAddr a, address_of(ep));
  UniqueFd fd(::socket(family_of(ep), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket " + ep.describe());
  if (ep.kind == Endpoint::Kind::kUnix) ::unlink(ep.path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a.storage), a.len) != 0) {
    return errno_error("bind " + ep.describe());
  }
  if (::listen(fd.get(), backlog) != 0) return errno_error("listen " + ep.describe());
  return fd;
}

Result<UniqueFd> connect_to(const Endpoint& ep, bool* in_progress) {
  KILN_ASSIGN_OR_RETURN(SockAddr a, address_of(ep));
  return start_connect(family_of(ep), reinterpret_cast<sockaddr*>(&a.storage), a.len, in_progress,
                       ep.describe());
}

Result<UniqueFd> connect_loopback_tcp(std::uint16_t port, bool* in_progress) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return start_connect(AF_INET, reinterpret_cast<sockaddr*>(&in), sizeof(in), in_progress,
                       "127.0.0.1:" + std::to_string(port));
}

Result<UniqueFd> listen_loopback_tcp(std::uint16_t port, std::uint16_t* bound, int backlog) {
  const std::string what = "127.0.0.1:" + std::to_string(port);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket " + what);
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof(in)) != 0) return errno_error("bind " + what);
  if (::listen(fd.get(), backlog) != 0) return errno_error("listen " + what);
  socklen_t len = sizeof(in);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&in), &len) != 0) return errno_error("getsockname " + what);
  *bound = ntohs(in.sin_port);
  return fd;
}

Status connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno_error("getsockopt");
  if (err != 0) return errno_error("connect", err);
  return ok_status();
}

}  // namespace kiln::agent

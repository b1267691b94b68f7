// Endpoint: where a stream socket listens or connects. In the guest these are AF_VSOCK
// CID/port pairs; the host-process tests swap in Unix socket paths with no other change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::agent {

inline constexpr std::uint32_t kVsockHostCid = 2;  // VMADDR_CID_HOST
inline constexpr std::uint32_t kVsockAnyCid = 0xffffffffu;  // VMADDR_CID_ANY

struct Endpoint {
  enum class Kind { kVsock, kUnix };
  Kind kind = Kind::kUnix;
  std::uint32_t cid = kVsockAnyCid;
  std::uint32_t port = 0;
  std::string path;

  static Endpoint vsock(std::uint32_t cid, std::uint32_t port);
  static Endpoint unix_path(std::string path);
  // "vsock:CID:PORT" ("any" for CID_ANY) or "unix:/path".
  static Result<Endpoint> parse(std::string_view text);
  std::string describe() const;
};

// Non-blocking, close-on-exec listening socket (a stale Unix socket file is replaced).
Result<UniqueFd> listen_on(const Endpoint& ep, int backlog = 64);

// Starts a non-blocking connect. *in_progress says whether to wait for EPOLLOUT and check
// SO_ERROR (connect_result()) before using the socket.
Result<UniqueFd> connect_to(const Endpoint& ep, bool* in_progress);
// Starts a non-blocking TCP connect to 127.0.0.1:port.
Result<UniqueFd> connect_loopback_tcp(std::uint16_t port, bool* in_progress);
// Non-blocking, close-on-exec TCP listener on 127.0.0.1:port (0 = any free port; *bound gets
// the port, for the Lambda Runtime API address handed to the function).
Result<UniqueFd> listen_loopback_tcp(std::uint16_t port, std::uint16_t* bound, int backlog = 64);
// SO_ERROR of a socket whose non-blocking connect finished.
Status connect_result(int fd);

}  // namespace kiln::agent

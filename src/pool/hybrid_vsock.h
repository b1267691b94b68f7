// Host side of Firecracker's hybrid vsock: a host connection to the guest's port P is a
// connect to the VMM's Unix socket `uds_path` plus "CONNECT P\n", answered "OK <host port>\n"
// (both through the codec in common/protocol/hybrid_vsock.h);
// a guest connection to host port P arrives at `<uds_path>_P` where the host listens.
// Plus the kiln-init control exchange on port 10000 (one request frame, one reply frame).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/protocol/frame.h"
#include "common/result.h"
#include "src/server/net.h"

namespace kiln::kilnd::pool {

inline constexpr std::uint32_t kGuestInvokePort = 9000;
inline constexpr std::uint32_t kGuestControlPort = 10000;
inline constexpr std::uint32_t kHostEventsPort = 10001;

// Connected stream to guest port `port`, after the CONNECT/OK handshake, or an error (the
// VMM's socket is missing, the guest has no listener, the answer is malformed, the deadline).
asio::awaitable<Result<local::socket>> hybrid_connect(std::string uds_path, std::uint32_t port,
                                                      std::chrono::steady_clock::time_point deadline);

// Sends one control frame to kiln-init (port 10000) and reads its one reply frame.
asio::awaitable<Result<protocol::Frame>> control_request(std::string uds_path, std::string frame,
                                                         std::chrono::steady_clock::time_point deadline);

// Path where guest connections to host port `port` arrive.
inline std::string host_port_path(const std::string& uds_path, std::uint32_t port) {
  return uds_path + "_" + std::to_string(port);
}

}  // namespace kiln::kilnd::pool

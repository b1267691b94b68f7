// Host side of Firecracker's hybrid vsock handshake (docs/vsock.md): to reach guest port P the
// host connects to the VMM's Unix socket, writes "CONNECT P\n" and reads "OK <host port>\n";
// then the stream carries the guest connection's bytes. Pure functions for both ends: the host
// side (kilnd, tests) and the VMM side (kiln-vmm's vsock Unix-socket muxer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::protocol {

// Longest acceptable reply line: "OK " + a u32 + "\n" (anything longer is hostile).
inline constexpr std::size_t kMaxHybridReply = 32;

std::string hybrid_connect_request(std::uint32_t guest_port);

struct HybridReply {
  bool complete = false;  // false: need more bytes
  std::uint32_t host_port = 0;
  std::size_t consumed = 0;  // bytes of the reply line (guest data may follow in the buffer)
};
// Parses the start of what the VMM sent back. Errors: not "OK <u32>\n", or no newline within
// kMaxHybridReply bytes.
Result<HybridReply> parse_hybrid_reply(std::string_view bytes);

// VMM side. The request is one line "CONNECT <port>\n" (keyword case-insensitive, fields
// separated by blanks, optional "\r" before the newline, as Firecracker accepts it); longer
// lines are refused.
inline constexpr std::size_t kMaxHybridConnectLine = 64;
// Parses one whole line, newline included; returns the guest port.
Result<std::uint32_t> parse_hybrid_connect(std::string_view line);
// "OK <host_port>\n": the guest accepted; stream bytes follow.
std::string hybrid_connect_reply(std::uint32_t host_port);

}  // namespace kiln::protocol

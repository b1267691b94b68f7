// Host side of Firecracker's hybrid vsock handshake (docs/vsock.md): to reach guest port P the
// host connects to the VMM's Unix socket, writes "CONNECT P\n" and reads "OK <host port>\n";
// then the stream carries the guest connection's bytes. Pure functions, for kilnd and tests.
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

}  // namespace kiln::protocol

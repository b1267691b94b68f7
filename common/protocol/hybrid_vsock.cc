// Hybrid vsock handshake strings (see hybrid_vsock.h).
#include "common/protocol/hybrid_vsock.h"

#include "common/protocol/record.h"

namespace kiln::protocol {

std::string hybrid_connect_request(std::uint32_t guest_port) {
  return "CONNECT " + std::to_string(guest_port) + "\n";
}

Result<HybridReply> parse_hybrid_reply(std::string_view bytes) {
  HybridReply r;
  auto nl = bytes.find('\n');
  if (nl == std::string_view::npos) {
    if (bytes.size() >= kMaxHybridReply) return make_error("hybrid vsock: reply line too long");
    if (bytes.size() >= 3 && bytes.substr(0, 3) != "OK ") {
      return make_error("hybrid vsock: unexpected reply");
    }
    return r;
  }
  if (nl + 1 > kMaxHybridReply) return make_error("hybrid vsock: reply line too long");
  std::string_view line = bytes.substr(0, nl);
  if (line.substr(0, 3) != "OK ") return make_error("hybrid vsock: connection refused by the VMM");
  auto port = parse_u64(line.substr(3));
  if (!port || *port > 0xffffffffull) return make_error("hybrid vsock: bad port in reply");
  r.complete = true;
  r.host_port = static_cast<std::uint32_t>(*port);
  r.consumed = nl + 1;
  return r;
}

}  // namespace kiln::protocol

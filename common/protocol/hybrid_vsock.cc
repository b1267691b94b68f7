// Hybrid vsock handshake strings (see hybrid_vsock.h).
#include "common/protocol/hybrid_vsock.h"

#include <cctype>
#include <charconv>
#include <vector>

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

Result<std::uint32_t> parse_hybrid_connect(std::string_view line) {
  if (line.size() > kMaxHybridConnectLine) return make_error("hybrid vsock: CONNECT line too long");
  if (line.empty() || line.back() != '\n') return make_error("hybrid vsock: CONNECT line not terminated");
  line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  if (words.size() != 2) return make_error("hybrid vsock: expected \"CONNECT <port>\"");
  std::string_view kw = words[0];
  static constexpr std::string_view kConnect = "connect";
  if (kw.size() != kConnect.size()) return make_error("hybrid vsock: expected CONNECT");
  for (std::size_t k = 0; k < kw.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(kw[k])) != kConnect[k]) {
      return make_error("hybrid vsock: expected CONNECT");
    }
  }
  std::string_view num = words[1];
  std::uint32_t port = 0;
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), port, 10);
  if (ec != std::errc() || ptr != num.data() + num.size()) {
    return make_error("hybrid vsock: CONNECT port is not a 32-bit decimal number");
  }
  return port;
}

std::string hybrid_connect_reply(std::uint32_t host_port) {
  return "OK " + std::to_string(host_port) + "\n";
}

}  // namespace kiln::protocol

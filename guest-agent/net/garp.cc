// Gratuitous ARP through a datagram packet socket: the kernel adds the Ethernet header for the
// broadcast destination given in sockaddr_ll; the payload is the ARP packet (RFC 826).
#include "guest-agent/net/garp.h"

#include <arpa/inet.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include "common/unique_fd.h"

namespace kiln::agent::net {

Result<GarpOutcome> send_gratuitous_arp(int ifindex, const protocol::MacAddress& mac, const protocol::IpAddress& address) {
  if (address.family != protocol::IpFamily::kV4) return make_error("gratuitous ARP: not an IPv4 address");
  UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd) {
    if (errno == EAFNOSUPPORT) return GarpOutcome::kUnsupported;
    return errno_error("gratuitous ARP: packet socket");
  }
  // arphdr, then sender MAC + IPv4, target MAC (zero, as in a request) + IPv4.
  std::array<std::uint8_t, sizeof(arphdr) + 2 * (6 + 4)> packet{};
  arphdr h{};
  h.ar_hrd = htons(ARPHRD_ETHER);
  h.ar_pro = htons(ETH_P_IP);
  h.ar_hln = 6;
  h.ar_pln = 4;
  h.ar_op = htons(ARPOP_REQUEST);
  std::uint8_t* p = packet.data();
  std::memcpy(p, &h, sizeof(h));
  p += sizeof(h);
  std::memcpy(p, mac.data(), 6);
  std::memcpy(p + 6, address.bytes.data(), 4);
  std::memcpy(p + 16, address.bytes.data(), 4);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  ssize_t n = ::sendto(fd.get(), packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  if (n < 0) return errno_error("gratuitous ARP: send");
  if (static_cast<std::size_t>(n) != packet.size()) return make_error("gratuitous ARP: short send");
  return GarpOutcome::kSent;
}

}  // namespace kiln::agent::net

// Gratuitous ARP: one ARP announcement (RFC 5227 §3: a request whose sender and target
// address are both ours) so that neighbours holding an old MAC for the address update it.
#pragma once

#include "common/protocol/net_address.h"
#include "common/result.h"

namespace kiln::agent::net {

enum class GarpOutcome { kSent, kUnsupported };

// Broadcasts the announcement for the IPv4 `address` from `mac` on link `ifindex` through an
// AF_PACKET socket. kUnsupported: the kernel has no packet sockets (CONFIG_PACKET), which only
// loses the announcement, so it is not an error.
Result<GarpOutcome> send_gratuitous_arp(int ifindex, const protocol::MacAddress& mac, const protocol::IpAddress& address);

}  // namespace kiln::agent::net

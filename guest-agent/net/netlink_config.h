// Netlink (rtnetlink through libnl-3) for kiln-init's network: find the link by MAC, set its MTU
// and state, add addresses and default routes, flush its neighbour table. Every libnl object is
// owned by a unique_ptr; failures come back as errors naming the step, never exceptions.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/protocol/net_address.h"
#include "common/result.h"
#include "guest-agent/net/net_plan.h"

struct nl_sock;

namespace kiln::agent::net {

struct LinkInfo {
  int ifindex = 0;
  std::string name;
};

// The link a plan configured, as later steps (the restore refresh) need it.
struct ConfiguredLink {
  LinkInfo link;
  protocol::MacAddress mac{};
  std::vector<protocol::IpPrefix> addresses;
};

// One NETLINK_ROUTE socket.
class Netlink {
 public:
  static Result<Netlink> open();

  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  // The link whose hardware address is `mac`. The error lists the links there are, so a
  // missing or misaddressed NIC is told apart from a missing driver.
  Result<LinkInfo> find_link(const protocol::MacAddress& mac);
  // Sets the MTU (unless 0) and IFF_UP in one change.
  Status set_link_up(int ifindex, std::uint32_t mtu);
  // Adds (or replaces) an address; IPv6 ones skip duplicate address detection, so they are
  // usable at once instead of ~1 s later (each instance owns its link alone).
  Status add_address(int ifindex, const protocol::IpPrefix& prefix);
  // Adds (or replaces) the default route of the gateway's family in the main table.
  Status add_default_route(int ifindex, const DefaultRoute& route);
  // Deletes the link's neighbour entries of every family except permanent and NOARP ones;
  // returns how many went.
  Result<std::size_t> flush_neighbours(int ifindex);

 private:
  struct SocketFree {
    void operator()(nl_sock* s) const;
  };
  explicit Netlink(std::unique_ptr<nl_sock, SocketFree> sock);
  std::unique_ptr<nl_sock, SocketFree> sock_;
};

// Applies the link part of `plan` in order: find the link, MTU + up, addresses, routes.
Result<ConfiguredLink> configure_link(const NetPlan& plan);

}  // namespace kiln::agent::net

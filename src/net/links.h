// Links, addresses and routes over rtnetlink (libnl-route-3): the veth pair, addresses and the
// default route of an instance's plumbing, and the look-ups its tests and the reaper need.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/net_address.h"
#include "common/result.h"

struct nl_sock;

namespace kiln::net {

struct LinkInfo {
  std::string name;
  int index = 0;
  unsigned mtu = 0;
  bool up = false;  // IFF_UP (administratively up)
};

// A NETLINK_ROUTE socket. It acts on the network namespace of the thread that opened it (a
// netlink socket belongs to its creator's namespace), so open one per namespace, inside
// run_in_netns for an instance's. Errors name the step and carry libnl's text (nl_geterror).
class RouteSocket {
 public:
  static Result<RouteSocket> open();

  // A veth pair: `name` here, `peer_name` moved at creation into the namespace of
  // `peer_netns_fd`; both ends get `mtu` and stay down (bring each up with set_link_up in its
  // own namespace: an IFF_UP in the creation request is not honoured by every kernel).
  Status create_veth(const std::string& name, const std::string& peer_name, int peer_netns_fd, unsigned mtu);
  // Sets `mtu` (0: leave it) and brings the link up.
  Status set_link_up(const std::string& name, unsigned mtu = 0);
  Status add_ipv4_address(const std::string& link, const protocol::IpPrefix& address);
  // 0.0.0.0/0 via `gateway` (on-link through one of this namespace's addresses), main table.
  Status add_default_route(const protocol::IpAddress& gateway);
  // Deletes link `name` (a veth takes its peer with it): true when it existed.
  Result<bool> delete_link(const std::string& name);

  // The link called `name`, or nullopt when there is none.
  Result<std::optional<LinkInfo>> find_link(const std::string& name);
  // The links whose names start with `prefix`.
  Result<std::vector<LinkInfo>> list_links(std::string_view prefix);
  // The IPv4 addresses on link `name`.
  Result<std::vector<protocol::IpPrefix>> ipv4_addresses(const std::string& name);
  // The gateway of the main table's IPv4 default route, or nullopt without one.
  Result<std::optional<protocol::IpAddress>> ipv4_default_gateway();

 private:
  struct SocketDeleter {
    void operator()(nl_sock* s) const;
  };
  explicit RouteSocket(std::unique_ptr<nl_sock, SocketDeleter> sock) : sock_(std::move(sock)) {}
  Result<int> link_index(const std::string& name, std::string_view step);

  std::unique_ptr<nl_sock, SocketDeleter> sock_;
};

}  // namespace kiln::net

// rtnetlink requests through libnl-route-3; every libnl object is owned by a unique_ptr.
#include "src/net/links.h"

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <cstring>

namespace kiln::net {

namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link_put>>;
using AddrPtr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter<rtnl_route_put>>;
using NlAddrPtr = std::unique_ptr<nl_addr, Deleter<nl_addr_put>>;
using CachePtr = std::unique_ptr<nl_cache, Deleter<nl_cache_free>>;

Error nl_error(std::string_view step, int err) {
  return make_error(std::string(step) + ": " + nl_geterror(err));
}

bool is_missing(int err) { return err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV; }

Result<NlAddrPtr> to_nl_addr(const protocol::IpAddress& address, unsigned prefix_length, std::string_view step) {
  int family = address.family == protocol::IpFamily::kV4 ? AF_INET : AF_INET6;
  NlAddrPtr a(nl_addr_build(family, address.bytes.data(), address.size()));
  if (!a) return nl_error(step, -NLE_NOMEM);
  nl_addr_set_prefixlen(a.get(), static_cast<int>(prefix_length));
  return a;
}

protocol::IpAddress from_nl_addr(const nl_addr* a) {
  protocol::IpAddress out;
  out.family = nl_addr_get_family(a) == AF_INET6 ? protocol::IpFamily::kV6 : protocol::IpFamily::kV4;
  std::size_t len = std::min<std::size_t>(nl_addr_get_len(a), out.bytes.size());
  std::memcpy(out.bytes.data(), nl_addr_get_binary_addr(a), len);
  return out;
}

LinkInfo to_info(rtnl_link* link) {
  const char* name = rtnl_link_get_name(link);
  return LinkInfo{name != nullptr ? name : "", rtnl_link_get_ifindex(link), rtnl_link_get_mtu(link),
                  (rtnl_link_get_flags(link) & IFF_UP) != 0};
}

// Every object of `cache`, in order.
template <typename T, typename Fn>
void for_each(nl_cache* cache, Fn&& fn) {
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    fn(reinterpret_cast<T*>(o));
  }
}

}  // namespace

void RouteSocket::SocketDeleter::operator()(nl_sock* s) const { nl_socket_free(s); }

Result<RouteSocket> RouteSocket::open() {
  std::unique_ptr<nl_sock, SocketDeleter> sock(nl_socket_alloc());
  if (!sock) return nl_error("allocating a netlink socket", -NLE_NOMEM);
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return nl_error("connecting to rtnetlink", err);
  return RouteSocket(std::move(sock));
}

Result<int> RouteSocket::link_index(const std::string& name, std::string_view step) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr link(raw);
  if (err < 0) return nl_error(std::string(step) + ": link " + name, err);
  return rtnl_link_get_ifindex(link.get());
}

Status RouteSocket::create_veth(const std::string& name, const std::string& peer_name, int peer_netns_fd,
                                unsigned mtu) {
  const std::string step = "creating veth " + name + "/" + peer_name;
  LinkPtr link(rtnl_link_veth_alloc());
  if (!link) return nl_error(step, -NLE_NOMEM);
  LinkPtr peer(rtnl_link_veth_get_peer(link.get()));  // a new reference to the link's peer
  if (!peer) return nl_error(step, -NLE_NOMEM);
  rtnl_link_set_name(link.get(), name.c_str());
  rtnl_link_set_mtu(link.get(), mtu);
  rtnl_link_set_name(peer.get(), peer_name.c_str());
  rtnl_link_set_mtu(peer.get(), mtu);
  rtnl_link_set_ns_fd(peer.get(), peer_netns_fd);
  if (int err = rtnl_link_add(sock_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) return nl_error(step, err);
  return ok_status();
}

Status RouteSocket::set_link_up(const std::string& name, unsigned mtu) {
  const std::string step = "bringing up " + name;
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr current(raw);
  if (err < 0) return nl_error(step, err);
  LinkPtr change(rtnl_link_alloc());
  if (!change) return nl_error(step, -NLE_NOMEM);
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (mtu != 0) rtnl_link_set_mtu(change.get(), mtu);
  if (err = rtnl_link_change(sock_.get(), current.get(), change.get(), 0); err < 0) return nl_error(step, err);
  return ok_status();
}

Status RouteSocket::add_ipv4_address(const std::string& link, const protocol::IpPrefix& address) {
  const std::string step = "adding " + protocol::format_ip_prefix(address) + " to " + link;
  KILN_ASSIGN_OR_RETURN(int index, link_index(link, step));
  AddrPtr addr(rtnl_addr_alloc());
  if (!addr) return nl_error(step, -NLE_NOMEM);
  KILN_ASSIGN_OR_RETURN(NlAddrPtr local, to_nl_addr(address.address, address.length, step));
  rtnl_addr_set_ifindex(addr.get(), index);
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) return nl_error(step, err);
  if (int err = rtnl_addr_add(sock_.get(), addr.get(), 0); err < 0) return nl_error(step, err);
  return ok_status();
}

Status RouteSocket::add_default_route(const protocol::IpAddress& gateway) {
  const std::string step = "adding the default route via " + protocol::format_ip(gateway);
  RoutePtr route(rtnl_route_alloc());
  if (!route) return nl_error(step, -NLE_NOMEM);
  protocol::IpAddress any;  // 0.0.0.0
  KILN_ASSIGN_OR_RETURN(NlAddrPtr dst, to_nl_addr(any, 0, step));
  KILN_ASSIGN_OR_RETURN(NlAddrPtr via, to_nl_addr(gateway, 32, step));
  rtnl_route_set_family(route.get(), AF_INET);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) return nl_error(step, err);
  rtnl_nexthop* hop = rtnl_route_nh_alloc();  // the route owns it once added
  if (hop == nullptr) return nl_error(step, -NLE_NOMEM);
  rtnl_route_nh_set_gateway(hop, via.get());
  rtnl_route_add_nexthop(route.get(), hop);
  if (int err = rtnl_route_add(sock_.get(), route.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return nl_error(step, err);
  }
  return ok_status();
}

Result<bool> RouteSocket::delete_link(const std::string& name) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return nl_error("deleting link " + name, -NLE_NOMEM);
  rtnl_link_set_name(link.get(), name.c_str());
  int err = rtnl_link_delete(sock_.get(), link.get());
  if (err < 0 && is_missing(err)) return false;
  if (err < 0) return nl_error("deleting link " + name, err);
  return true;
}

Result<std::optional<LinkInfo>> RouteSocket::find_link(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr link(raw);
  if (err < 0 && is_missing(err)) return std::optional<LinkInfo>();
  if (err < 0) return nl_error("looking up link " + name, err);
  return std::optional<LinkInfo>(to_info(link.get()));
}

Result<std::vector<LinkInfo>> RouteSocket::list_links(std::string_view prefix) {
  nl_cache* raw = nullptr;
  int err = rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw);
  CachePtr cache(raw);
  if (err < 0) return nl_error("listing links", err);
  std::vector<LinkInfo> out;
  for_each<rtnl_link>(cache.get(), [&](rtnl_link* link) {
    LinkInfo info = to_info(link);
    if (info.name.starts_with(prefix)) out.push_back(std::move(info));
  });
  return out;
}

Result<std::vector<protocol::IpPrefix>> RouteSocket::ipv4_addresses(const std::string& name) {
  const std::string step = "listing the addresses of " + name;
  KILN_ASSIGN_OR_RETURN(int index, link_index(name, step));
  nl_cache* raw = nullptr;
  int err = rtnl_addr_alloc_cache(sock_.get(), &raw);
  CachePtr cache(raw);
  if (err < 0) return nl_error(step, err);
  std::vector<protocol::IpPrefix> out;
  for_each<rtnl_addr>(cache.get(), [&](rtnl_addr* addr) {
    if (rtnl_addr_get_ifindex(addr) != index || rtnl_addr_get_family(addr) != AF_INET) return;
    nl_addr* local = rtnl_addr_get_local(addr);
    if (local == nullptr) return;
    out.push_back(protocol::IpPrefix{from_nl_addr(local), static_cast<std::uint8_t>(rtnl_addr_get_prefixlen(addr))});
  });
  return out;
}

Result<std::optional<protocol::IpAddress>> RouteSocket::ipv4_default_gateway() {
  nl_cache* raw = nullptr;
  int err = rtnl_route_alloc_cache(sock_.get(), AF_INET, 0, &raw);
  CachePtr cache(raw);
  if (err < 0) return nl_error("listing routes", err);
  std::optional<protocol::IpAddress> gateway;
  for_each<rtnl_route>(cache.get(), [&](rtnl_route* route) {
    nl_addr* dst = rtnl_route_get_dst(route);
    if (gateway || rtnl_route_get_table(route) != RT_TABLE_MAIN) return;
    if (dst != nullptr && nl_addr_get_prefixlen(dst) != 0) return;
    if (rtnl_route_get_nnexthops(route) < 1) return;
    nl_addr* via = rtnl_route_nh_get_gateway(rtnl_route_nexthop_n(route, 0));
    if (via != nullptr) gateway = from_nl_addr(via);
  });
  return gateway;
}

}  // namespace kiln::net

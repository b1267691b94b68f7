// rtnetlink requests through libnl-3 (libnl-route-3): one request per step, each waiting for
// the kernel's acknowledgement, so an error is reported by the step that caused it.
#include "guest-agent/net/netlink_config.h"

#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <cstring>

namespace kiln::agent::net {

namespace {

// unique_ptr deleters for libnl's reference-counted objects.
template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
using AddrPtr = std::unique_ptr<nl_addr, Freer<nl_addr, nl_addr_put>>;
using CachePtr = std::unique_ptr<nl_cache, Freer<nl_cache, nl_cache_free>>;
using LinkPtr = std::unique_ptr<rtnl_link, Freer<rtnl_link, rtnl_link_put>>;
using IfAddrPtr = std::unique_ptr<rtnl_addr, Freer<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Freer<rtnl_route, rtnl_route_put>>;

// libnl returns negative NLE_* codes.
Error nl_error(const std::string& what, int err) { return make_error(what + ": " + nl_geterror(err)); }

int af_of(protocol::IpFamily f) { return f == protocol::IpFamily::kV4 ? AF_INET : AF_INET6; }

Result<AddrPtr> build_addr(const protocol::IpAddress& a, int prefix_len) {
  AddrPtr addr(nl_addr_build(af_of(a.family), a.bytes.data(), a.size()));
  if (!addr) return make_error("nl_addr_build: out of memory");
  nl_addr_set_prefixlen(addr.get(), prefix_len);
  return addr;
}

std::string mac_of(rtnl_link* link) {
  nl_addr* a = rtnl_link_get_addr(link);
  if (!a || nl_addr_get_len(a) != 6) return "-";
  protocol::MacAddress m;
  std::memcpy(m.data(), nl_addr_get_binary_addr(a), m.size());
  return protocol::format_mac(m);
}

}  // namespace

void Netlink::SocketFree::operator()(nl_sock* s) const {
  if (s) nl_socket_free(s);
}

Netlink::Netlink(std::unique_ptr<nl_sock, SocketFree> sock) : sock_(std::move(sock)) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

Result<Netlink> Netlink::open() {
  std::unique_ptr<nl_sock, SocketFree> sock(nl_socket_alloc());
  if (!sock) return make_error("netlink: nl_socket_alloc failed");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return nl_error("netlink: connect", err);
  return Netlink(std::move(sock));
}

Result<LinkInfo> Netlink::find_link(const protocol::MacAddress& mac) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw); err < 0) {
    return nl_error("netlink: listing links", err);
  }
  CachePtr cache(raw);
  std::string seen;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* link = reinterpret_cast<rtnl_link*>(o);
    nl_addr* a = rtnl_link_get_addr(link);
    const char* name = rtnl_link_get_name(link);
    if (a && nl_addr_get_len(a) == mac.size() && std::memcmp(nl_addr_get_binary_addr(a), mac.data(), mac.size()) == 0) {
      return LinkInfo{rtnl_link_get_ifindex(link), name ? name : ""};
    }
    seen += std::string(seen.empty() ? "" : ", ") + (name ? name : "?") + " " + mac_of(link);
  }
  return make_error("no network interface with MAC " + protocol::format_mac(mac) + " (links: " + seen + ")");
}

Status Netlink::set_link_up(int ifindex, std::uint32_t mtu) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock_.get(), ifindex, nullptr, &raw); err < 0) {
    return nl_error("netlink: reading link " + std::to_string(ifindex), err);
  }
  LinkPtr current(raw);
  LinkPtr change(rtnl_link_alloc());
  if (!change) return make_error("netlink: rtnl_link_alloc failed");
  if (mtu != 0) rtnl_link_set_mtu(change.get(), mtu);
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(sock_.get(), current.get(), change.get(), 0); err < 0) {
    return nl_error(mtu != 0 ? "netlink: setting MTU " + std::to_string(mtu) + " and up" : "netlink: setting link up", err);
  }
  return ok_status();
}

Status Netlink::add_address(int ifindex, const protocol::IpPrefix& prefix) {
  const std::string what = "netlink: adding address " + protocol::format_ip_prefix(prefix);
  IfAddrPtr addr(rtnl_addr_alloc());
  if (!addr) return make_error(what + ": out of memory");
  KILN_ASSIGN_OR_RETURN(AddrPtr local, build_addr(prefix.address, prefix.length));
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  rtnl_addr_set_family(addr.get(), af_of(prefix.address.family));
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) return nl_error(what, err);
  rtnl_addr_set_prefixlen(addr.get(), prefix.length);
  if (prefix.address.family == protocol::IpFamily::kV6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  if (int err = rtnl_addr_add(sock_.get(), addr.get(), NLM_F_REPLACE); err < 0) return nl_error(what, err);
  return ok_status();
}

Status Netlink::add_default_route(int ifindex, const DefaultRoute& r) {
  const std::string what = "netlink: adding default route via " + protocol::format_ip(r.gateway);
  RoutePtr route(rtnl_route_alloc());
  if (!route) return make_error(what + ": out of memory");
  protocol::IpAddress any;
  any.family = r.gateway.family;
  KILN_ASSIGN_OR_RETURN(AddrPtr dst, build_addr(any, 0));
  KILN_ASSIGN_OR_RETURN(AddrPtr gateway, build_addr(r.gateway, r.gateway.family == protocol::IpFamily::kV4 ? 32 : 128));
  rtnl_route_set_family(route.get(), static_cast<std::uint8_t>(af_of(r.gateway.family)));
  if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) return nl_error(what, err);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (!nh) return make_error(what + ": out of memory");
  rtnl_route_nh_set_ifindex(nh, ifindex);
  rtnl_route_nh_set_gateway(nh, gateway.get());
  if (r.onlink) rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns the nexthop from here
  if (int err = rtnl_route_add(sock_.get(), route.get(), NLM_F_REPLACE); err < 0) return nl_error(what, err);
  return ok_status();
}

Result<std::size_t> Netlink::flush_neighbours(int ifindex) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_neigh_alloc_cache(sock_.get(), &raw); err < 0) return nl_error("netlink: listing neighbours", err);
  CachePtr cache(raw);
  std::size_t removed = 0;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* n = reinterpret_cast<rtnl_neigh*>(o);
    if (rtnl_neigh_get_ifindex(n) != ifindex) continue;
    if (rtnl_neigh_get_state(n) & (NUD_PERMANENT | NUD_NOARP)) continue;
    int err = rtnl_neigh_delete(sock_.get(), n, 0);
    // An entry the kernel dropped since the dump is already gone.
    if (err < 0 && err != -NLE_OBJ_NOTFOUND) return nl_error("netlink: deleting a neighbour", err);
    if (err >= 0) ++removed;
  }
  return removed;
}

Result<ConfiguredLink> configure_link(const NetPlan& plan) {
  KILN_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
  ConfiguredLink out;
  KILN_ASSIGN_OR_RETURN(out.link, nl.find_link(plan.mac));
  out.mac = plan.mac;
  if (auto st = nl.set_link_up(out.link.ifindex, plan.mtu); !st.ok()) return st.error().wrap(out.link.name);
  for (const auto& a : plan.addresses) {
    if (auto st = nl.add_address(out.link.ifindex, a); !st.ok()) return st.error().wrap(out.link.name);
    out.addresses.push_back(a);
  }
  for (const auto& r : plan.routes) {
    if (auto st = nl.add_default_route(out.link.ifindex, r); !st.ok()) return st.error().wrap(out.link.name);
  }
  return out;
}

}  // namespace kiln::agent::net

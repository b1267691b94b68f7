// NetPlan: what kiln-init does to the guest's network for one launch spec, computed without
// touching the system: the link (by MAC), its MTU, addresses, default routes, and the contents
// of /etc/resolv.conf and the lines added to /etc/hosts. Pure; netlink_config.h applies it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "common/protocol/net_address.h"
#include "common/result.h"

namespace kiln::agent::net {

struct DefaultRoute {
  protocol::IpAddress gateway;
  // The gateway is outside the address's subnet (a /32 address, say): the route says the
  // gateway is directly on the link (RTNH_F_ONLINK), or the kernel refuses it as unreachable.
  bool onlink = false;

  bool operator==(const DefaultRoute&) const = default;
};

struct NetPlan {
  protocol::MacAddress mac{};
  std::uint32_t mtu = 0;  // 0 = leave the link's
  std::vector<protocol::IpPrefix> addresses;  // IPv4 first, then IPv6
  std::vector<DefaultRoute> routes;           // in the same order
  std::vector<protocol::IpAddress> nameservers;
  std::vector<std::string> search;
  std::vector<protocol::HostsEntry> hosts;
};

// nullopt when the spec has no network (loopback only). Validates the spec first, so a plan
// only ever holds checked values.
Result<std::optional<NetPlan>> plan_network(const protocol::NetworkSpec& spec);

// /etc/resolv.conf for the plan, or "" when the plan has no nameserver (the image's file, or
// kiln-init's loopback default, stays).
std::string render_resolv_conf(const NetPlan& plan);

// /etc/hosts: `existing` (the image's file or kiln-init's default) followed by the plan's
// entries, one "ADDRESS\tNAME..." line each. A line already present is not added again, so
// applying the same plan twice leaves the file as it was.
std::string render_hosts(std::string_view existing, const NetPlan& plan);

}  // namespace kiln::agent::net

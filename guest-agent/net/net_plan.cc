// Launch spec -> NetPlan, and the resolver/hosts file texts.
#include "guest-agent/net/net_plan.h"

#include <algorithm>

namespace kiln::agent::net {

using protocol::IpFamily;

namespace {

Result<DefaultRoute> route_via(const std::string& gateway_text, const protocol::IpPrefix& own, IpFamily family) {
  KILN_ASSIGN_OR_RETURN(protocol::IpAddress gw, protocol::parse_ip(gateway_text, family));
  return DefaultRoute{gw, !protocol::prefix_contains(own, gw)};
}

std::string hosts_line(const protocol::HostsEntry& e) {
  std::string line = protocol::format_ip(e.address) + "\t";
  for (std::size_t i = 0; i < e.names.size(); ++i) line += (i ? " " : "") + e.names[i];
  return line;
}

}  // namespace

Result<std::optional<NetPlan>> plan_network(const protocol::NetworkSpec& spec) {
  KILN_TRY(protocol::validate_network_spec(spec));
  if (!spec.enabled()) return std::optional<NetPlan>();
  NetPlan plan;
  KILN_ASSIGN_OR_RETURN(plan.mac, protocol::parse_mac(spec.mac));
  plan.mtu = spec.mtu;
  auto add_family = [&plan](const std::string& address, const std::string& gateway, IpFamily family) -> Status {
    if (address.empty()) return ok_status();
    KILN_ASSIGN_OR_RETURN(protocol::IpPrefix own, protocol::parse_ip_prefix(address, family));
    plan.addresses.push_back(own);
    if (!gateway.empty()) {
      KILN_ASSIGN_OR_RETURN(DefaultRoute r, route_via(gateway, own, family));
      plan.routes.push_back(r);
    }
    return ok_status();
  };
  KILN_TRY(add_family(spec.address, spec.gateway, IpFamily::kV4));
  KILN_TRY(add_family(spec.address6, spec.gateway6, IpFamily::kV6));
  for (const auto& d : spec.dns) {
    KILN_ASSIGN_OR_RETURN(protocol::IpAddress a, protocol::parse_ip(d));
    plan.nameservers.push_back(a);
  }
  plan.search = spec.search;
  for (const auto& h : spec.hosts) {
    KILN_ASSIGN_OR_RETURN(protocol::HostsEntry e, protocol::parse_hosts_entry(h));
    plan.hosts.push_back(std::move(e));
  }
  return std::optional<NetPlan>(std::move(plan));
}

std::string render_resolv_conf(const NetPlan& plan) {
  if (plan.nameservers.empty()) return "";
  std::string out = "# written by kiln-init from the launch spec\n";
  for (const auto& ns : plan.nameservers) out += "nameserver " + protocol::format_ip(ns) + "\n";
  if (!plan.search.empty()) {
    out += "search";
    for (const auto& d : plan.search) out += " " + d;
    out += "\n";
  }
  return out;
}

std::string render_hosts(std::string_view existing, const NetPlan& plan) {
  std::string out(existing);
  if (!out.empty() && out.back() != '\n') out += '\n';
  // Lines of the file as it is, to skip entries already there.
  std::vector<std::string_view> present;
  for (std::size_t at = 0; at < existing.size();) {
    std::size_t nl = existing.find('\n', at);
    if (nl == std::string_view::npos) nl = existing.size();
    present.push_back(existing.substr(at, nl - at));
    at = nl + 1;
  }
  std::vector<std::string> added;
  for (const auto& e : plan.hosts) {
    std::string line = hosts_line(e);
    if (std::find(present.begin(), present.end(), line) != present.end()) continue;
    if (std::find(added.begin(), added.end(), line) != added.end()) continue;
    out += line + "\n";
    added.push_back(std::move(line));
  }
  return out;
}

}  // namespace kiln::agent::net

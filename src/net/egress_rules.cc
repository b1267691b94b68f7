// Renders the instance and host nftables tables. Every interpolated value is a parsed address
// (formatted by net_address) or an interface name checked by valid_interface_name.
#include "src/net/egress_rules.h"

#include <sstream>

#include "src/net/link_prefix.h"

namespace kiln::net {
namespace {

using protocol::format_ip;
using protocol::format_ip_prefix;

// Each table is replaced in one transaction: "add" makes sure it exists, "delete" drops the
// old one, the definition creates the new one; nft applies the buffer all or nothing.
void replace_table(std::ostringstream& out, std::string_view table) {
  out << "add table inet " << table << "\n";
  out << "delete table inet " << table << "\n";
}

void interval_set(std::ostringstream& out, std::string_view name, const std::vector<IpPrefix>& prefixes) {
  out << "\tset " << name << " {\n\t\ttype ipv4_addr\n\t\tflags interval\n";
  if (!prefixes.empty()) {
    out << "\t\telements = { ";
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
      out << (i ? ", " : "") << format_ip_prefix(prefixes[i]);
    }
    out << " }\n";
  }
  out << "\t}\n";
}

// A clean, immediate failure in the guest: TCP gets a reset, anything else ICMP
// "administratively prohibited".
void refuse_chain(std::ostringstream& out) {
  out << "\tchain refuse {\n"
         "\t\tmeta l4proto tcp reject with tcp reset\n"
         "\t\treject with icmpx type admin-prohibited\n"
         "\t}\n";
}

std::string nft_string(std::string_view name) { return "\"" + std::string(name) + "\""; }

std::vector<IpPrefix> private_prefixes() {
  std::vector<IpPrefix> out;
  for (const auto& r : private_ranges()) out.push_back(r.prefix);
  return normalize_prefixes(std::move(out));
}

bool all_ipv4(const std::vector<IpPrefix>& list) {
  for (const auto& p : list) {
    if (p.address.family != protocol::IpFamily::kV4) return false;
  }
  return true;
}

}  // namespace

bool valid_interface_name(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> render_instance_ruleset(const EgressPolicy& policy, const InstanceInterfaces& interfaces) {
  for (const auto* name : {&interfaces.tap, &interfaces.veth}) {
    if (!valid_interface_name(*name)) return make_error("invalid interface name '" + *name + "'");
  }
  if (interfaces.tap == interfaces.veth) return make_error("the TAP and the veth must differ");
  if (interfaces.veth_address.family != protocol::IpFamily::kV4) {
    return make_error("the veth address must be IPv4");
  }
  std::vector<IpPrefix> dns;
  for (const auto& a : policy.dns) dns.push_back(IpPrefix{a, 32});
  if (!all_ipv4(policy.never) || !all_ipv4(policy.deny) || !all_ipv4(policy.allow) || !all_ipv4(dns)) {
    return make_error("IPv6 egress is not supported yet");
  }
  const std::string tap = nft_string(interfaces.tap);
  const std::string veth = nft_string(interfaces.veth);
  const std::string guest = format_ip(kGuestAddress.address);

  std::ostringstream out;
  out << "# kiln: one instance's egress policy (mode " << network_mode_name(policy.mode) << ")\n";
  replace_table(out, kInstanceTable);
  out << "table inet " << kInstanceTable << " {\n";
  // The fixed ranges again, so that a policy built by hand cannot leave them out.
  std::vector<IpPrefix> never = policy.never;
  for (const auto& r : never_reachable_ranges()) never.push_back(r.prefix);
  interval_set(out, "never_reach", normalize_prefixes(std::move(never)));
  interval_set(out, "fn_deny", normalize_prefixes(policy.deny));
  interval_set(out, "fn_allow", normalize_prefixes(policy.allow));
  interval_set(out, "dns_servers", normalize_prefixes(dns));
  interval_set(out, "private_ranges", policy.allow_private ? std::vector<IpPrefix>{} : private_prefixes());
  out << "\n";
  // The guest reaches nothing in its own namespace (the TAP address, the veth end).
  out << "\tchain input {\n"
         "\t\ttype filter hook input priority filter; policy accept;\n"
         "\t\tiifname " << tap << " jump refuse\n"
         "\t}\n";
  // Only the guest's own address leaves, only through the veth, only IPv4; nothing enters
  // the guest except replies. Invalid packets would leave un-NATed (conntrack has no entry).
  out << "\tchain forward {\n"
         "\t\ttype filter hook forward priority filter; policy drop;\n"
         "\t\tct state established,related accept\n"
         "\t\tct state invalid drop\n"
         "\t\tiifname " << tap << " oifname " << veth << " meta nfproto ipv4 ip saddr " << guest
      << " jump guest_egress\n"
         "\t\tiifname " << tap << " jump refuse\n"
         "\t}\n";
  // Deny wins over allow; an allow entry re-opens just its part of a private range.
  out << "\tchain guest_egress {\n"
         "\t\tip daddr @never_reach jump refuse\n"
         "\t\tip daddr @fn_deny jump refuse\n"
         "\t\tip daddr @fn_allow accept\n"
         "\t\tip daddr @dns_servers udp dport 53 accept\n"
         "\t\tip daddr @dns_servers tcp dport 53 accept\n"
         "\t\tip daddr @private_ranges jump refuse\n"
      << (policy.mode == NetworkMode::kEgress ? "\t\taccept\n" : "\t\tjump refuse\n") << "\t}\n";
  out << "\tchain postrouting {\n"
         "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
         "\t\toifname " << veth << " ip saddr " << guest << " snat ip to " << format_ip(interfaces.veth_address)
      << "\n"
         "\t}\n";
  refuse_chain(out);
  out << "}\n";
  return out.str();
}

std::vector<Sysctl> instance_sysctls() { return {{"net.ipv4.ip_forward", "1"}}; }

Result<HostRules> render_host_rules(const IpPrefix& instance_range, std::string_view link_prefix) {
  if (instance_range.address.family != protocol::IpFamily::kV4) return make_error("the instance range must be IPv4");
  if (network_of(instance_range) != instance_range) {
    return make_error("the instance range " + format_ip_prefix(instance_range) + " has host bits set");
  }
  if (auto problem = link_prefix_problem(link_prefix, instance_range)) {
    return make_error("link prefix '" + std::string(link_prefix) + "': " + *problem);
  }
  const std::string veths = nft_string(std::string(link_prefix) + "*");
  const std::string table = host_table_name(link_prefix);
  const std::string range = format_ip_prefix(instance_range);

  std::ostringstream out;
  out << "# kiln: host side of every instance network\n";
  replace_table(out, table);
  out << "table inet " << table << " {\n";
  // No instance reaches the host itself: kilnd's API, any port, on any of its addresses.
  out << "\tchain input {\n"
         "\t\ttype filter hook input priority filter; policy accept;\n"
         "\t\tiifname " << veths << " jump refuse\n"
         "\t}\n";
  // No instance reaches another (also across tenants); instances send IPv4 from their range
  // only; from outside, only replies enter an instance.
  out << "\tchain forward {\n"
         "\t\ttype filter hook forward priority filter; policy accept;\n"
         "\t\tiifname " << veths << " oifname " << veths << " jump refuse\n"
         "\t\tiifname " << veths << " meta nfproto != ipv4 drop\n"
         "\t\tiifname " << veths << " ip saddr != " << range << " drop\n"
         "\t\toifname " << veths << " ct state established,related accept\n"
         "\t\toifname " << veths << " drop\n"
         "\t}\n";
  out << "\tchain postrouting {\n"
         "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
         "\t\toifname != " << veths << " ip saddr " << range << " masquerade\n"
         "\t}\n";
  refuse_chain(out);
  out << "}\n";
  return HostRules{out.str(), {{"net.ipv4.ip_forward", "1"}}};
}

Result<std::string> render_delete_table(std::string_view table) {
  bool ok = !table.empty() && table.size() <= 64 && !(table[0] >= '0' && table[0] <= '9');
  for (char c : table) ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok) return make_error("invalid nft table name '" + std::string(table) + "'");
  std::ostringstream out;
  replace_table(out, table);
  return out.str();
}

}  // namespace kiln::net

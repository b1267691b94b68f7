// nftables rulesets (the nft language, for nft_run_cmd_from_buffer) enforcing an instance's
// egress policy: one table inside the instance's network namespace, one in the host's. Pure:
// deterministic text from parsed values; interface names are checked before use.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/net_address.h"
#include "common/result.h"
#include "src/net/instance_addresses.h"
#include "src/net/network_settings.h"

namespace kiln::net {

inline constexpr std::string_view kInstanceTable = "kiln_instance";  // family inet, instance netns
inline constexpr std::string_view kHostTable = "kiln";  // family inet, host netns (link prefix "kv")

// The instance namespace's two interfaces and the address its veth end has (the guest's
// traffic leaves with it as source).
struct InstanceInterfaces {
  std::string tap;  // the guest NIC's host side
  std::string veth;  // the namespace's end of the veth pair, default route via the host end
  IpAddress veth_address;  // e.g. 10.200.0.6
};

// Linux interface names: 1..15 bytes, no '/', ':' or whitespace; here also only
// [A-Za-z0-9_.-] so a name can never break out of an nft string.
bool valid_interface_name(std::string_view name);

// The table for the instance namespace: the guest's traffic from the TAP is filtered
// (forward: established replies, then refusals for `never` and the function's deny, then the
// allow list, DNS to the configured servers, refusals for private ranges, then public
// destinations when mode is egress), SNATed to `veth_address`, and may not reach the
// namespace itself (input). Refusals are TCP resets / ICMP admin-prohibited: the guest's
// connection fails at once. Replaces an existing table of the same name atomically.
Result<std::string> render_instance_ruleset(const EgressPolicy& policy, const InstanceInterfaces& interfaces);

struct Sysctl {
  std::string key;  // "net.ipv4.ip_forward"
  std::string value;
  bool operator==(const Sysctl&) const = default;
};

// Sysctls the instance namespace needs (forwarding between TAP and veth).
std::vector<Sysctl> instance_sysctls();

// The host's table, created once by kilnd and named after its link prefix (host_table_name):
// nothing arriving on a `<prefix>*` veth reaches the host itself (input), instances never reach
// each other (forward <prefix>* -> <prefix>*), no new connection enters an instance from
// outside (another kilnd's instances included), and the instance range is masqueraded when it
// leaves through any other interface. The prefix must pass link_prefix_problem.
struct HostRules {
  std::string ruleset;
  std::vector<Sysctl> sysctls;  // to write before the first instance starts
};
Result<HostRules> render_host_rules(const IpPrefix& instance_range, std::string_view link_prefix = kDefaultLinkPrefix);

// Removes table inet `table` (kInstanceTable, kHostTable); nothing if it is absent. The name
// must be an nft identifier ([A-Za-z_][A-Za-z0-9_]*).
Result<std::string> render_delete_table(std::string_view table);

}  // namespace kiln::net

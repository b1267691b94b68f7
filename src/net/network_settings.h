// A function's `network` setting and the operator's network defaults, parsed strictly (errors
// name the field: "network.allow[1]: ..."), and the egress policy an instance runs with.
// IPv4 only for now; addresses go through common/protocol/net_address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/net/instance_addresses.h"
#include "common/json/field_reader.h"
#include "common/protocol/net_address.h"

namespace kiln::net {

using protocol::IpAddress;
using protocol::IpPrefix;

// none: no default egress (only `allow` entries; no interface at all when `allow` is empty).
// egress: public destinations too (Lambda's default internet egress), under the same denials.
enum class NetworkMode { kNone, kEgress };
const char* network_mode_name(NetworkMode mode);

inline constexpr std::size_t kMaxNetworkCidrs = 64;  // per list (allow, deny)
inline constexpr std::size_t kMaxDnsServers = 3;  // what resolv.conf honours
// Bandwidth caps, bytes per second: from 1 KiB/s to 100 GB/s.
inline constexpr std::uint64_t kMinBandwidth = 1024;
inline constexpr std::uint64_t kMaxBandwidth = 100'000'000'000;

// Per-direction bandwidth caps of an instance's interface, seen from the guest (rx: what it
// receives, tx: what it sends), as kiln-vmm's rx/tx rate limiters; nullopt: no cap.
struct Bandwidth {
  std::optional<std::uint64_t> rx;
  std::optional<std::uint64_t> tx;
  bool operator==(const Bandwidth&) const = default;
};

// The function setting `network`: {"mode", "allow": [CIDR], "deny": [CIDR], "dns": [IP],
// "bandwidth": {"rx": BYTES_PER_S, "tx": BYTES_PER_S}}.
// Unset fields take the operator's defaults (resolve_policy). CIDRs are network addresses
// (no host bits); a bare address means /32.
struct NetworkSettings {
  std::optional<NetworkMode> mode = std::nullopt;
  std::vector<IpPrefix> allow = {};
  std::vector<IpPrefix> deny = {};
  std::vector<IpAddress> dns = {};  // empty: the operator's default servers
  Bandwidth bandwidth = {};

  bool operator==(const NetworkSettings&) const = default;
};

// Strict: unknown keys, null, wrong types, IPv6 ("IPv6 egress is not supported yet"), host
// bits, too many entries and entries a guest can never reach (loopback, link-local, ...) are
// errors naming the field under `path`.
json::FieldResult<NetworkSettings> parse_network_settings(const json::Json& value,
                                                          const std::string& path = "network");
// The setting as the registry stores it (parse_network_settings reads it back unchanged).
json::Json network_settings_json(const NetworkSettings& settings);


// The operator's side, from kilnd's network configuration (a JSON object; kilnd has no config
// file yet, so this is meant for a later `--network-config FILE`):
// {"mode", "allow_private", "deny": [CIDR], "dns": [IP], "instance_range": CIDR, "link_prefix"}.
// Several kilnds share a host when each has its own link_prefix and instance_range.
struct NetworkDefaults {
  NetworkMode mode = NetworkMode::kEgress;
  bool allow_private = false;  // private ranges (10/8, 172.16/12, 192.168/16, 100.64/10) reachable
  std::vector<IpPrefix> deny;  // denied to every function; a function's `allow` cannot re-open them
  std::vector<IpAddress> dns;
  IpPrefix instance_range = kDefaultInstanceRange;
  std::string link_prefix = std::string(kDefaultLinkPrefix);  // host veths <prefix><N> (link_prefix.h)
  bool operator==(const NetworkDefaults&) const = default;
};
json::FieldResult<NetworkDefaults> parse_network_defaults(const json::Json& value, const std::string& path = "");

// What one instance's packet filter enforces: the function's settings over the defaults.
struct EgressPolicy {
  NetworkMode mode = NetworkMode::kEgress;
  bool allow_private = false;
  std::vector<IpPrefix> allow;  // the function's
  std::vector<IpPrefix> deny;  // the function's (wins over its allow)
  std::vector<IpPrefix> never;  // always denied: the fixed ranges, the instance range, operator deny
  std::vector<IpAddress> dns;
  Bandwidth bandwidth;  // the function's caps (kiln-vmm's rate limiters on its interface)
};
EgressPolicy resolve_policy(const NetworkSettings& settings, const NetworkDefaults& defaults);
// Whether the instance gets a network interface at all (mode none with no allow: none).
bool needs_interface(const EgressPolicy& policy);

// The ranges no guest ever reaches, whatever the settings ("this network", loopback,
// link-local with the metadata address, multicast, reserved and broadcast), and the private
// ranges that need `allow_private` or an `allow` entry. Each with the name errors use.
struct NamedRange {
  IpPrefix prefix;
  const char* name;
};
const std::vector<NamedRange>& never_reachable_ranges();
const std::vector<NamedRange>& private_ranges();

// Helpers on IPv4/IPv6 prefixes: the prefix with its host bits cleared, and whether `inner`
// lies entirely inside `outer`.
IpPrefix network_of(const IpPrefix& prefix);
bool prefix_within(const IpPrefix& inner, const IpPrefix& outer);
// Sorted, duplicates and prefixes inside another one dropped (nft interval sets refuse
// overlapping elements; sorting makes the rendered text deterministic).
std::vector<IpPrefix> normalize_prefixes(std::vector<IpPrefix> prefixes);

}  // namespace kiln::net

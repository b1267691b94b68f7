// Text forms of the addresses in the launch spec's network keys: strict parsing (inet_pton,
// decimal prefix lengths, colon-separated MACs, DNS names) shared by the spec's validation and
// kiln-init's network plan. libc only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::protocol {

enum class IpFamily : std::uint8_t { kV4, kV6 };

struct IpAddress {
  IpFamily family = IpFamily::kV4;
  std::array<std::uint8_t, 16> bytes{};  // network byte order; only the first 4 for kV4

  std::size_t size() const { return family == IpFamily::kV4 ? 4 : 16; }
  bool operator==(const IpAddress&) const = default;
};

// An interface address with its prefix length ("10.0.0.2/30").
struct IpPrefix {
  IpAddress address;
  std::uint8_t length = 0;

  bool operator==(const IpPrefix&) const = default;
};

using MacAddress = std::array<std::uint8_t, 6>;

// One address of either family (inet_pton: dotted quad without leading zeros, or IPv6 text
// without a zone).
Result<IpAddress> parse_ip(std::string_view text);
Result<IpAddress> parse_ip(std::string_view text, IpFamily family);
// "ADDRESS/LENGTH" of `family`; LENGTH is plain decimal, 1..32 (IPv4) or 1..128 (IPv6).
Result<IpPrefix> parse_ip_prefix(std::string_view text, IpFamily family);
// "aa:bb:cc:dd:ee:ff" (either case): six two-digit hex octets, unicast and not all zero.
Result<MacAddress> parse_mac(std::string_view text);

std::string format_ip(const IpAddress& address);
std::string format_ip_prefix(const IpPrefix& prefix);
std::string format_mac(const MacAddress& mac);

// Whether `address` lies in the network of `prefix` (same family, first `length` bits equal).
bool prefix_contains(const IpPrefix& prefix, const IpAddress& address);
// An address a host may own or route through: not unspecified, loopback, multicast, the IPv4
// limited broadcast or an IPv4-mapped IPv6 address.
bool is_unicast_host(const IpAddress& address);
// For IPv4 prefixes up to /30: the host part is neither all zeros (the network) nor all ones
// (the subnet broadcast). /31 and /32 have no such addresses (RFC 3021).
bool is_subnet_host(const IpPrefix& prefix);

// A DNS name as resolvers accept it: dot-separated labels of 1..63 characters from
// [A-Za-z0-9_-], at most 253 characters in all, no leading, trailing or doubled dot.
bool is_dns_name(std::string_view name);

}  // namespace kiln::protocol

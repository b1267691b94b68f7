// MacAddress: a guest NIC's Ethernet address as six bytes, parsed from and printed as the
// "06:00:ac:10:00:02" text Firecracker's guest_mac uses. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::vmm::config {

using MacAddress = std::array<std::uint8_t, 6>;

// Exactly six groups of two hex digits (either case) separated by ':'; nothing else.
Result<MacAddress> parse_mac_address(std::string_view text);
// Lower-case "xx:xx:xx:xx:xx:xx".
std::string format_mac_address(const MacAddress& mac);
// Bit 0 of the first byte (IEEE 802): a group address, which a NIC may not own.
inline bool is_multicast(const MacAddress& mac) { return (mac[0] & 1u) != 0; }

}  // namespace kiln::vmm::config

// The host-side names of one kilnd's instance networks: its veths <link_prefix><N> and its nft
// table. Each kilnd on a host takes its own prefix, so it reaps and filters only its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/protocol/net_address.h"
#include "src/net/instance_addresses.h"

namespace kiln::net {

inline constexpr std::size_t kMaxLinkNameLength = 15;  // IFNAMSIZ - 1

// Why `prefix` cannot name the veths of `instance_range`'s slots, or nullopt when it can:
// [a-z0-9] only, a letter first and last (so <prefix><digits> of two prefixes never match each
// other: a kilnd reaps only its own), not "kv" followed by more (the default kilnd's nft
// wildcard "kv*" would match it), and short enough that the largest slot's name fits 15 bytes.
std::optional<std::string> link_prefix_problem(std::string_view prefix, const protocol::IpPrefix& instance_range);

// The host's nft table (family inet) for `link_prefix`: "kiln" for the default "kv" (as
// before prefixes existed), "kiln_<prefix>" for any other.
std::string host_table_name(std::string_view link_prefix);

}  // namespace kiln::net

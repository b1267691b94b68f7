// The addresses and names every instance network shares (policy and plumbing both use them).
#pragma once

#include <string_view>

#include "common/protocol/net_address.h"

namespace kiln::net {

// The guest's link, the same in every instance (so snapshot clones need no change): the TAP in
// the instance namespace is 172.16.0.1/30 (the guest's gateway), the guest 172.16.0.2/30.
inline constexpr protocol::IpPrefix kTapAddress{{protocol::IpFamily::kV4, {172, 16, 0, 1}}, 30};
inline constexpr protocol::IpPrefix kGuestAddress{{protocol::IpFamily::kV4, {172, 16, 0, 2}}, 30};
// 10.200.0.0/16: per-instance veth /30s come from here unless the operator picks another range.
inline constexpr protocol::IpPrefix kDefaultInstanceRange{{protocol::IpFamily::kV4, {10, 200, 0, 0}}, 16};
// Host ends of the instances' veths: <link prefix><N>, N the address slot; "kv" unless the
// operator's network config names another (link_prefix, one per kilnd on a host).
inline constexpr std::string_view kDefaultLinkPrefix = "kv";

}  // namespace kiln::net

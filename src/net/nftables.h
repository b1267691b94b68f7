// libnftables behind errors as values: apply a ruleset written in the nft language (one
// transaction, all or nothing) and list the current ruleset. Each call works in the network
// namespace of the calling thread (a fresh nft context, and with it its netlink socket, per
// call).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::net::nft {

// Errors carry nft's own text ("Error: No such file or directory; did you mean table ...").
Status apply(std::string_view ruleset);
// The whole ruleset as `nft list ruleset` prints it.
Result<std::string> list_ruleset();

}  // namespace kiln::net::nft

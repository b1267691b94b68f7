// One kilnd's claim on its link prefix and instance range in the host's network namespace, so
// several kilnds share a host without taking each other's links, table or addresses.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/net_address.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::net {

struct NetworkClaim {
  std::string link_prefix;
  protocol::IpPrefix instance_range;
  bool operator==(const NetworkClaim&) const = default;
};

// The abstract Unix socket name of a claim: "kiln-net/<prefix>/<range>".
std::string claim_name(const NetworkClaim& claim);
// The claims in the text of /proc/net/unix (abstract names are shown with a leading '@').
std::vector<NetworkClaim> parse_claims(std::string_view proc_net_unix);
// Why two kilnds with these claims cannot share a host, or nullopt: the same prefix, one prefix
// starting with the other (the nft wildcard "<prefix>*" of one matches the other's links), or
// overlapping instance ranges (the same addresses on two links).
std::optional<std::string> claim_conflict(const NetworkClaim& mine, const NetworkClaim& other);

// Held while kilnd's instance networks run: an abstract Unix socket bound in the calling
// thread's network namespace, so the kernel releases it when kilnd ends, even by SIGKILL (a
// restarted kilnd is never refused by its own predecessor).
class HostClaim {
 public:
  // Binds `claim`'s name, then refuses when another live claim conflicts with it (two kilnds
  // starting at once see each other, and both refuse).
  static Result<HostClaim> take(const NetworkClaim& claim);

 private:
  explicit HostClaim(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace kiln::net

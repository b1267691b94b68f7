// kiln-init's network steps as PID 1 calls them: configure the link a plan names, write the
// resolver and hosts files, and refresh the link after a snapshot restore.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "guest-agent/net/net_plan.h"
#include "guest-agent/net/netlink_config.h"

namespace kiln::agent::net {

// The whole launch step: plan the spec's network, configure the link, write the files into
// `etc_dir`. nullopt when the spec has no network (nothing is touched). Errors start with
// "network: " and name the step.
Result<std::optional<ConfiguredLink>> apply_network(const protocol::NetworkSpec& spec, const std::string& etc_dir,
                                                    const std::string& default_hosts);

// Writes the plan's files into `etc_dir` (the guest's /etc once the overlay root is in place;
// writable even where the image's /etc is not). /etc/resolv.conf is replaced when the plan
// names nameservers, whatever was there (a file, or a symlink to a resolver stub that does not
// exist in a guest). /etc/hosts gets the plan's entries after its current content, or after
// `default_hosts` when it cannot be read (absent, or a dangling symlink, which is replaced).
// Both are replaced atomically (write a temp file, rename).
Status write_network_files(const NetPlan& plan, const std::string& etc_dir, const std::string& default_hosts);

// After a snapshot restore the link keeps its addresses and routes (every instance of a
// function has the same guest address), but its neighbour entries are the snapshot's: MACs of
// a host side that may be gone. Flushes them and announces the IPv4 address (gratuitous ARP).
// Returns a one-line summary for the console.
Result<std::string> refresh_after_restore(const ConfiguredLink& link);

// The guest network across one boot: applied at launch, refreshed on each identity request.
// PID 1 keeps one and calls it from the agent's prepare_root and after_identity hooks.
class GuestNetwork {
 public:
  // apply_network, keeping the link; returns a console line ("" when the spec has no network).
  Result<std::string> apply(const protocol::NetworkSpec& spec, const std::string& etc_dir,
                            const std::string& default_hosts);
  // refresh_after_restore of the configured link ("" and nothing done when there is none).
  // Errors start with "network: ".
  Result<std::string> refresh();

 private:
  std::optional<ConfiguredLink> link_;
};

}  // namespace kiln::agent::net

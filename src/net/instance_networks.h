// InstanceNetworks: kilnd's instance networks as one service: at start it claims its link prefix
// and instance range on the host, reaps what a previous kilnd with that prefix left (namespaces,
// <prefix><N> links), installs its host table and sysctls; per instance it
// builds the plumbing (netns, TAP owned by the jail user, veth pair, addresses) and applies the
// instance's egress rules inside its namespace. Thread-safe (instances are built on the jail
// spawner thread).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "common/result.h"
#include "src/net/address_pool.h"
#include "src/net/host_claim.h"
#include "src/net/instance_plumbing.h"
#include "src/net/network_settings.h"

namespace kiln::net {

// The guest NIC's MAC: the same in every instance (each NIC is alone on its TAP), so a
// snapshot's guest needs no change when it is restored elsewhere.
inline constexpr char kGuestMac[] = "06:00:ac:10:00:02";

// What kiln-init configures in the guest for `policy` (address, gateway, MTU, DNS).
protocol::NetworkSpec guest_network_spec(const EgressPolicy& policy);

// One instance's network; removed (namespace, TAP, veths, rules, address slot) when destroyed.
struct InstanceNetwork {
  InstancePlumbing plumbing;
  std::chrono::nanoseconds setup_duration{0};  // plumbing + rules
};

class InstanceNetworks {
 public:
  struct Options {
    std::string netns_dir;  // kilnd's private directory of namespace files
    protocol::IpPrefix instance_range = kDefaultInstanceRange;
    unsigned mtu = kDefaultMtu;
    // Host veths <link_prefix><N>, host table host_table_name(link_prefix): one per kilnd.
    std::string link_prefix = std::string(kDefaultLinkPrefix);
  };
  // Refuses a prefix link_prefix_problem refuses, or one another live kilnd's claim conflicts
  // with (HostClaim); reaps this prefix's leftovers (each removal reported), then installs the
  // host table and sysctls.
  static Result<std::shared_ptr<InstanceNetworks>> start(const Options& options, std::vector<std::string>& report);
  Result<InstanceNetwork> create(const std::string& instance_id, uid_t uid, gid_t gid, const EgressPolicy& policy);
  // Unmounts the namespace directory's own mount (every instance network is gone by then), so
  // kilnd's state directory can be removed.
  ~InstanceNetworks();

 private:
  InstanceNetworks(Options options, HostClaim claim, AddressPool pool)
      : options_(std::move(options)), claim_(std::move(claim)), pool_(std::move(pool)) {}
  const Options options_;
  HostClaim claim_;  // released last, when nothing of this kilnd's networks is left
  AddressPool pool_;  // thread-safe
};

}  // namespace kiln::net

// InstanceNetworks: kilnd's instance networks as one service: at start it reaps what a previous
// kilnd left (namespaces, kv<N> links), installs the host table and sysctls; per instance it
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
  };
  // Reaps leftovers (each removal reported), then installs the host table and sysctls.
  static Result<std::shared_ptr<InstanceNetworks>> start(const Options& options, std::vector<std::string>& report);
  Result<InstanceNetwork> create(const std::string& instance_id, uid_t uid, gid_t gid, const EgressPolicy& policy);
  // Unmounts the namespace directory's own mount (every instance network is gone by then), so
  // kilnd's state directory can be removed.
  ~InstanceNetworks();

 private:
  InstanceNetworks(Options options, AddressPool pool) : options_(std::move(options)), pool_(std::move(pool)) {}
  const Options options_;
  AddressPool pool_;  // thread-safe
};

}  // namespace kiln::net

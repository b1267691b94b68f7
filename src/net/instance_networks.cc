// InstanceNetworks implementation.
#include "src/net/instance_networks.h"

#include <fcntl.h>

#include "common/io.h"
#include "src/net/egress_rules.h"
#include "src/net/link_prefix.h"
#include "src/net/netns.h"
#include "src/net/nftables.h"

namespace kiln::net {
namespace {

// "net.ipv4.ip_forward" -> /proc/sys/net/ipv4/ip_forward, in the calling thread's netns.
Status write_sysctls(const std::vector<Sysctl>& sysctls) {
  for (const Sysctl& s : sysctls) {
    std::string path = "/proc/sys/" + s.key;
    for (size_t i = std::string("/proc/sys/").size(); i < path.size(); ++i) {
      if (path[i] == '.') path[i] = '/';
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return errno_error("sysctl " + s.key);
    KILN_TRY(io::write_all(fd.get(), s.value, "sysctl " + s.key));
  }
  return ok_status();
}

}  // namespace

protocol::NetworkSpec guest_network_spec(const EgressPolicy& policy) {
  protocol::NetworkSpec n;
  n.mac = kGuestMac;
  n.address = protocol::format_ip_prefix(kGuestAddress);
  n.gateway = protocol::format_ip(kTapAddress.address);
  n.mtu = kDefaultMtu;
  for (const protocol::IpAddress& d : policy.dns) n.dns.push_back(protocol::format_ip(d));
  return n;
}

Result<std::shared_ptr<InstanceNetworks>> InstanceNetworks::start(const Options& options,
                                                                  std::vector<std::string>& report) {
  if (auto problem = link_prefix_problem(options.link_prefix, options.instance_range)) {
    return make_error("link prefix '" + options.link_prefix + "': " + *problem);
  }
  auto claim = HostClaim::take({options.link_prefix, options.instance_range});
  if (!claim.ok()) return claim.error().wrap("claiming the host's links and addresses");
  KILN_TRY(io::make_dirs(options.netns_dir, 0700));
  auto reaped = reap(options.netns_dir, options.link_prefix);
  if (!reaped.ok()) return reaped.error().wrap("removing a previous kilnd's instance networks");
  for (const std::string& f : reaped->netns_files) report.push_back("removed network namespace " + f);
  for (const std::string& l : reaped->host_links) report.push_back("removed link " + l);
  KILN_ASSIGN_OR_RETURN(HostRules host, render_host_rules(options.instance_range, options.link_prefix));
  KILN_TRY(write_sysctls(host.sysctls));
  if (auto st = nft::apply(host.ruleset); !st.ok()) {
    return st.error().wrap("installing the host's table inet " + host_table_name(options.link_prefix));
  }
  KILN_ASSIGN_OR_RETURN(AddressPool pool, AddressPool::create(options.instance_range));
  return std::shared_ptr<InstanceNetworks>(new InstanceNetworks(options, std::move(claim).value(), std::move(pool)));
}

InstanceNetworks::~InstanceNetworks() { (void)release_netns_dir(options_.netns_dir); }

Result<InstanceNetwork> InstanceNetworks::create(const std::string& instance_id, uid_t uid, gid_t gid,
                                                 const EgressPolicy& policy) {
  const auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(AddressLease lease, pool_.acquire());
  PlumbingSpec spec{options_.netns_dir, instance_id, uid, gid, std::move(lease), options_.mtu, options_.link_prefix};
  KILN_ASSIGN_OR_RETURN(InstancePlumbing plumbing, InstancePlumbing::create(std::move(spec)));
  InstanceInterfaces ifaces{plumbing.tap_name(), kInstanceLinkName, plumbing.instance_end().address};
  KILN_ASSIGN_OR_RETURN(std::string rules, render_instance_ruleset(policy, ifaces));
  Status applied = run_in_netns(plumbing.netns_path(), [&rules]() -> Status {
    KILN_TRY(write_sysctls(instance_sysctls()));
    return nft::apply(rules);
  });
  if (!applied.ok()) return applied.error().wrap("instance " + instance_id + ": egress rules");
  return InstanceNetwork{std::move(plumbing), std::chrono::steady_clock::now() - start};
}

}  // namespace kiln::net

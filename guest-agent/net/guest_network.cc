// The resolver/hosts files and the restore-time refresh.
#include "guest-agent/net/guest_network.h"

#include <cerrno>

#include "common/io.h"
#include "guest-agent/net/garp.h"

namespace kiln::agent::net {

namespace {

constexpr std::size_t kMaxHostsFile = 1024 * 1024;

io::AtomicWriteOptions etc_file_options() {
  io::AtomicWriteOptions o;
  o.mode = 0644;  // read by every user the command may run as
  return o;
}

}  // namespace

Status write_network_files(const NetPlan& plan, const std::string& etc_dir, const std::string& default_hosts) {
  std::string resolv = render_resolv_conf(plan);
  if (!resolv.empty()) KILN_TRY(io::write_file_atomic(etc_dir + "/resolv.conf", resolv, etc_file_options()));
  if (plan.hosts.empty()) return ok_status();
  const std::string hosts_path = etc_dir + "/hosts";
  auto current = io::read_file(hosts_path, kMaxHostsFile);
  // Absent, dangling or a symlink loop: the file is replaced, so start from the default.
  int err = current.ok() ? 0 : current.error().sys_errno;
  if (!current.ok() && err != ENOENT && err != ELOOP) return current.error();
  return io::write_file_atomic(hosts_path, render_hosts(current.ok() ? *current : default_hosts, plan),
                               etc_file_options());
}

Result<std::optional<ConfiguredLink>> apply_network(const protocol::NetworkSpec& spec, const std::string& etc_dir,
                                                    const std::string& default_hosts) {
  auto plan = plan_network(spec);
  if (!plan.ok()) return plan.error().wrap("network");
  if (!plan->has_value()) return std::optional<ConfiguredLink>();
  auto link = configure_link(**plan);
  if (!link.ok()) return link.error().wrap("network");
  if (auto st = write_network_files(**plan, etc_dir, default_hosts); !st.ok()) return st.error().wrap("network");
  return std::optional<ConfiguredLink>(std::move(*link));
}

Result<std::string> refresh_after_restore(const ConfiguredLink& link) {
  KILN_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
  auto flushed = nl.flush_neighbours(link.link.ifindex);
  if (!flushed.ok()) return flushed.error().wrap(link.link.name);
  std::string summary = link.link.name + ": " + std::to_string(*flushed) + " neighbour entries flushed";
  for (const auto& a : link.addresses) {
    if (a.address.family != protocol::IpFamily::kV4) continue;
    auto sent = send_gratuitous_arp(link.link.ifindex, link.mac, a.address);
    if (!sent.ok()) return sent.error().wrap(link.link.name);
    summary += *sent == GarpOutcome::kSent ? ", gratuitous ARP for " + protocol::format_ip(a.address)
                                           : ", no gratuitous ARP (no packet sockets)";
  }
  return summary;
}

Result<std::string> GuestNetwork::apply(const protocol::NetworkSpec& spec, const std::string& etc_dir,
                                        const std::string& default_hosts) {
  KILN_ASSIGN_OR_RETURN(link_, apply_network(spec, etc_dir, default_hosts));
  return link_ ? "network: " + link_->link.name + " configured" : std::string();
}

Result<std::string> GuestNetwork::refresh() {
  if (!link_) return std::string();
  auto summary = refresh_after_restore(*link_);
  if (!summary.ok()) return summary.error().wrap("network");
  return "network: " + *summary;
}

}  // namespace kiln::agent::net

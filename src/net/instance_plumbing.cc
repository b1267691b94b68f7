// The per-instance plumbing in order, with the undo of a partial setup left to destroy().
#include "src/net/instance_plumbing.h"

#include <dirent.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "src/net/links.h"
#include "src/net/tap_device.h"

namespace kiln::net {

namespace {

// In the instance netns, before the veth exists: lo up, the TAP with the guest's gateway address.
Status configure_instance_side(const PlumbingSpec& spec) {
  KILN_ASSIGN_OR_RETURN(RouteSocket rt, RouteSocket::open());
  KILN_TRY(rt.set_link_up("lo"));
  KILN_TRY(create_persistent_tap(kTapName, spec.uid, spec.gid));
  KILN_TRY(rt.add_ipv4_address(kTapName, kTapAddress));
  KILN_TRY(rt.set_link_up(kTapName, spec.mtu));
  return ok_status();
}

// In the instance netns, once kv-ns is there: its address, up, the default route via kv<N>.
Status configure_route(const AddressSlot& slot) {
  KILN_ASSIGN_OR_RETURN(RouteSocket rt, RouteSocket::open());
  KILN_TRY(rt.add_ipv4_address(kInstanceLinkName, slot.instance_end));
  KILN_TRY(rt.set_link_up(kInstanceLinkName));
  KILN_TRY(rt.add_default_route(slot.host_end.address));
  return ok_status();
}

bool is_reapable_link(const std::string& name, std::string_view prefix) {
  if (name.size() <= prefix.size() || !name.starts_with(prefix)) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<InstancePlumbing> InstancePlumbing::create(PlumbingSpec spec) {
  const auto start = std::chrono::steady_clock::now();
  if (!spec.slot.valid()) return make_error("instance network: no address slot");
  const AddressSlot slot = spec.slot.slot();
  const std::string context = "instance network " + spec.instance_id;

  InstancePlumbing p;  // destroys whatever exists so far when a step fails
  p.slot_ = std::move(spec.slot);
  p.tap_name_ = kTapName;
  auto ns = NetNamespace::create(spec.netns_dir, spec.instance_id);
  if (!ns.ok()) return ns.error().wrap(context);
  p.netns_ = std::move(ns).value();

  auto wrap = [&](Status s) -> Status { return s.ok() ? s : Status(s.error().wrap(context)); };
  KILN_TRY(wrap(run_in_netns(p.netns_path(), [&] { return configure_instance_side(spec); })));

  auto ns_fd = open_netns(p.netns_path());
  if (!ns_fd.ok()) return ns_fd.error().wrap(context);
  auto host = RouteSocket::open();
  if (!host.ok()) return host.error().wrap(context);
  const std::string host_link = slot.host_link_name(spec.link_prefix);
  if (Status made = host->create_veth(host_link, kInstanceLinkName, ns_fd->get(), spec.mtu); !made.ok()) {
    // A <prefix><N> that is not ours (reap() leaves none of kilnd's): keep slot N taken, so the next
    // instance gets another one instead of failing the same way.
    if (auto existing = host->find_link(host_link); existing.ok() && existing->has_value()) p.slot_.release();
    return made.error().wrap(context);
  }
  p.host_link_ = host_link;
  KILN_TRY(wrap(host->add_ipv4_address(host_link, slot.host_end)));
  KILN_TRY(wrap(host->set_link_up(host_link)));
  KILN_TRY(wrap(run_in_netns(p.netns_path(), [&] { return configure_route(slot); })));

  p.setup_duration_ = std::chrono::steady_clock::now() - start;
  return p;
}

InstancePlumbing::~InstancePlumbing() { (void)destroy(); }

InstancePlumbing::InstancePlumbing(InstancePlumbing&& o) noexcept
    : netns_(std::move(o.netns_)),
      slot_(std::move(o.slot_)),
      tap_name_(std::move(o.tap_name_)),
      host_link_(std::exchange(o.host_link_, std::string())),
      setup_duration_(o.setup_duration_) {}

InstancePlumbing& InstancePlumbing::operator=(InstancePlumbing&& o) noexcept {
  if (this != &o) {
    (void)destroy();
    netns_ = std::move(o.netns_);
    slot_ = std::move(o.slot_);
    tap_name_ = std::move(o.tap_name_);
    host_link_ = std::exchange(o.host_link_, std::string());
    setup_duration_ = o.setup_duration_;
  }
  return *this;
}

Status InstancePlumbing::destroy() {
  Status first;
  auto keep = [&](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  if (!host_link_.empty()) {
    auto rt = RouteSocket::open();
    if (!rt.ok()) {
      keep(rt.error());
    } else {
      auto deleted = rt->delete_link(host_link_);
      if (!deleted.ok()) keep(deleted.error());
    }
    host_link_.clear();
  }
  keep(netns_.remove());
  slot_.reset();
  return first;
}

void InstancePlumbing::release() {
  (void)netns_.release();
  slot_.release();
  host_link_.clear();
}

Result<ReapReport> reap(const std::string& netns_dir, std::string_view link_prefix) {
  ReapReport report;
  Status first;
  auto keep = [&](const Error& e) {
    if (first.ok()) first = e;
  };
  // Links first: removing a namespace makes the kernel delete its veth pairs later, on its own.
  KILN_ASSIGN_OR_RETURN(RouteSocket rt, RouteSocket::open());
  KILN_ASSIGN_OR_RETURN(std::vector<LinkInfo> links, rt.list_links(link_prefix));
  for (const LinkInfo& link : links) {
    if (!is_reapable_link(link.name, link_prefix)) continue;
    auto deleted = rt.delete_link(link.name);
    if (!deleted.ok()) {
      keep(deleted.error());
    } else if (*deleted) {
      report.host_links.push_back(link.name);
    }
  }
  if (std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(netns_dir.c_str()), ::closedir); dir) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir.get())) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    for (const std::string& name : names) {
      std::string path = netns_dir + "/" + name;
      if (Status s = remove_netns(path); s.ok()) {
        report.netns_files.push_back(path);
      } else {
        keep(s.error());
      }
    }
  } else if (errno != ENOENT) {
    keep(errno_error("listing " + netns_dir));
  }
  if (!first.ok()) return first.error();
  return report;
}

}  // namespace kiln::net

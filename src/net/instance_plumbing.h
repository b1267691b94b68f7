// One instance's network: its own netns holding the VMM's TAP and one end of a veth pair whose
// other end (<link prefix><N>, kv<N> by default) is in kilnd's netns; created before the jail,
// removed when the instance ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/protocol/net_address.h"
#include "common/result.h"
#include "src/net/address_pool.h"
#include "src/net/instance_addresses.h"
#include "src/net/netns.h"

namespace kiln::net {

inline constexpr char kTapName[] = "tap0";           // in the instance netns, owned by the jail user
inline constexpr char kInstanceLinkName[] = "kv-ns";  // the veth end in the instance netns
inline constexpr unsigned kDefaultMtu = 1500;

struct PlumbingSpec {
  std::string netns_dir;    // kilnd's private directory of namespace files
  std::string instance_id;  // the namespace file's name
  uid_t uid = 0;            // the jail's user and group: the TAP's owner
  gid_t gid = 0;
  AddressLease slot;        // from the AddressPool; held until the plumbing is destroyed
  unsigned mtu = kDefaultMtu;
  std::string link_prefix = std::string(kDefaultLinkPrefix);  // the host end is <link_prefix><N>
};

class InstancePlumbing {
 public:
  // Creates, in order: the netns; in it lo up and the TAP (persistent, owned by uid/gid, with
  // the guest's gateway address, up); the veth pair kv<N> (here) / kv-ns (there); kv<N>'s
  // address, up; in the netns kv-ns's address, up, and the default route via kv<N>. Any failure
  // undoes what was done and returns the step's error; when kv<N> already existed (not kilnd's),
  // slot N stays taken in the pool.
  static Result<InstancePlumbing> create(PlumbingSpec spec);

  InstancePlumbing() = default;
  ~InstancePlumbing();
  InstancePlumbing(InstancePlumbing&& o) noexcept;
  InstancePlumbing& operator=(InstancePlumbing&& o) noexcept;
  InstancePlumbing(const InstancePlumbing&) = delete;
  InstancePlumbing& operator=(const InstancePlumbing&) = delete;

  // For JailSpec.netns.
  const std::string& netns_path() const { return netns_.path(); }
  const std::string& tap_name() const { return tap_name_; }
  const std::string& host_link_name() const { return host_link_; }
  const AddressSlot& slot() const { return slot_.slot(); }
  const protocol::IpPrefix& host_end() const { return slot_.slot().host_end; }
  const protocol::IpPrefix& instance_end() const { return slot_.slot().instance_end; }
  // How long create() took (steady clock), for the per-instance setup time kilnd reports.
  std::chrono::nanoseconds setup_duration() const { return setup_duration_; }

  // Removes kv<N> (taking kv-ns with it, synchronously) and the netns (which takes the TAP when
  // its last user is gone), then returns the slot. Every step is tried; the first error is returned.
  Status destroy();
  // Leaves everything in place and forgets it (what a crash does); reap() cleans up later.
  void release();

 private:
  NetNamespace netns_;
  AddressLease slot_;
  std::string tap_name_;
  std::string host_link_;  // empty until the veth pair exists
  std::chrono::nanoseconds setup_duration_{0};
};

// What reap() removed.
struct ReapReport {
  std::vector<std::string> netns_files;
  std::vector<std::string> host_links;
};

// Start-up after a crash: removes every namespace file in `netns_dir` and every link of the
// calling thread's netns named <link_prefix><digits> (only this kilnd's: another kilnd on the
// host has its own prefix and directory). Tries everything; errors are reported after all that
// could be removed was.
Result<ReapReport> reap(const std::string& netns_dir, std::string_view link_prefix = kDefaultLinkPrefix);

}  // namespace kiln::net

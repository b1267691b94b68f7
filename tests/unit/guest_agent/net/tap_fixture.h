// Test helpers for kiln-init's network: threads in other network namespaces, a TAP device
// standing in for the guest's virtio-net NIC, ARP entries, and the gratuitous ARP read back.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "common/protocol/net_address.h"
#include "common/unique_fd.h"

namespace kiln::agent::net::testing {

// Runs `body` on a thread of its own that first moves into a new, empty network namespace
// (or, in_netns_of, into the one of process `pid`). Namespaces are per thread, so the test
// process's own network is never touched; a new namespace goes away with its last user.
// A failure to switch is a test failure (ADD_FAILURE), and `body` does not run.
void in_new_netns(const std::function<void()>& body);
void in_netns_of(pid_t pid, const std::function<void()>& body);

// A TAP device `name` with hardware address `mac` in the calling thread's namespace,
// non-blocking: frames the kernel sends out of it are read from the fd. Invalid on failure
// (reported with ADD_FAILURE).
UniqueFd make_tap(const std::string& name, const protocol::MacAddress& mac);

// Adds an ARP entry on `dev` (SIOCSARP): stale, or permanent.
void add_arp(const std::string& dev, const std::string& ip, bool permanent);

// Reads frames from `tap_fd` until the ARP announcement of `ip` from `mac` (broadcast, a
// request from and for `ip`) arrives: "" then, else what went wrong after `timeout_ms`.
std::string wait_for_announcement(int tap_fd, const protocol::MacAddress& mac, const protocol::IpAddress& ip,
                                  int timeout_ms);

}  // namespace kiln::agent::net::testing

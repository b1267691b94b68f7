// Persistent TAP devices through /dev/net/tun (not netlink): created once by kilnd in an
// instance's netns and owned by the jail's uid/gid, so the unprivileged VMM attaches by name.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/net/tun.h"
#include "common/result.h"

namespace kiln::net {

// Creates TAP `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) in the calling thread's network
// namespace, persistent (it outlives this call's fd) and attachable only by `uid` with `gid`
// (the tun driver wants both to match, or CAP_NET_ADMIN). `name`: 1-15 characters. Left
// down, without addresses.
Status create_persistent_tap(const std::string& name, uid_t uid, gid_t gid);

// Deletes persistent TAP `name` in the calling thread's network namespace: attach, then clear
// the persistence so the device goes with the fd.
Status delete_persistent_tap(const std::string& name);

}  // namespace kiln::net

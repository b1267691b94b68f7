// The tun driver's attach step (Documentation/networking/tuntap.rst), once for kiln-vmm (a TAP
// by name for its virtio-net device) and kilnd (the persistent TAP it makes for the jail user).
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::net {

inline constexpr char kTunDevicePath[] = "/dev/net/tun";

enum class TunBlocking { kBlocking, kNonBlocking };

// Opens /dev/net/tun (O_RDWR | O_CLOEXEC, O_NONBLOCK for kNonBlocking) and attaches the fd to
// TAP `name` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (TUNSETIFF), creating the device when it
// is missing and the caller may (CAP_NET_ADMIN). Errors name the device and carry the OS error:
// "tap NAME: the name must have 1 to 15 bytes", "NAME: open /dev/net/tun: ...",
// "NAME: TUNSETIFF: Operation not permitted".
Result<UniqueFd> open_tap(const std::string& name, TunBlocking blocking = TunBlocking::kBlocking);

}  // namespace kiln::net

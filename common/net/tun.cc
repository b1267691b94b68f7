// open_tap: open(/dev/net/tun) and TUNSETIFF.
#include "common/net/tun.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

namespace kiln::net {

Result<UniqueFd> open_tap(const std::string& name, TunBlocking blocking) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return make_error("tap " + name + ": the name must have 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  const int flags = O_RDWR | O_CLOEXEC | (blocking == TunBlocking::kNonBlocking ? O_NONBLOCK : 0);
  UniqueFd fd(::open(kTunDevicePath, flags));
  if (!fd) return errno_error(name + ": open " + kTunDevicePath);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return errno_error(name + ": TUNSETIFF");
  return fd;
}

}  // namespace kiln::net

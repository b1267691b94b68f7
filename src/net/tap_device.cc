// TAP creation and deletion with the tun driver's ioctls (Documentation/networking/tuntap.rst).
#include "src/net/tap_device.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

#include "common/unique_fd.h"

namespace kiln::net {

namespace {

// Opens /dev/net/tun and attaches to (creating when missing) TAP `name`.
Result<UniqueFd> attach_tap(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return make_error("TAP name '" + name + "' is not 1-15 characters");
  UniqueFd fd(::open(kTunDevicePath, O_RDWR | O_CLOEXEC));
  if (!fd) return errno_error(std::string("opening ") + kTunDevicePath);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return errno_error("TUNSETIFF " + name);
  return fd;
}

}  // namespace

Status create_persistent_tap(const std::string& name, uid_t uid, gid_t gid) {
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, attach_tap(name));
  // Owner and group first, persistence last: a failure leaves nothing behind (the device goes
  // with the fd while it is not persistent).
  if (::ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(uid)) != 0) return errno_error("TUNSETOWNER " + name);
  if (::ioctl(fd.get(), TUNSETGROUP, static_cast<unsigned long>(gid)) != 0) return errno_error("TUNSETGROUP " + name);
  if (::ioctl(fd.get(), TUNSETPERSIST, 1UL) != 0) return errno_error("TUNSETPERSIST " + name);
  return ok_status();
}

Status delete_persistent_tap(const std::string& name) {
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, attach_tap(name));
  if (::ioctl(fd.get(), TUNSETPERSIST, 0UL) != 0) return errno_error("TUNSETPERSIST 0 " + name);
  return ok_status();
}

}  // namespace kiln::net

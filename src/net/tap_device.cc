// TAP creation and deletion: common/net/tun's open_tap, then the persistence ioctls
// (Documentation/networking/tuntap.rst).
#include "src/net/tap_device.h"

#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "common/unique_fd.h"

namespace kiln::net {

Status create_persistent_tap(const std::string& name, uid_t uid, gid_t gid) {
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, open_tap(name));
  // Owner and group first, persistence last: a failure leaves nothing behind (the device goes
  // with the fd while it is not persistent).
  if (::ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(uid)) != 0) return errno_error(name + ": TUNSETOWNER");
  if (::ioctl(fd.get(), TUNSETGROUP, static_cast<unsigned long>(gid)) != 0) return errno_error(name + ": TUNSETGROUP");
  if (::ioctl(fd.get(), TUNSETPERSIST, 1UL) != 0) return errno_error(name + ": TUNSETPERSIST");
  return ok_status();
}

Status delete_persistent_tap(const std::string& name) {
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, open_tap(name));
  if (::ioctl(fd.get(), TUNSETPERSIST, 0UL) != 0) return errno_error(name + ": TUNSETPERSIST 0");
  return ok_status();
}

}  // namespace kiln::net

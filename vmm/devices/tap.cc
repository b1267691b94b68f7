// Tap: /dev/net/tun with TUNSETIFF, TUNSETVNETHDRSZ and TUNSETOFFLOAD.
#include "vmm/devices/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

#include "vmm/devices/net_frame.h"

namespace kiln::vmm::devices {

Result<std::unique_ptr<Tap>> Tap::open(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return make_error("tap " + name + ": the name must have 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return errno_error(name + ": open /dev/net/tun");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return errno_error(name + ": TUNSETIFF");
  int hdr = static_cast<int>(kNetHdrSize);
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr) != 0) return errno_error(name + ": TUNSETVNETHDRSZ");
  auto tap = std::unique_ptr<Tap>(new Tap(std::move(fd), name));
  KILN_TRY(tap->set_offload(0));  // until the driver says what it takes
  return tap;
}

Status Tap::set_offload(unsigned tun_flags) {
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(tun_flags)) != 0) {
    return errno_error(name_ + ": TUNSETOFFLOAD");
  }
  return ok_status();
}

}  // namespace kiln::vmm::devices

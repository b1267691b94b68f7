// Tap: common/net/tun's open_tap, then TUNSETVNETHDRSZ and TUNSETOFFLOAD.
#include "vmm/devices/tap.h"

#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "common/net/tun.h"
#include "vmm/devices/net_frame.h"

namespace kiln::vmm::devices {

Result<std::unique_ptr<Tap>> Tap::open(const std::string& name) {
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, net::open_tap(name, net::TunBlocking::kNonBlocking));
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

// open_tap: a TAP attached by name with the virtio header, blocking or not, and the errors its
// callers (kiln-vmm's Tap, kilnd's persistent TAP) pass on. The device tests run in a forked
// child with its own network namespace (root), so nothing is left on the host.
#include "common/net/tun.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace kiln::net {
namespace {

TEST(OpenTap, AttachesByNameWithTheVirtioHeader) {
  if (::geteuid() != 0 || ::access(kTunDevicePath, R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/net/tun";
  int rc = kiln::testing::in_new_netns([] {
    auto fd = open_tap("kilntun0");
    if (!fd.ok()) return 1;
    if (::if_nametoindex("kilntun0") == 0) return 2;
    ifreq ifr{};
    if (::ioctl(fd->get(), TUNGETIFF, &ifr) != 0) return 3;
    if ((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) != (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) return 4;
    if ((::fcntl(fd->get(), F_GETFL) & O_NONBLOCK) != 0) return 5;
    if ((::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) == 0) return 6;
    // Single queue: a second attach is refused while the first fd holds the device.
    auto again = open_tap("kilntun0", TunBlocking::kNonBlocking);
    if (again.ok() || again.error().message.rfind("kilntun0: TUNSETIFF: ", 0) != 0) return 7;
    fd->reset();
    auto nonblocking = open_tap("kilntun1", TunBlocking::kNonBlocking);
    if (!nonblocking.ok() || (::fcntl(nonblocking->get(), F_GETFL) & O_NONBLOCK) == 0) return 8;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "100: unshare failed; 1..8: the step that failed";
}

TEST(OpenTap, RefusesNamesTheKernelCannotHold) {
  auto empty = open_tap("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "tap : the name must have 1 to 15 bytes");
  auto long_name = open_tap("a-name-longer-than-15");
  ASSERT_FALSE(long_name.ok());
  EXPECT_EQ(long_name.error().message, "tap a-name-longer-than-15: the name must have 1 to 15 bytes");
}

}  // namespace
}  // namespace kiln::net

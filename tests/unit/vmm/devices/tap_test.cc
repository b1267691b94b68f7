// Tap: opening a TAP by name with the virtio header, offloads, and the errors a caller sees.
// Runs in a throwaway network namespace (a forked child), so nothing is left on the host.
#include "vmm/devices/tap.h"

#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string>

#include "tests/support/process.h"

namespace kiln::vmm::devices {
namespace {

TEST(Tap, OpensByNameWithTheVirtioHeaderAndTakesOffloads) {
  int rc = kiln::testing::in_new_netns([] {
    auto tap = Tap::open("kilntap0");
    if (!tap.ok()) return 1;
    if (::if_nametoindex("kilntap0") == 0) return 2;  // the device exists
    if (!(*tap)->set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6).ok()) return 3;
    if (!(*tap)->set_offload(0).ok()) return 4;
    // The kernel refuses segmentation without checksum offload; the error names the device.
    auto bad = (*tap)->set_offload(TUN_F_TSO4 | 0x8000);
    if (bad.ok() || bad.error().message.find("kilntap0: TUNSETOFFLOAD") == std::string::npos) return 5;
    // A second open of the same single-queue TAP is refused while the first holds it.
    auto again = Tap::open("kilntap0");
    if (again.ok() || again.error().message.find("kilntap0: TUNSETIFF") == std::string::npos) return 6;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "100: unshare failed (needs root); 1..6: the step that failed";
}

TEST(Tap, RefusesNamesTheKernelCannotHold) {
  EXPECT_FALSE(Tap::open("").ok());
  auto r = Tap::open("a-name-longer-than-15");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("1 to 15 bytes"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kiln::vmm::devices

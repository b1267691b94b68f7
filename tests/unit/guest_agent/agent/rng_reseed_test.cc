// reseed_kernel_rng: the random(4) ioctls on a real device, refusals with clear errors.
#include "guest-agent/agent/rng_reseed.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/protocol/messages.h"

namespace kiln::agent {
namespace {

TEST(RngReseed, MixesAndReseedsOnTheKernelRng) {
  if (::geteuid() != 0) GTEST_SKIP() << "RNDADDENTROPY needs CAP_SYS_ADMIN";
  Status st = reseed_kernel_rng(std::string(64, '\x5a'));
  EXPECT_TRUE(st.ok()) << st.error().message;
}

TEST(RngReseed, RefusesANonRandomDeviceAndOversizedSeeds) {
  Status not_rng = reseed_kernel_rng("seed", "/dev/null");
  ASSERT_FALSE(not_rng.ok());
  EXPECT_NE(not_rng.error().message.find("RNDADDENTROPY"), std::string::npos) << not_rng.error().message;
  EXPECT_FALSE(reseed_kernel_rng(std::string(protocol::kMaxIdentityEntropy + 1, 'x')).ok());
  EXPECT_TRUE(reseed_kernel_rng("").ok());  // nothing to do
}

}  // namespace
}  // namespace kiln::agent

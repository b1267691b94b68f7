// e2e load, short (issue 9, label e2e: `make test` runs it; real microVMs, the nested test host
// here): the load test's shape (10 functions x 2 warm instances = 20 kiln-vmm microVMs) and one
// burst of 200 concurrent event invocations, each echoing its own nonce: no wrong and no lost
// answer, no instance replaced, no kiln-vmm left after SIGTERM. The long runs: load_e2e_test.cc.
#include <gtest/gtest.h>

#include "tests/e2e/load/load_fleet.h"

namespace {

class LoadShortE2e : public kiln::e2e::load::LoadE2e {};

TEST_F(LoadShortE2e, OneBurstOfTwoHundredNoncesOverTwentyInstances) {
  deploy_fleet();
  if (HasFatalFailure()) return;
  EXPECT_EQ(checked_burst(0).ok, kiln::e2e::load::kConcurrent);
  expect_no_replacement_and_clean_stop();
}

}  // namespace

// kvm tier: the self-test guest on whatever /dev/kvm this machine has. The expected verdict
// comes from an independent fact about the host: a paravirtual kvm_pvm module cannot run
// Linux guests, the nested test host (KILN_IN_TEST_HOST=1, real SVM) can.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "vmm/kvm/selftest.h"

namespace kiln::vmm {
namespace {

bool usable_kvm() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }

TEST(KvmSelfTest, VerdictMatchesHostKind) {
  if (!usable_kvm()) GTEST_SKIP() << "no usable /dev/kvm on this machine";
  SelfTestVerdict v = run_kvm_self_test();
  std::printf("self-test verdict: %s\n", v.sentence.c_str());
  const bool pvm_host = ::access("/sys/module/kvm_pvm", F_OK) == 0;
  const char* in_test_host = std::getenv("KILN_IN_TEST_HOST");
  if (pvm_host) {
    EXPECT_FALSE(v.can_run_linux);
    EXPECT_EQ(v.sentence.rfind("This KVM cannot run Linux guests: ", 0), 0u);
    EXPECT_NE(v.sentence.find("SYSCALL"), std::string::npos) << "the reason must name SYSCALL";
  } else if (in_test_host != nullptr && std::string(in_test_host) == "1") {
    EXPECT_TRUE(v.can_run_linux) << v.sentence;
    EXPECT_EQ(v.sentence.rfind("This KVM can run Linux guests", 0), 0u);
  } else {
    EXPECT_FALSE(v.sentence.empty());
  }
}

TEST(KvmSelfTest, MissingDeviceIsAClearVerdict) {
  SelfTestVerdict v = run_kvm_self_test("/nonexistent/kvm");
  EXPECT_FALSE(v.can_run_linux);
  EXPECT_NE(v.sentence.find("open /nonexistent/kvm"), std::string::npos) << v.sentence;
}

}  // namespace
}  // namespace kiln::vmm

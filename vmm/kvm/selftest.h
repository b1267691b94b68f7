// KVM self-test: can this host's /dev/kvm run a Linux guest? Runs a tiny guest that enters
// long mode, drops to CPL3 and issues SYSCALL, and checks that the handler runs at CPL0.
#pragma once

#include <string>

namespace kiln::vmm {

struct SelfTestVerdict {
  bool can_run_linux = false;
  std::string sentence;  // one sentence, with the reason
};

SelfTestVerdict run_kvm_self_test(const char* kvm_path = "/dev/kvm");

}  // namespace kiln::vmm

// kiln-vmm entry point: parses flags and hands over to the VMM library.
#include <cstdio>
#include <cstring>

#include "vmm/kvm/selftest.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--self-test") == 0) {
      kiln::vmm::SelfTestVerdict v = kiln::vmm::run_kvm_self_test();
      std::printf("%s\n", v.sentence.c_str());
      return v.can_run_linux ? 0 : 1;
    }
  }
  std::fprintf(stderr, "usage: kiln-vmm --self-test\n");
  return 2;
}

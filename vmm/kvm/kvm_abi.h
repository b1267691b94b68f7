// C-layout mirrors of KVM's variable-length structs and the ioctl numbers that encode their size.
// Debian's uapi headers declare flexible arrays with __DECLARE_FLEX_ARRAY, which in C++ adds a
// 1-byte empty struct: the arrays move and sizeof() changes, so the header's own ioctl numbers
// (e.g. KVM_GET_SUPPORTED_CPUID) are wrong in C++ and the kernel answers EINVAL.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

namespace kiln::vmm::abi {

struct Cpuid2 {
  uint32_t nent;
  uint32_t padding;
  kvm_cpuid_entry2 entries[];
};
struct Msrs {
  uint32_t nmsrs;
  uint32_t pad;
  kvm_msr_entry entries[];
};
struct MsrList {
  uint32_t nmsrs;
  uint32_t indices[];
};
struct IrqRouting {
  uint32_t nr;
  uint32_t flags;
  kvm_irq_routing_entry entries[];
};
struct Xsave {
  uint32_t region[1024];
};

static_assert(offsetof(Cpuid2, entries) == 8 && sizeof(Cpuid2) == 8);
static_assert(offsetof(Msrs, entries) == 8 && sizeof(Msrs) == 8);
static_assert(offsetof(MsrList, indices) == 4 && sizeof(MsrList) == 4);
static_assert(offsetof(IrqRouting, entries) == 8 && sizeof(IrqRouting) == 8);
static_assert(sizeof(Xsave) == 4096);

inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrList);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, Msrs);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, Msrs);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2);
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, Cpuid2);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRouting);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);

}  // namespace kiln::vmm::abi

// MappedRegion implementation.
#include "common/mapped_region.h"

namespace kiln {

Result<MappedRegion> MappedRegion::anonymous(size_t size, int prot, int extra_flags) {
  void* p = ::mmap(nullptr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (p == MAP_FAILED) return errno_error("mmap anonymous");
  return MappedRegion(p, size);
}

Result<MappedRegion> MappedRegion::of_fd(int fd, size_t size, int prot, int flags, off_t offset) {
  void* p = ::mmap(nullptr, size, prot, flags, fd, offset);
  if (p == MAP_FAILED) return errno_error("mmap fd");
  return MappedRegion(p, size);
}

void MappedRegion::reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

}  // namespace kiln

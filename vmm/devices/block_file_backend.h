// FileBlockBackend: a raw image file (or host block device), read and written synchronously with
// pread/pwrite on the calling thread, straight into guest buffers.
#pragma once

#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "vmm/devices/block_backend.h"

namespace kiln::vmm::devices {

class FileBlockBackend : public BlockBackend {
 public:
  static Result<std::unique_ptr<FileBlockBackend>> open(const std::string& path, bool read_only);

  uint64_t size_bytes() const override { return size_; }
  bool read_only() const override { return read_only_; }
  bool synchronous() const override { return true; }
  std::optional<bool> submit(BlockIo io) override;

 private:
  FileBlockBackend(UniqueFd fd, uint64_t size, bool read_only)
      : fd_(std::move(fd)), size_(size), read_only_(read_only) {}

  const UniqueFd fd_;
  const uint64_t size_;
  const bool read_only_;
};

}  // namespace kiln::vmm::devices

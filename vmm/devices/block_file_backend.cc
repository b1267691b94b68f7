// FileBlockBackend implementation.
#include "vmm/devices/block_file_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/io.h"
#include "vmm/devices/block_request.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm::devices {

Result<std::unique_ptr<FileBlockBackend>> FileBlockBackend::open(const std::string& path, bool read_only) {
  UniqueFd fd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd) return errno_error("virtio-blk: open " + path);
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return errno_error("virtio-blk: size of " + path);
  if (size % kSectorSize != 0) {
    KILN_LOG_WARN("virtio-blk: %s is not a multiple of 512 bytes; the tail is not visible", path.c_str());
  }
  return std::unique_ptr<FileBlockBackend>(new FileBlockBackend(std::move(fd), static_cast<uint64_t>(size), read_only));
}

std::optional<bool> FileBlockBackend::submit(BlockIo io) {
  if (io.op == BlockOp::kFlush) return read_only_ || ::fdatasync(fd_.get()) == 0;
  uint64_t off = io.offset;
  for (auto b : io.bufs) {
    Status st = io.op == BlockOp::kRead ? io::pread_all(fd_.get(), b.data(), b.size(), off, "the disk image")
                                        : io::pwrite_all(fd_.get(), b.data(), b.size(), off, "the disk image");
    if (!st.ok()) {
      KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: %s at %llu failed: %s",
                     io.op == BlockOp::kRead ? "read" : "write", static_cast<unsigned long long>(off),
                     st.error().message.c_str());
      return false;
    }
    off += b.size();
  }
  return true;
}

}  // namespace kiln::vmm::devices

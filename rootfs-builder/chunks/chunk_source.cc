// FileChunkSource: frames read from a local chunk-data file.
#include "rootfs-builder/chunks/chunk_source.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "common/io.h"

namespace kiln::rootfs::chunks {

Result<std::unique_ptr<FileChunkSource>> FileChunkSource::open(const std::string& data_path) {
  UniqueFd fd(::open(data_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error("opening chunk data " + data_path + ": " + std::strerror(errno));
  return std::unique_ptr<FileChunkSource>(new FileChunkSource(std::move(fd), data_path));
}

Result<std::string> FileChunkSource::fetch_frame(const ChunkEntry& entry) {
  if (entry.zero()) return make_error("a zero chunk has no frame to read");
  std::string frame(entry.length, '\0');
  KILN_TRY(io::pread_all(fd_.get(), frame.data(), frame.size(), entry.offset, path_));
  return frame;
}

}  // namespace kiln::rootfs::chunks

// ChunkSource: where the compressed frame of a stored chunk comes from, before the verifier
// (chunk_verifier.h) turns it into bytes: the chunk-data file of a local `kiln-rootfs chunk`
// output, or the chunk data blob of the image's artifact in its registry (HTTP Range reads).
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::rootfs::chunks {

class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // The `entry.length` bytes at `entry.offset` of the data blob, unverified (the caller runs
  // verify_chunk). Thread-safe; a remote source bounds its own wait and errs when it runs out.
  virtual Result<std::string> fetch_frame(const ChunkEntry& entry) = 0;
  // What the source is, for errors and logs ("registry host/name@sha256:...", a path).
  virtual std::string describe() const = 0;
};

// A local chunk-data file (pread; no state besides the fd, so thread-safe).
class FileChunkSource : public ChunkSource {
 public:
  static Result<std::unique_ptr<FileChunkSource>> open(const std::string& data_path);
  Result<std::string> fetch_frame(const ChunkEntry& entry) override;
  std::string describe() const override { return path_; }

 private:
  FileChunkSource(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  const UniqueFd fd_;
  const std::string path_;
};

}  // namespace kiln::rootfs::chunks

// Content-addressed blob store: DIR/sha256/<hex>. Blobs become visible only after their size
// and sha256 were verified (written to DIR/tmp, verified, fsynced, renamed into place).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "rootfs-builder/digest/digest.h"

namespace kiln::rootfs {

class BlobStore;

// One blob being written. Destroying it without a successful commit removes the temp file.
class BlobWriter {
 public:
  BlobWriter() = default;
  ~BlobWriter();
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Fails as soon as more bytes arrive than the expected size.
  Status write(const void* data, size_t len);
  uint64_t written() const { return written_; }

 private:
  friend class BlobStore;
  void discard();

  UniqueFd fd_;
  std::string tmp_path_;
  std::unique_ptr<Sha256> hash_;
  uint64_t written_ = 0;
  std::optional<Digest> expected_digest_;
  std::optional<uint64_t> expected_size_;
};

class BlobStore {
 public:
  static Result<BlobStore> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string path(const Digest& d) const { return dir_ + "/sha256/" + d.hex; }
  bool has(const Digest& d) const;

  // Expected digest/size are checked at commit (size also while writing). Without an expected
  // digest the computed one names the blob (used for docker-archive layers, which carry none).
  Result<BlobWriter> begin(std::optional<Digest> expected, std::optional<uint64_t> expected_size);
  Result<Digest> commit(BlobWriter&& w);

  // Copies a local file (or an open fd, read from offset 0) into the store, verifying it.
  Result<Digest> import_file(const std::string& src, std::optional<Digest> expected,
                             std::optional<uint64_t> expected_size);
  Result<Digest> import_fd(int fd, std::optional<Digest> expected, std::optional<uint64_t> expected_size);

  // Reads a stored blob whole; refuses blobs over max_size (documents are small).
  Result<std::string> read(const Digest& d, size_t max_size) const;

 private:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Reads a whole (small) file with a size cap, like io::read_file but a pipe is accepted too
// (an --authfile may be <(...)).
Result<std::string> read_file_capped(const std::string& path, size_t max_size);

}  // namespace kiln::rootfs

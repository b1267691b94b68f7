// TreeBuilder: applies OCI layer tarballs in order onto a directory (image-spec layer.md:
// changesets, whiteouts ".wh.NAME", opaque ".wh..wh..opq") without ever writing or resolving
// outside it. Hostile layers fail with an error; the tree is then discarded by the caller.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "rootfs-builder/digest/digest.h"

struct archive;
struct archive_entry;

namespace kiln::rootfs {

struct LayerStream;

struct UnpackLimits {
  uint64_t max_total_bytes = 64ull << 30;  // sum of file sizes over all layers
  uint64_t max_entries = 2'000'000;        // tar entries over all layers
  size_t max_path = 4096;                  // bytes in an entry's path or link target
  uint64_t max_ratio = 1000;               // decompressed : compressed bytes of a layer
  uint64_t ratio_grace_bytes = 64 << 20;   // the ratio applies past this many output bytes
};

struct UnpackStats {
  uint64_t entries = 0;
  uint64_t file_bytes = 0;      // logical sizes of regular files written
  uint64_t stream_bytes = 0;    // decompressed tar bytes read
  uint64_t dirs = 0;
};

class TreeBuilder {
 public:
  // root_dir must exist and be empty; it becomes the image's "/".
  static Result<TreeBuilder> create(const std::string& root_dir, UnpackLimits limits);
  TreeBuilder(TreeBuilder&&) = default;
  TreeBuilder& operator=(TreeBuilder&&) = default;

  // Applies one layer read from fd (tar, optionally gzip or zstd compressed; detected from
  // the bytes). Returns the layer's diff_id: sha256 of the uncompressed tar stream.
  // progress(compressed_bytes_read) is called now and then. With `blob`, the compressed bytes
  // are also checked against that size and digest (for blobs read in place, not from the
  // verified store); a mismatch fails the layer.
  struct BlobCheck {
    Digest digest;
    uint64_t size = 0;
  };
  Result<Digest> apply_layer(int fd, const std::function<void(uint64_t)>& progress = {},
                             const BlobCheck* blob = nullptr);

  // Sets directory timestamps last (creating children changes them). Call once at the end.
  Status finish();

  const UnpackStats& stats() const { return stats_; }

 private:
  TreeBuilder(UniqueFd root, UnpackLimits limits) : root_(std::move(root)), limits_(limits) {}

  Result<Digest> read_layer(LayerStream& s);
  Status apply_entry(archive* a, archive_entry* e);
  Result<int> parent_dir(const std::vector<std::string>& comps);  // borrowed fd
  Status whiteout(const std::vector<std::string>& parent, const std::string& victim);
  Status opaque(const std::vector<std::string>& dir);
  Status prune_lower(int dirfd, const std::string& prefix, int depth);
  Status write_regular(archive* a, archive_entry* e, int parent, const std::string& name);
  Status set_metadata_fd(int fd, archive_entry* e);
  void invalidate_cache();

  UniqueFd root_;
  UnpackLimits limits_;
  UnpackStats stats_;
  std::unordered_set<std::string> layer_paths_;  // paths written by the current layer
  std::map<std::string, std::pair<int64_t, long>> dir_times_;  // path -> mtime (sec, nsec)
  std::string cached_parent_path_;
  UniqueFd cached_parent_;
  bool have_cache_ = false;
  bool is_root_user_ = false;
};

// Lexically cleans a tar entry path into components: drops "." and empty parts, rejects
// absolute paths, "..", NUL and over-long paths/components.
Result<std::vector<std::string>> clean_entry_path(std::string_view raw, size_t max_path);

// Removes a file or directory tree relative to dirfd without following symlinks.
Status remove_tree_at(int dirfd, const std::string& name);

}  // namespace kiln::rootfs

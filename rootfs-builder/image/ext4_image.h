// Turns an unpacked tree into a read-only ext4 image with `mkfs.ext4 -d`, sized to the content
// plus headroom and byte-for-byte reproducible for the same tree and seed.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace kiln::rootfs {

struct TreeUsage {
  uint64_t bytes = 0;   // file and directory data, rounded up to 4 KiB blocks
  uint64_t inodes = 0;  // every entry
};

Result<TreeUsage> measure_tree(const std::string& dir);

struct Ext4Options {
  std::string seed;          // e.g. the manifest digest: derives UUID and directory hash seed
  uint64_t fixed_time = 1;   // every filesystem timestamp not taken from the tree
};

// Builds out_path (replaced) from dir.
Status make_ext4(const std::string& dir, const std::string& out_path, const Ext4Options& opts);

// mkfs.ext4 -d copies each source inode's ctime (which no one can set) and atime (which reading
// the tree, mke2fs included, updates); this rewrites every in-use inode's i_ctime to `time` and
// its i_atime to its i_mtime (ext4 disk layout: superblock, group descriptors, inode table).
// Requires an image without metadata_csum (make_ext4 builds those).
Status normalize_ext4_times(const std::string& image_path, uint32_t time);

// Copies a (sparse) file, cloning when the filesystem allows; writes to dst atomically.
Status copy_file_sparse(const std::string& src, const std::string& dst);

}  // namespace kiln::rootfs

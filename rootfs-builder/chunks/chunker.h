// The chunker: cuts an image file (kiln-rootfs's reproducible ext4) into fixed-size chunks,
// compresses each stored chunk as one zstd frame into the chunk data blob and builds the chunk
// index. Zero chunks are not stored, a repeated chunk is stored once; streaming (one chunk in
// memory at a time), single-threaded zstd, so the same file gives the same bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::rootfs::chunks {

// zstd level 3 (zstd's default): see the README's measurements for the choice.
inline constexpr int kDefaultZstdLevel = 3;

struct ChunkOptions {
  uint32_t chunk_size = kDefaultChunkSize;
  int zstd_level = kDefaultZstdLevel;  // 1..19
};

struct ChunkStats {
  uint64_t chunks = 0;
  uint64_t zero_chunks = 0;
  uint64_t repeated_chunks = 0;  // stored once, pointed at again
  uint64_t stored_chunks = 0;  // distinct frames in the data blob
};

struct ChunkedImage {
  ChunkIndex index;
  std::string index_bytes;  // encode(index)
  Digest index_digest;  // what a function pins
  ChunkStats stats;
};

// Receives the data blob in order, one frame per call.
using FrameSink = std::function<Status(std::string_view frame)>;

// Chunks the regular file open at `image_fd` (read with pread, from byte 0 to its size).
Result<ChunkedImage> chunk_image(int image_fd, const ChunkOptions& options, const FrameSink& sink);

// The files `kiln-rootfs chunk` writes into an output directory.
inline constexpr std::string_view kIndexFileName = "chunk-index";
inline constexpr std::string_view kDataFileName = "chunk-data";

// Chunks `image_path` into OUT_DIR/chunk-data and OUT_DIR/chunk-index (created if missing),
// each written atomically, the index last.
Result<ChunkedImage> chunk_image_file(const std::string& image_path, const std::string& out_dir,
                                      const ChunkOptions& options);

}  // namespace kiln::rootfs::chunks

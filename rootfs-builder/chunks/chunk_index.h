// The chunk index of a chunked block image: which fixed-size chunks of an ext4 image are zero,
// and for each stored one the SHA-256 of its uncompressed bytes and where its zstd frame lies in
// the chunk data blob. A binary format with exactly one encoding per index, so the SHA-256 of
// the encoded bytes (index_digest) is what a function pins. Layout: rootfs-builder/README.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "rootfs-builder/digest/digest.h"

namespace kiln::rootfs::chunks {

inline constexpr char kIndexMagic[8] = {'K', 'I', 'L', 'N', 'C', 'H', 'I', 'X'};
inline constexpr uint32_t kIndexVersion = 1;
inline constexpr uint32_t kCompressionZstd = 1;  // the only compression of version 1
inline constexpr size_t kHeaderBytes = 48;
inline constexpr size_t kEntryBytes = 48;

inline constexpr uint32_t kDefaultChunkSize = 512 * 1024;
inline constexpr uint32_t kMinChunkSize = 4 * 1024;  // a power of two in [min, max]
inline constexpr uint32_t kMaxChunkSize = 16 * 1024 * 1024;
inline constexpr uint64_t kMaxImageSize = 1ull << 40;  // 1 TiB
inline constexpr size_t kMaxIndexBytes = 64ull << 20;  // ~1.4 M chunks

using RawSha256 = std::array<uint8_t, 32>;

// A chunk is either zero (not stored: all of its bytes are 0) or stored as one zstd frame at
// [offset, offset + length) of the data blob.
struct ChunkEntry {
  RawSha256 sha256{};  // of the uncompressed bytes; all zero for a zero chunk
  uint64_t offset = 0;
  uint32_t length = 0;  // compressed bytes; 0 = zero chunk

  bool zero() const { return length == 0; }
  bool operator==(const ChunkEntry&) const = default;
};

struct ChunkIndex {
  uint32_t chunk_size = kDefaultChunkSize;
  uint64_t image_size = 0;
  uint64_t data_size = 0;  // bytes of the chunk data blob
  std::vector<ChunkEntry> entries;  // one per chunk, in image order

  // Uncompressed bytes of chunk i < entries.size(): chunk_size, the remainder for the last chunk.
  uint32_t chunk_length(uint64_t i) const;
  bool operator==(const ChunkIndex&) const = default;
};

// A power of two in [kMinChunkSize, kMaxChunkSize].
bool valid_chunk_size(uint32_t chunk_size);
// ceil(image_size / chunk_size).
uint64_t chunk_count(uint64_t image_size, uint32_t chunk_size);
// The largest zstd frame a chunk of `chunk_size` bytes may take (ZSTD_compressBound).
uint64_t max_frame_bytes(uint32_t chunk_size);
// The SHA-256 of `len` zero bytes (what a stored chunk may never hash to: zero chunks are not stored).
RawSha256 zero_chunk_sha256(uint32_t len);

RawSha256 raw_sha256(std::string_view data);
RawSha256 raw_of(const Digest& digest);
Digest digest_of(const RawSha256& raw);

// The canonical bytes of a valid index (the chunker's output; encode(parse(b)) == b).
std::string encode(const ChunkIndex& index);
// The pinned digest: sha256 of encode(index).
Digest index_digest(std::string_view encoded);

// Strict parse of untrusted bytes (a registry, a cache). Every rule of the format is checked
// and a violation is an error naming it:
//  - "bad magic", "unsupported version N", "unsupported compression N", "reserved field ... not zero"
//  - "truncated: ..." / "N trailing bytes" (length != header + count * entry size)
//  - "chunk size N ..." (not a power of two in [4 KiB, 16 MiB]), "image size ..." (0 or over 1 TiB)
//  - "chunk count N disagrees with image size ..."; "index of N bytes exceeds ..."
//  - per chunk i: "chunk i: zero chunk with non-zero fields", "chunk i: length N over bound M",
//    "chunk i: digest of an all-zero chunk (zero chunks are not stored)",
//    "chunk i: offset N overlaps" / "leaves a gap" / "out of range", "chunk i: repeats ... with
//    another offset" (a repeated content must point at its first copy)
//  - "data size N disagrees with the stored chunks (M)".
Result<ChunkIndex> parse(std::string_view bytes);

}  // namespace kiln::rootfs::chunks

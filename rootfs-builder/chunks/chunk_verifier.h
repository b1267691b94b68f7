// The verifier: turns one chunk's compressed bytes, as fetched from anywhere, into its
// uncompressed bytes only if they are exactly what the (parsed, pinned) index says: one zstd
// frame of the right size whose content hashes to the chunk's SHA-256. Decompression never
// produces more than the chunk's length, so a hostile frame cannot inflate (no zip bomb).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::rootfs::chunks {

// Errors: "chunk i: out of range", "chunk i: is a zero chunk (nothing stored)",
// "chunk i: N compressed bytes, the index says M", "chunk i: frame declares N bytes, want M",
// "chunk i: zstd: ..." (corrupt, or larger than the chunk), "chunk i: decompresses to N bytes,
// want M", "chunk i: digest sha256:... does not match the index (sha256:...)".
Result<std::string> verify_chunk(const ChunkIndex& index, uint64_t i, std::string_view compressed);

// Chunk i's uncompressed bytes from the whole data blob (zero chunks are synthesised); the
// reader of a local copy and of the tests.
Result<std::string> read_chunk(const ChunkIndex& index, uint64_t i, std::string_view data_blob);

}  // namespace kiln::rootfs::chunks

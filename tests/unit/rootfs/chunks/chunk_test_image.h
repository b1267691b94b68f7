// Test images for the chunk tests: deterministic bytes with every kind of chunk (random,
// zero, a repeat, compressible text, a short last chunk), chunked in memory.
#pragma once

#include <cstdint>
#include <string>

#include "rootfs-builder/chunks/chunker.h"

namespace kiln::rootfs::chunks::testing {

inline constexpr uint32_t kSmallChunk = 4096;

// `n` pseudo-random bytes from `seed` (xorshift64: the same bytes on every run).
std::string random_bytes(uint64_t seed, size_t n);

// Chunks of kSmallChunk: 0 random, 1 zero, 2 = chunk 0 again, 3 text, 4 random, 5 zero,
// then 1000 random bytes (a short last chunk).
std::string mixed_image();

struct Chunked {
  ChunkedImage image;
  std::string data;  // the data blob the sink received
};

// Writes `content` to a temp file and chunks it; fails the test (ADD_FAILURE) on an error.
Chunked chunk_bytes(const std::string& content, const ChunkOptions& options = {.chunk_size = kSmallChunk});

}  // namespace kiln::rootfs::chunks::testing

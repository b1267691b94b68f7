// The verifier: a chunk's bytes come back only if they are exactly what the index pins; a
// flipped byte anywhere in a frame, a wrong length and an inflating frame are refused.
#include "rootfs-builder/chunks/chunk_verifier.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include "tests/unit/rootfs/chunks/chunk_test_image.h"

namespace kiln::rootfs::chunks {
namespace {

using testing::chunk_bytes;
using testing::kSmallChunk;
using testing::mixed_image;

std::string frame_of(const testing::Chunked& c, uint64_t i) {
  const ChunkEntry& e = c.image.index.entries[i];
  return c.data.substr(e.offset, e.length);
}

std::string error_of(const Result<std::string>& r) { return r.ok() ? std::string() : r.error().message; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(RootfsChunkVerifier, EveryFlippedByteIsRefused) {
  auto c = chunk_bytes(mixed_image());
  for (uint64_t i : {0u, 3u, 6u}) {  // random, text, the short last chunk
    const std::string frame = frame_of(c, i);
    ASSERT_TRUE(verify_chunk(c.image.index, i, frame).ok());
    for (size_t pos = 0; pos < frame.size(); ++pos) {
      std::string bad = frame;
      bad[pos] = static_cast<char>(bad[pos] ^ 0xff);
      EXPECT_FALSE(verify_chunk(c.image.index, i, bad).ok()) << "chunk " << i << " byte " << pos;
    }
  }
  // A flip that keeps the frame valid (a raw block's literal) is caught by the digest.
  std::string bad = frame_of(c, 0);
  bad[bad.size() - 1] ^= 1;
  EXPECT_TRUE(contains(error_of(verify_chunk(c.image.index, 0, bad)), "does not match the index"));
}

TEST(RootfsChunkVerifier, RefusesWrongLengthsAndChunks) {
  auto c = chunk_bytes(mixed_image());
  const ChunkIndex& index = c.image.index;
  const std::string frame = frame_of(c, 3);
  EXPECT_TRUE(contains(error_of(verify_chunk(index, 3, frame + "x")), "compressed bytes, the index says"));
  EXPECT_TRUE(contains(error_of(verify_chunk(index, 3, frame.substr(1))), "compressed bytes, the index says"));
  EXPECT_TRUE(contains(error_of(verify_chunk(index, 1, "")), "zero chunk"));
  EXPECT_TRUE(contains(error_of(verify_chunk(index, 7, frame)), "out of range"));
  // Chunk 0's valid frame where chunk 4 is expected: same size class, other content.
  ChunkIndex swapped = index;
  swapped.entries[4].length = index.entries[0].length;
  EXPECT_TRUE(contains(error_of(verify_chunk(swapped, 4, frame_of(c, 0))), "does not match the index"));
  // The data blob reader refuses an entry past its end.
  EXPECT_TRUE(contains(error_of(read_chunk(index, 6, c.data.substr(0, c.data.size() - 1))), "past the end"));
  EXPECT_EQ(*read_chunk(index, 5, c.data), std::string(kSmallChunk, '\0'));
}

// One zstd frame of `n` zero bytes, with or without the content size in its header.
std::string zero_frame(size_t n, bool with_size) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, with_size ? 1 : 0);
  if (with_size) ZSTD_CCtx_setPledgedSrcSize(cctx.get(), n);
  static const std::string kZeros(1 << 20, '\0');
  std::string out;
  std::string buf(ZSTD_CStreamOutSize(), '\0');
  for (size_t done = 0; done <= n;) {
    const size_t take = std::min(kZeros.size(), n - done);
    ZSTD_inBuffer in{kZeros.data(), take, 0};
    const bool last = done + take == n;
    for (;;) {
      ZSTD_outBuffer o{buf.data(), buf.size(), 0};
      const size_t left = ZSTD_compressStream2(cctx.get(), &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
      EXPECT_FALSE(ZSTD_isError(left));
      out.append(buf.data(), o.pos);
      if (last ? left == 0 : in.pos == in.size) break;
    }
    done += take;
    if (last) break;
  }
  return out;
}

// An index of one chunk of kSmallChunk bytes whose frame is `frame` (the digest is arbitrary:
// the size checks come first).
ChunkIndex one_chunk(const std::string& frame) {
  ChunkIndex index;
  index.chunk_size = kSmallChunk;
  index.image_size = kSmallChunk;
  index.data_size = frame.size();
  index.entries.push_back({raw_sha256("x"), 0, static_cast<uint32_t>(frame.size())});
  return index;
}

TEST(RootfsChunkVerifier, DecompressionIsBounded) {
  // 256 MiB of zeros in a few KiB: refused from the declared size, before any output.
  const std::string declared = zero_frame(256u << 20, true);
  ASSERT_LT(declared.size(), 64u * 1024);
  EXPECT_TRUE(contains(error_of(verify_chunk(one_chunk(declared), 0, declared)), "frame declares 268435456 bytes"));
  // The same without a declared size: decompression stops at the chunk's length.
  const std::string undeclared = zero_frame(256u << 20, false);
  EXPECT_TRUE(contains(error_of(verify_chunk(one_chunk(undeclared), 0, undeclared)), "zstd: Destination buffer is too small"));
  // One byte more than the chunk, and one byte less.
  const std::string over = zero_frame(kSmallChunk + 1, false);
  EXPECT_TRUE(contains(error_of(verify_chunk(one_chunk(over), 0, over)), "zstd: Destination buffer is too small"));
  const std::string under = zero_frame(kSmallChunk - 1, false);
  EXPECT_TRUE(contains(error_of(verify_chunk(one_chunk(under), 0, under)), "decompresses to 4095 bytes, want 4096"));
  // Two frames back to back that together exceed the chunk.
  const std::string two = zero_frame(kSmallChunk, false) + zero_frame(kSmallChunk, false);
  EXPECT_TRUE(contains(error_of(verify_chunk(one_chunk(two), 0, two)), "zstd: "));
  // Not zstd at all.
  EXPECT_TRUE(contains(error_of(verify_chunk(one_chunk("garbage!"), 0, "garbage!")), "not a zstd frame"));
}

}  // namespace
}  // namespace kiln::rootfs::chunks

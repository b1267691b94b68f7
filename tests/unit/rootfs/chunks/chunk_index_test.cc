// The chunk index format: canonical encoding (encode(parse(b)) == b) and a strict parse that
// names each broken rule of hostile input.
#include "rootfs-builder/chunks/chunk_index.h"

#include <gtest/gtest.h>

#include "tests/unit/rootfs/chunks/chunk_test_image.h"

namespace kiln::rootfs::chunks {
namespace {

using testing::chunk_bytes;
using testing::kSmallChunk;
using testing::mixed_image;

void put_le(std::string& b, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

std::string error_of(std::string_view bytes) {
  auto r = parse(bytes);
  return r.ok() ? std::string("parsed") : r.error().message;
}

// The chunker's index of mixed_image(): stored 0 (repeated as 2), zero 1 and 5, stored 3, 4, 6.
ChunkIndex valid() { return chunk_bytes(mixed_image()).image.index; }

// Entry field offsets (chunk_index.cc).
size_t entry_at(uint64_t i) { return kHeaderBytes + i * kEntryBytes; }

TEST(RootfsChunkIndex, CanonicalRoundTrip) {
  const ChunkIndex index = valid();
  const std::string bytes = encode(index);
  EXPECT_EQ(bytes.size(), kHeaderBytes + 7 * kEntryBytes);
  EXPECT_EQ(bytes.substr(0, 8), "KILNCHIX");
  auto parsed = parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, index);
  EXPECT_EQ(encode(*parsed), bytes);
  EXPECT_EQ(index_digest(bytes), sha256_of(bytes));
  EXPECT_EQ(digest_of(raw_of(index_digest(bytes))), index_digest(bytes));
}

TEST(RootfsChunkIndex, RefusesBadHeaders) {
  const std::string good = encode(valid());
  auto patched = [&](size_t at, uint64_t v, int bytes) {
    std::string b = good;
    put_le(b, at, v, bytes);
    return error_of(b);
  };
  EXPECT_EQ(patched(0, 'X', 1), "chunk index: bad magic (not a kiln chunk index)");
  EXPECT_EQ(patched(8, 2, 4), "chunk index: unsupported version 2 (this kiln reads version 1)");
  EXPECT_EQ(patched(12, 2, 4), "chunk index: unsupported compression 2 (1 = zstd)");
  EXPECT_EQ(patched(20, 1, 4), "chunk index: reserved header field is not zero");
  EXPECT_EQ(patched(16, 3000, 4), "chunk index: chunk size 3000 is not a power of two in [4 KiB, 16 MiB]");
  EXPECT_EQ(patched(16, 2048, 4), "chunk index: chunk size 2048 is not a power of two in [4 KiB, 16 MiB]");
  EXPECT_EQ(patched(16, 32u << 20, 4), "chunk index: chunk size 33554432 is not a power of two in [4 KiB, 16 MiB]");
  EXPECT_EQ(patched(24, 0, 8), "chunk index: image size 0 is not in [1, 1 TiB]");
  EXPECT_EQ(patched(24, (1ull << 40) + 1, 8), "chunk index: image size 1099511627777 is not in [1, 1 TiB]");
  EXPECT_EQ(patched(32, 8, 8), "chunk index: chunk count 8 disagrees with image size 25576 (7 chunks of 4096)");
  EXPECT_EQ(patched(32, 6, 8), "chunk index: chunk count 6 disagrees with image size 25576 (7 chunks of 4096)");
  EXPECT_EQ(patched(24, 4 * kSmallChunk, 8), "chunk index: chunk count 7 disagrees with image size 16384 (4 chunks of 4096)");
  // A count that matches a huge image: refused by the index size cap, before any allocation.
  std::string huge = good;
  put_le(huge, 24, 1ull << 40, 8);
  put_le(huge, 32, (1ull << 40) / kSmallChunk, 8);
  EXPECT_EQ(error_of(huge), "chunk index: index of 12884901936 bytes exceeds 67108864");
}

TEST(RootfsChunkIndex, RefusesTruncatedAndTrailingBytes) {
  const std::string good = encode(valid());
  EXPECT_EQ(error_of(""), "chunk index: truncated: 0 bytes, the header alone is 48");
  EXPECT_EQ(error_of(good.substr(0, 47)), "chunk index: truncated: 47 bytes, the header alone is 48");
  EXPECT_EQ(error_of(good.substr(0, good.size() - 1)), "chunk index: truncated: 383 bytes, 7 chunks need 384");
  EXPECT_EQ(error_of(good.substr(0, kHeaderBytes)), "chunk index: truncated: 48 bytes, 7 chunks need 384");
  EXPECT_EQ(error_of(good + "x"), "chunk index: 1 trailing bytes");
}

TEST(RootfsChunkIndex, RefusesBadEntries) {
  const ChunkIndex good = valid();
  auto with = [&](auto change) {
    ChunkIndex i = good;
    change(i);
    return error_of(encode(i));
  };
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[1].offset = 5; }), "chunk index: chunk 1: zero chunk with non-zero fields");
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[1].sha256[0] = 1; }),
            "chunk index: chunk 1: zero chunk with non-zero fields");
  const uint64_t bound = max_frame_bytes(kSmallChunk);
  EXPECT_EQ(with([&](ChunkIndex& i) { i.entries[6].length = static_cast<uint32_t>(bound + 1); }),
            "chunk index: chunk 6: length " + std::to_string(bound + 1) + " over bound " + std::to_string(bound));
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[3].sha256 = zero_chunk_sha256(kSmallChunk); }),
            "chunk index: chunk 3: digest of an all-zero chunk (zero chunks are not stored)");
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[6].sha256 = zero_chunk_sha256(1000); }),
            "chunk index: chunk 6: digest of an all-zero chunk (zero chunks are not stored)");
  // Offsets: past the data blob, overlapping an earlier frame, leaving a gap.
  const ChunkEntry& e4 = good.entries[4];
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[6].offset = i.data_size; }),
            "chunk index: chunk 6: offset " + std::to_string(good.data_size) + " + length " +
                std::to_string(good.entries[6].length) + " out of range (data size " + std::to_string(good.data_size) + ")");
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[4].offset -= 1; }),
            "chunk index: chunk 4: offset " + std::to_string(e4.offset - 1) + " overlaps stored data");
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[4].offset += 1; }),
            "chunk index: chunk 4: offset " + std::to_string(e4.offset + 1) + " leaves a gap after " +
                std::to_string(e4.offset));
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[0].offset = 1 << 20; }),
            "chunk index: chunk 0: offset 1048576 + length " + std::to_string(good.entries[0].length) +
                " out of range (data size " + std::to_string(good.data_size) + ")");
  // A repeat must carry its first copy's digest and length.
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[2].sha256[5] ^= 1; }),
            "chunk index: chunk 2: repeats the location of chunk 0 with another digest");
  EXPECT_EQ(with([](ChunkIndex& i) { i.entries[2].length -= 1; }), "chunk index: chunk 2: offset 0 overlaps stored data");
  // The same content stored twice (two first copies) has another encoding: refused.
  ChunkIndex twice;
  twice.chunk_size = kSmallChunk;
  twice.image_size = 2 * kSmallChunk;
  twice.data_size = 20;
  twice.entries = {{raw_sha256("a"), 0, 10}, {raw_sha256("a"), 10, 10}};
  EXPECT_EQ(error_of(encode(twice)),
            "chunk index: content " + digest_of(raw_sha256("a")).str() + " is stored twice (repeats must point at one copy)");
  twice.entries[1].sha256 = raw_sha256("b");
  EXPECT_EQ(error_of(encode(twice)), "parsed");
  EXPECT_EQ(with([](ChunkIndex& i) { i.data_size += 1; }),
            "chunk index: data size " + std::to_string(good.data_size + 1) + " disagrees with the stored chunks (" +
                std::to_string(good.data_size) + ")");
  std::string reserved = encode(good);
  put_le(reserved, entry_at(3) + 44, 7, 4);
  EXPECT_EQ(error_of(reserved), "chunk index: chunk 3: reserved field is not zero");
}

TEST(RootfsChunkIndex, SmallestAndLargestValidIndexes) {
  ChunkIndex one;
  one.chunk_size = kMinChunkSize;
  one.image_size = 1;
  one.entries.resize(1);
  auto parsed = parse(encode(one));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->chunk_length(0), 1u);
  // 1 TiB of zero chunks of 16 MiB: 65536 entries, all zero, no data.
  ChunkIndex big;
  big.chunk_size = kMaxChunkSize;
  big.image_size = kMaxImageSize;
  big.entries.resize(kMaxImageSize / kMaxChunkSize);
  parsed = parse(encode(big));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->entries.size(), 65536u);
}

}  // namespace
}  // namespace kiln::rootfs::chunks

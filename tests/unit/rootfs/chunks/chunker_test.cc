// The chunker: deterministic output, zero chunks not stored, repeats stored once, and a round
// trip in which every chunk verifies and the chunks reassemble to the original image.
#include "rootfs-builder/chunks/chunker.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/unique_fd.h"
#include "rootfs-builder/chunks/chunk_verifier.h"
#include "tests/unit/rootfs/chunks/chunk_test_image.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs::chunks {
namespace {

using rootfs::testing::TempDir;
using testing::chunk_bytes;
using testing::kSmallChunk;
using testing::mixed_image;
using testing::random_bytes;

std::string reassemble(const ChunkIndex& index, const std::string& data) {
  std::string out;
  for (uint64_t i = 0; i < index.entries.size(); ++i) {
    auto c = read_chunk(index, i, data);
    EXPECT_TRUE(c.ok()) << c.error().message;
    if (!c.ok()) return {};
    out += *c;
  }
  return out;
}

TEST(RootfsChunker, SameImageGivesSameBytesAndDigest) {
  const std::string image = mixed_image();
  auto a = chunk_bytes(image);
  auto b = chunk_bytes(image);
  EXPECT_EQ(a.image.index_bytes, b.image.index_bytes);
  EXPECT_EQ(a.image.index_digest, b.image.index_digest);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.image.index_digest, index_digest(a.image.index_bytes));
  // One byte more of content changes the pinned digest.
  std::string changed = image;
  changed[100] ^= 1;
  EXPECT_NE(chunk_bytes(changed).image.index_digest, a.image.index_digest);
}

TEST(RootfsChunker, FilesWrittenTwiceAreIdentical) {
  TempDir t;
  rootfs::testing::write_file(t / "image.ext4", mixed_image() + random_bytes(9, 3 << 20));
  auto a = chunk_image_file(t / "image.ext4", t / "a", {});
  auto b = chunk_image_file(t / "image.ext4", t / "b/nested", {});
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->index.chunk_size, kDefaultChunkSize);
  EXPECT_EQ(a->index_digest, b->index_digest);
  const std::string index = rootfs::testing::read_file(t / "a/chunk-index");
  EXPECT_EQ(index, a->index_bytes);
  EXPECT_EQ(index, rootfs::testing::read_file(t / "b/nested/chunk-index"));
  const std::string data = rootfs::testing::read_file(t / "a/chunk-data");
  EXPECT_EQ(data, rootfs::testing::read_file(t / "b/nested/chunk-data"));
  EXPECT_EQ(data.size(), a->index.data_size);
  auto parsed = parse(index);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(reassemble(*parsed, data), rootfs::testing::read_file(t / "image.ext4"));
}

TEST(RootfsChunker, ZeroChunksAreNotStored) {
  auto c = chunk_bytes(std::string(8 * kSmallChunk + 10, '\0'));
  EXPECT_EQ(c.image.stats.chunks, 9u);
  EXPECT_EQ(c.image.stats.zero_chunks, 9u);
  EXPECT_EQ(c.image.stats.stored_chunks, 0u);
  EXPECT_EQ(c.image.index.data_size, 0u);
  EXPECT_TRUE(c.data.empty());
  for (const ChunkEntry& e : c.image.index.entries) EXPECT_TRUE(e.zero());
  ASSERT_TRUE(parse(c.image.index_bytes).ok());
  EXPECT_EQ(reassemble(c.image.index, c.data), std::string(8 * kSmallChunk + 10, '\0'));
}

TEST(RootfsChunker, MixedImageRoundTrips) {
  const std::string image = mixed_image();
  auto c = chunk_bytes(image);
  const ChunkIndex& index = c.image.index;
  ASSERT_EQ(index.entries.size(), 7u);
  EXPECT_EQ(c.image.stats.zero_chunks, 2u);
  EXPECT_EQ(c.image.stats.repeated_chunks, 1u);
  EXPECT_EQ(c.image.stats.stored_chunks, 4u);
  EXPECT_TRUE(index.entries[1].zero());
  EXPECT_TRUE(index.entries[5].zero());
  // The repeat points at the first copy; the data blob holds only the distinct frames.
  EXPECT_EQ(index.entries[2], index.entries[0]);
  EXPECT_EQ(index.data_size, c.data.size());
  EXPECT_LT(index.entries[3].length, kSmallChunk / 10) << "text compresses";
  EXPECT_EQ(index.chunk_length(6), 1000u);
  EXPECT_EQ(index.entries[6].sha256, raw_sha256(image.substr(6 * kSmallChunk)));

  auto parsed = parse(c.image.index_bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, index);
  EXPECT_EQ(encode(*parsed), c.image.index_bytes);
  for (uint64_t i = 0; i < index.entries.size(); ++i) {
    if (index.entries[i].zero()) continue;
    const ChunkEntry& e = index.entries[i];
    auto v = verify_chunk(*parsed, i, std::string_view(c.data).substr(e.offset, e.length));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(*v, image.substr(i * kSmallChunk, index.chunk_length(i)));
  }
  EXPECT_EQ(reassemble(*parsed, c.data), image);
}

TEST(RootfsChunker, ChunkSizeAndLevelChangeTheLayoutNotTheContent) {
  const std::string image = mixed_image() + random_bytes(4, 70000);
  auto big = chunk_bytes(image, {.chunk_size = 16384, .zstd_level = 19});
  EXPECT_EQ(big.image.index.entries.size(), chunk_count(image.size(), 16384));
  EXPECT_EQ(reassemble(big.image.index, big.data), image);
  EXPECT_NE(big.image.index_digest, chunk_bytes(image).image.index_digest);
}

TEST(RootfsChunker, RefusesBadOptionsAndInputs) {
  TempDir t;
  rootfs::testing::write_file(t / "image", "x");
  rootfs::testing::write_file(t / "empty", "");
  UniqueFd fd(::open((t / "image").c_str(), O_RDONLY | O_CLOEXEC));
  auto sink = [](std::string_view) { return ok_status(); };
  auto err = [&](const ChunkOptions& o) {
    auto r = chunk_image(fd.get(), o, sink);
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(err({.chunk_size = 3000}).find("power of two"), std::string::npos);
  EXPECT_NE(err({.chunk_size = 2048}).find("power of two"), std::string::npos);
  EXPECT_NE(err({.chunk_size = 32u << 20}).find("power of two"), std::string::npos);
  EXPECT_NE(err({.zstd_level = 0}).find("zstd level"), std::string::npos);
  EXPECT_NE(err({.zstd_level = 20}).find("zstd level"), std::string::npos);
  EXPECT_EQ(err({}), "");

  UniqueFd empty(::open((t / "empty").c_str(), O_RDONLY | O_CLOEXEC));
  auto r = chunk_image(empty.get(), {}, sink);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("image size 0"), std::string::npos);
  UniqueFd dir(::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_FALSE(chunk_image(dir.get(), {}, sink).ok());
  EXPECT_FALSE(chunk_image_file(t / "missing", t / "out", {}).ok());

  // A sink that fails stops the chunker with its error, and nothing is published.
  auto failing = chunk_image(fd.get(), {}, [](std::string_view) { return Status(make_error("disk full")); });
  ASSERT_FALSE(failing.ok());
  EXPECT_EQ(failing.error().message, "disk full");
  EXPECT_FALSE(chunk_image_file(t / "empty", t / "out", {}).ok());
  EXPECT_FALSE(rootfs::testing::exists(t / "out/chunk-index"));
  EXPECT_FALSE(rootfs::testing::exists(t / "out/chunk-data"));
}

}  // namespace
}  // namespace kiln::rootfs::chunks

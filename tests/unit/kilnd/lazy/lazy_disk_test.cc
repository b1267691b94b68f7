// LazyDisk: reads served from chunks fetched on demand equal the image; each chunk is fetched once
// and then comes from the cache (also for a second image sharing it); a chunk whose fetched bytes
// do not match the index fails the read; the first-read order and prefetching.
#include "src/lazy/lazy_disk.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/unit/kilnd/lazy/memory_source.h"
#include "tests/unit/rootfs/chunks/chunk_test_image.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::kilnd::lazy {
namespace {

namespace chunks = rootfs::chunks;
using chunks::testing::kSmallChunk;
using rootfs::testing::TempDir;

using testing::MemorySource;

struct Disk {
  chunks::testing::Chunked chunked;
  std::shared_ptr<MemorySource> source;
  std::unique_ptr<LazyDisk> disk;
};

Disk make_disk(const std::string& content, std::shared_ptr<chunks::ChunkCache> cache) {
  Disk d;
  d.chunked = chunks::testing::chunk_bytes(content);
  d.source = std::make_shared<MemorySource>(d.chunked.data);
  d.disk = std::make_unique<LazyDisk>(d.chunked.image.index, std::move(cache), d.source);
  return d;
}

std::shared_ptr<chunks::ChunkCache> open_cache(const TempDir& dir) {
  auto c = chunks::ChunkCache::open(dir / "cache", 64 << 20);
  EXPECT_TRUE(c.ok());
  return std::shared_ptr<chunks::ChunkCache>(std::move(*c));
}

std::string read(LazyDisk& disk, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  Status st = disk.read(offset, std::span<char>(out.data(), out.size()));
  EXPECT_TRUE(st.ok()) << st.error().message;
  return out;
}

TEST(LazyDisk, ServesTheImageFetchingEachStoredChunkOnce) {
  TempDir dir;
  const std::string image = chunks::testing::mixed_image();
  Disk d = make_disk(image, open_cache(dir));
  EXPECT_EQ(d.disk->size(), image.size());
  EXPECT_EQ(read(*d.disk, 0, image.size()), image);
  // Chunks 0 and 2 are one stored frame, 1 and 5 are zero: 0, 3, 4 and the short last one.
  EXPECT_EQ(d.source->fetches.load(), 4);
  EXPECT_EQ(read(*d.disk, kSmallChunk - 10, 30), image.substr(kSmallChunk - 10, 30));  // across a boundary
  EXPECT_EQ(d.source->fetches.load(), 4);
  EXPECT_EQ(d.disk->stats().chunk_misses, 4u);
  EXPECT_EQ(d.disk->stats().bytes_read, image.size() + 30);
}

TEST(LazyDisk, ASecondImageSharingChunksFindsThemInTheCache) {
  TempDir dir;
  auto cache = open_cache(dir);
  const std::string image = chunks::testing::mixed_image();
  Disk a = make_disk(image, cache);
  EXPECT_EQ(read(*a.disk, 0, image.size()), image);
  std::string other = image;
  other[4 * kSmallChunk + 7] ^= 0x55;  // chunk 4 differs, the rest is shared
  Disk b = make_disk(other, cache);
  EXPECT_EQ(read(*b.disk, 0, other.size()), other);
  EXPECT_EQ(b.source->fetches.load(), 1);
}

TEST(LazyDisk, AChunkThatFailsVerificationFailsTheRead) {
  TempDir dir;
  const std::string image = chunks::testing::mixed_image();
  Disk d = make_disk(image, open_cache(dir));
  std::vector<std::string> reports;
  d.disk->set_error_listener([&](const std::string& text) { reports.push_back(text); });
  const chunks::ChunkEntry& e3 = d.chunked.image.index.entries[3];
  d.source->flip = e3.offset + e3.length / 2;
  std::string out(100, 'q');
  Status st = d.disk->read(3 * kSmallChunk, std::span<char>(out.data(), out.size()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("chunk 3 (sha256:"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("from memory"), std::string::npos);
  EXPECT_EQ(d.disk->stats().fetch_errors, 1u);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("the guest gets an I/O error): chunk 3 (sha256:"), std::string::npos) << reports[0];
  EXPECT_FALSE(d.disk->read(3 * kSmallChunk, std::span<char>(out.data(), out.size())).ok());
  EXPECT_EQ(reports.size(), 1u);  // at most one report a second
  // A later read fetches again and, the registry mended, succeeds.
  d.source->flip = ~0ull;
  EXPECT_EQ(read(*d.disk, 3 * kSmallChunk, 100), image.substr(3 * kSmallChunk, 100));
  d.source->fail = true;  // chunk 4 was never fetched
  EXPECT_FALSE(d.disk->read(4 * kSmallChunk, std::span<char>(out.data(), out.size())).ok());
}

TEST(LazyDisk, RecordsFirstReadsAndPrefetchesAList) {
  TempDir dir;
  const std::string image = chunks::testing::mixed_image();
  Disk d = make_disk(image, open_cache(dir));
  read(*d.disk, 4 * kSmallChunk, 10);
  read(*d.disk, 1 * kSmallChunk, 10);  // zero: not a chunk to fetch
  read(*d.disk, 0, 10);
  read(*d.disk, 4 * kSmallChunk + 100, 10);
  EXPECT_EQ(d.disk->read_order(), (std::vector<uint32_t>{4, 0}));

  TempDir fresh;  // another host: a new cache, the list fetched ahead
  Disk e = make_disk(image, open_cache(fresh));
  std::atomic<bool> stop{false};
  const std::vector<uint32_t> list = d.disk->read_order();
  ASSERT_TRUE(e.disk->prefetch(list, stop).ok());
  EXPECT_EQ(e.source->fetches.load(), 2);
  EXPECT_EQ(e.disk->stats().prefetched, 2u);
  read(*e.disk, 4 * kSmallChunk, 10);
  read(*e.disk, 0, 10);
  EXPECT_EQ(e.source->fetches.load(), 2);  // both came from the cache
  EXPECT_EQ(e.disk->stats().chunk_misses, 0u);
}

TEST(LazyDisk, ConcurrentReadersOfAMissingChunkShareOneFetch) {
  TempDir dir;
  const std::string image = chunks::testing::random_bytes(9, 8 * kSmallChunk);
  Disk d = make_disk(image, open_cache(dir));
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::string out(kSmallChunk, '\0');
      const uint64_t off = static_cast<uint64_t>(t % 2) * kSmallChunk * 4;
      if (d.disk->read(off, std::span<char>(out.data(), out.size())).ok() && out == image.substr(off, kSmallChunk))
        good++;
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(good.load(), 8);
  EXPECT_EQ(d.source->fetches.load(), 2);
}

}  // namespace
}  // namespace kiln::kilnd::lazy

// LazyImages: an image served over NBD from its pinned index (a wrong index refused), its
// first-read list prefetched on another host's cache, pins that keep a running instance's chunks
// through eviction, and stopping.
#include "src/lazy/lazy_images.h"

#include <gtest/gtest.h>
#include <libnbd.h>

#include "tests/unit/kilnd/lazy/memory_source.h"
#include "tests/unit/rootfs/chunks/chunk_test_image.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::kilnd::lazy {
namespace {

namespace chunks = rootfs::chunks;
using chunks::testing::kSmallChunk;
using rootfs::testing::TempDir;

using CountingSource = testing::MemorySource;

std::unique_ptr<LazyImages> open_images(const TempDir& dir, uint64_t cache_bytes = 64 << 20) {
  auto li = LazyImages::open(dir / "lazy", cache_bytes);
  EXPECT_TRUE(li.ok()) << (li.ok() ? "" : li.error().message);
  return li.ok() ? std::move(*li) : nullptr;
}

std::string nbd_read(const std::string& socket, uint64_t offset, size_t len) {
  nbd_handle* h = nbd_create();
  std::string out(len, '\0');
  EXPECT_EQ(nbd_connect_uri(h, nbd_drive_uri(socket).c_str()), 0) << nbd_get_error();
  EXPECT_EQ(nbd_pread(h, out.data(), len, offset, 0), 0) << nbd_get_error();
  nbd_close(h);
  return out;
}

TEST(LazyImages, ServesAnImageOverNbdFromItsPinnedIndex) {
  TempDir dir;
  auto images = open_images(dir);
  const std::string content = chunks::testing::random_bytes(3, 6 * kSmallChunk);
  auto c = chunks::testing::chunk_bytes(content);
  auto source = std::make_shared<CountingSource>(c.data);
  const std::string digest = c.image.index_digest.str();

  auto wrong = images->serve("sha256:" + std::string(64, '0'), c.image.index_bytes, source);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("is not the pinned"), std::string::npos);

  auto socket = images->serve(digest, c.image.index_bytes, source);
  ASSERT_TRUE(socket.ok()) << socket.error().message;
  EXPECT_EQ(*images->serve(digest, c.image.index_bytes, source), *socket);  // once per image
  EXPECT_EQ(nbd_read(*socket, 2 * kSmallChunk + 5, 100), content.substr(2 * kSmallChunk + 5, 100));
  EXPECT_EQ(nbd_read(*socket, 0, 10), content.substr(0, 10));
  EXPECT_EQ(images->read_order(digest), (std::vector<uint32_t>{2, 0}));
  auto stats = images->image_stats(digest);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->image_size, content.size());
  EXPECT_EQ(stats->stored_chunks, 6u);
  EXPECT_EQ(stats->disk.chunk_misses, 2u);
  EXPECT_EQ(stats->nbd_connections, 2u);
  EXPECT_GT(stats->disk.fetched_bytes, 0u);

  images->stop(digest);
  EXPECT_FALSE(rootfs::testing::exists(*socket));
  EXPECT_FALSE(images->image_stats(digest).has_value());
}

TEST(LazyImages, PrefetchesAReadListIntoAFreshCache) {
  TempDir dir, other_host;
  const std::string content = chunks::testing::random_bytes(4, 8 * kSmallChunk);
  auto c = chunks::testing::chunk_bytes(content);
  const std::string digest = c.image.index_digest.str();

  auto first = open_images(dir);
  auto socket = first->serve(digest, c.image.index_bytes, std::make_shared<CountingSource>(c.data));
  ASSERT_TRUE(socket.ok());
  nbd_read(*socket, 5 * kSmallChunk, 10);
  nbd_read(*socket, 1 * kSmallChunk, 10);
  const std::vector<uint32_t> list = first->read_order(digest);

  auto second = open_images(other_host);
  auto source = std::make_shared<CountingSource>(c.data);
  auto socket2 = second->serve(digest, c.image.index_bytes, source);
  ASSERT_TRUE(socket2.ok());
  ASSERT_TRUE(second->prefetch(digest, list));
  second->wait_prefetch(digest);
  EXPECT_EQ(source->fetches.load(), 2);
  EXPECT_EQ(nbd_read(*socket2, 5 * kSmallChunk, 10), content.substr(5 * kSmallChunk, 10));
  EXPECT_EQ(source->fetches.load(), 2);  // from the cache
  EXPECT_EQ(second->image_stats(digest)->disk.prefetched, 2u);
  EXPECT_EQ(second->prefetch_errors(), 0u);
}

TEST(LazyImages, PinsKeepARunningInstancesChunks) {
  TempDir dir;
  auto images = open_images(dir, 4 * kSmallChunk);  // room for four chunks
  const std::string a = chunks::testing::random_bytes(5, 3 * kSmallChunk);
  const std::string b = chunks::testing::random_bytes(6, 3 * kSmallChunk);
  auto ca = chunks::testing::chunk_bytes(a), cb = chunks::testing::chunk_bytes(b);
  auto sa = images->serve(ca.image.index_digest.str(), ca.image.index_bytes, std::make_shared<CountingSource>(ca.data));
  auto sb = images->serve(cb.image.index_digest.str(), cb.image.index_bytes, std::make_shared<CountingSource>(cb.data));
  ASSERT_TRUE(sa.ok() && sb.ok());
  images->pin("instance-a", ca.image.index_digest.str());
  nbd_read(*sa, 0, a.size());  // a's three chunks, pinned
  nbd_read(*sb, 0, b.size());  // b's three: only one fits beside a's
  const auto cache = images->cache_stats();
  EXPECT_EQ(cache.max_bytes, 4u * kSmallChunk);
  EXPECT_LE(cache.cache.bytes, 4u * kSmallChunk);
  EXPECT_EQ(cache.cache.evicted, 2u);  // b's, though a's were used less recently
  images->unpin("instance-a");
  // a's chunks are all still in the cache: a restarted kilnd reads a without fetching.
  images.reset();
  auto again = open_images(dir, 4 * kSmallChunk);
  auto source = std::make_shared<CountingSource>(ca.data);
  auto socket = again->serve(ca.image.index_digest.str(), ca.image.index_bytes, source);
  ASSERT_TRUE(socket.ok());
  EXPECT_EQ(nbd_read(*socket, 0, a.size()), a);
  EXPECT_EQ(source->fetches.load(), 0);
}

}  // namespace
}  // namespace kiln::kilnd::lazy

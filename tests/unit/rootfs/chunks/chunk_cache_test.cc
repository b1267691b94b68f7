// ChunkCache: verified puts, LRU eviction that never drops a pinned chunk, corruption found on
// read, reopening an existing cache, and concurrent misses of one chunk coalesced into one fetch.
#include "rootfs-builder/chunks/chunk_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs::chunks {
namespace {

using rootfs::testing::TempDir;

std::string chunk(char fill, size_t n = 1000) { return std::string(n, fill); }

std::unique_ptr<ChunkCache> open_cache(const TempDir& dir, uint64_t max_bytes) {
  auto c = ChunkCache::open(dir / "cache", max_bytes);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(ChunkCache, StoresOnlyBytesMatchingTheirDigest) {
  TempDir dir;
  auto cache = open_cache(dir, 1 << 20);
  const std::string a = chunk('a');
  EXPECT_FALSE(cache->put(raw_sha256(a), chunk('b')).ok());  // wrong bytes: refused, nothing stored
  EXPECT_EQ(cache->stats().refused, 1u);
  EXPECT_FALSE(cache->get(raw_sha256(a))->has_value());
  ASSERT_TRUE(*cache->put(raw_sha256(a), a));
  auto got = cache->get(raw_sha256(a));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, a);
  EXPECT_EQ(cache->stats().bytes, a.size());
  EXPECT_EQ(cache->stats().hits, 1u);
}

TEST(ChunkCache, EvictsLeastRecentlyUsedButNeverAPinnedChunk) {
  TempDir dir;
  auto cache = open_cache(dir, 3000);  // room for three 1000-byte chunks
  const std::string a = chunk('a'), b = chunk('b'), c = chunk('c'), d = chunk('d'), e = chunk('e');
  for (const std::string* x : {&a, &b, &c}) ASSERT_TRUE(*cache->put(raw_sha256(*x), *x));
  cache->pin("instance-1", {raw_sha256(a)});  // a is the least recent, but in use
  ASSERT_TRUE(cache->get(raw_sha256(b))->has_value());  // b now more recent than c
  ASSERT_TRUE(*cache->put(raw_sha256(d), d));  // evicts c: a is pinned, b was used since
  EXPECT_TRUE(cache->get(raw_sha256(a))->has_value());
  EXPECT_TRUE(cache->get(raw_sha256(b))->has_value());
  EXPECT_FALSE(cache->get(raw_sha256(c))->has_value());
  EXPECT_EQ(cache->stats().evicted, 1u);
  // Everything pinned: a new chunk is not stored (the caller still serves its bytes).
  cache->pin("instance-2", {raw_sha256(b), raw_sha256(d)});
  EXPECT_FALSE(*cache->put(raw_sha256(e), e));
  EXPECT_EQ(cache->stats().not_stored, 1u);
  EXPECT_EQ(cache->stats().bytes, 3000u);
  // Unpinned, the chunks can go again.
  cache->unpin("instance-1");
  cache->unpin("instance-2");
  ASSERT_TRUE(*cache->put(raw_sha256(e), e));
  EXPECT_EQ(cache->stats().entries, 3u);
  EXPECT_LE(cache->stats().bytes, 3000u);
}

TEST(ChunkCache, ACorruptedEntryIsDroppedOnReadAndFetchedAgain) {
  TempDir dir;
  auto cache = open_cache(dir, 1 << 20);
  const std::string a = chunk('a');
  ASSERT_TRUE(*cache->put(raw_sha256(a), a));
  std::string flipped = a;
  flipped[500] = 'x';
  rootfs::testing::write_file(dir / ("cache/sha256/" + digest_of(raw_sha256(a)).hex), flipped);
  EXPECT_FALSE(cache->get(raw_sha256(a))->has_value());
  EXPECT_EQ(cache->stats().corrupt, 1u);
  EXPECT_EQ(cache->stats().entries, 0u);
  int fetches = 0;
  auto got = cache->get_or_fetch(raw_sha256(a), [&]() -> Result<std::string> {
    ++fetches;
    return a;
  });
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, a);
  EXPECT_EQ(fetches, 1);
  EXPECT_TRUE(cache->get(raw_sha256(a))->has_value());
}

TEST(ChunkCache, AFetchOfWrongBytesIsAnErrorAndNothingIsStored) {
  TempDir dir;
  auto cache = open_cache(dir, 1 << 20);
  const std::string a = chunk('a');
  auto got = cache->get_or_fetch(raw_sha256(a), []() -> Result<std::string> { return chunk('z'); });
  EXPECT_FALSE(got.ok());
  auto failed = cache->get_or_fetch(raw_sha256(a), []() -> Result<std::string> { return make_error("registry down"); });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "registry down");
  EXPECT_EQ(cache->stats().entries, 0u);
  EXPECT_EQ(cache->stats().fetches, 2u);  // a failed fetch is not remembered: the next call fetches
}

TEST(ChunkCache, ReopeningKeepsEntriesAndTrimsToTheNewBound) {
  TempDir dir;
  const std::string a = chunk('a'), b = chunk('b'), c = chunk('c');
  {
    auto cache = open_cache(dir, 1 << 20);
    for (const std::string* x : {&a, &b, &c}) ASSERT_TRUE(*cache->put(raw_sha256(*x), *x));
  }
  rootfs::testing::write_file(dir / "cache/sha256/leftover.123.0.tmp", "half a chunk");
  auto cache = open_cache(dir, 2000);
  EXPECT_EQ(cache->stats().entries, 2u);
  EXPECT_EQ(cache->stats().bytes, 2000u);
  EXPECT_FALSE(rootfs::testing::exists(dir / "cache/sha256/leftover.123.0.tmp"));
}

TEST(ChunkCache, ConcurrentMissesOfOneChunkMakeOneFetch) {
  TempDir dir;
  auto cache = open_cache(dir, 1 << 20);
  const std::string a = chunk('a', 4096);
  constexpr int kCallers = 6;
  std::atomic<int> fetches{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto fetch = [&]() -> Result<std::string> {
    ++fetches;
    released.wait();  // held until every other caller waits on this fetch
    return a;
  };
  std::vector<std::future<Result<std::string>>> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.push_back(std::async(std::launch::async, [&] { return cache->get_or_fetch(raw_sha256(a), fetch); }));
  }
  while (cache->waiting_for(raw_sha256(a)) < kCallers - 1) std::this_thread::yield();
  release.set_value();
  for (auto& c : callers) {
    auto got = c.get();
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, a);
  }
  EXPECT_EQ(fetches.load(), 1);
  EXPECT_EQ(cache->stats().fetches, 1u);
  EXPECT_EQ(cache->stats().coalesced, static_cast<uint64_t>(kCallers - 1));
}

}  // namespace
}  // namespace kiln::rootfs::chunks

// RegistryChunkSource against a fake registry: Range reads that verify, concurrent reads, a
// blob-storage redirect (Range kept, credentials dropped), and the refusals: a 200 whole blob,
// a short 206, a stalled server (an error within the deadline), counted.
#include "rootfs-builder/artifact/registry_chunk_source.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <thread>
#include <vector>

#include "rootfs-builder/chunks/chunk_verifier.h"
#include "tests/unit/rootfs/artifact/fake_artifact_registry.h"

namespace kiln::rootfs::artifact {
namespace {

using testing::FakeArtifactRegistry;
using testing::FakeRequest;
using testing::FakeResponse;

RegistryChunkSource source_of(FakeArtifactRegistry& reg, RegistryChunkSourceOptions o = {}) {
  return RegistryChunkSource(reg.ref(), reg.options(), reg.layers.data, o);
}

// The first stored chunk.
uint64_t first_stored(const chunks::ChunkIndex& index) {
  for (uint64_t i = 0; i < index.entries.size(); ++i) {
    if (!index.entries[i].zero()) return i;
  }
  return 0;
}

TEST(RegistryChunkSource, EveryStoredChunkVerifiesAndCounts) {
  FakeArtifactRegistry reg;
  RegistryChunkSource src = source_of(reg);
  const chunks::ChunkIndex& index = reg.chunked.image.index;
  uint64_t fetched = 0, bytes = 0;
  for (uint64_t i = 0; i < index.entries.size(); ++i) {
    if (index.entries[i].zero()) {
      EXPECT_FALSE(src.fetch_frame(index.entries[i]).ok());  // refused without a request
      continue;
    }
    auto frame = src.fetch_frame(index.entries[i]);
    ASSERT_TRUE(frame.ok()) << frame.error().message;
    auto chunk = chunks::verify_chunk(index, i, *frame);
    ASSERT_TRUE(chunk.ok()) << chunk.error().message;
    EXPECT_EQ(*chunk, *chunks::read_chunk(index, i, reg.chunked.data));
    ++fetched;
    bytes += frame->size();
  }
  EXPECT_EQ(src.counters().fetches.load(), fetched);
  EXPECT_EQ(src.counters().bytes.load(), bytes);
  EXPECT_EQ(src.counters().errors.load(), 0u);
  EXPECT_GT(src.counters().wait_ns.load(), 0u);
  EXPECT_NE(src.describe().find(reg.layers.data.digest.str()), std::string::npos);
}

TEST(RegistryChunkSource, ConcurrentReads) {
  FakeArtifactRegistry reg;
  RegistryChunkSource src = source_of(reg);
  const chunks::ChunkIndex& index = reg.chunked.image.index;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 5; ++round) {
        for (uint64_t i = 0; i < index.entries.size(); ++i) {
          if (index.entries[i].zero()) continue;
          auto frame = src.fetch_frame(index.entries[i]);
          if (!frame.ok() || !chunks::verify_chunk(index, i, *frame).ok()) ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(src.counters().errors.load(), 0u);
}

TEST(RegistryChunkSource, RefusesAWholeBlobAnswer) {
  FakeArtifactRegistry reg;
  const std::string big(8 << 20, 'b');  // a registry ignoring Range sends all of a large blob
  reg.set_hook([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target == reg.blob_target(reg.layers.data.digest)) return FakeResponse{200, {}, big};
    return std::nullopt;
  });
  RegistryChunkSource src = source_of(reg);
  auto frame = src.fetch_frame(reg.chunked.image.index.entries[first_stored(reg.chunked.image.index)]);
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.error().message.find("the registry ignored Range"), std::string::npos) << frame.error().message;
  EXPECT_EQ(src.counters().errors.load(), 1u);
  EXPECT_EQ(src.counters().bytes.load(), 0u);
}

TEST(RegistryChunkSource, RefusesAShort206AndOtherStatuses) {
  FakeArtifactRegistry reg;
  const chunks::ChunkEntry e = reg.chunked.image.index.entries[first_stored(reg.chunked.image.index)];
  int status = 206;
  reg.set_hook([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target != reg.blob_target(reg.layers.data.digest)) return std::nullopt;
    return FakeResponse{status, {}, reg.chunked.data.substr(e.offset, e.length - 1)};
  });
  RegistryChunkSource src = source_of(reg);
  auto frame = src.fetch_frame(e);
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.error().message.find("got " + std::to_string(e.length - 1) + " of " + std::to_string(e.length)),
            std::string::npos)
      << frame.error().message;
  status = 416;
  frame = src.fetch_frame(e);
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.error().message.find("HTTP 416"), std::string::npos) << frame.error().message;
  // Outside the blob: refused without a request.
  chunks::ChunkEntry outside = e;
  outside.offset = reg.layers.data.size;
  EXPECT_FALSE(src.fetch_frame(outside).ok());
  EXPECT_EQ(src.counters().fetches.load(), 2u);
  EXPECT_EQ(src.counters().errors.load(), 2u);
}

TEST(RegistryChunkSource, AStalledRegistryFailsWithinTheDeadline) {
  FakeArtifactRegistry reg;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  reg.set_hook([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target != reg.blob_target(reg.layers.data.digest)) return std::nullopt;
    released.wait_for(std::chrono::seconds(20));  // the stall: answers only once the test is done
    return FakeResponse{503, {}, ""};
  });
  RegistryChunkSource src = source_of(reg, {.timeout = std::chrono::milliseconds(300)});
  const auto start = std::chrono::steady_clock::now();
  auto frame = src.fetch_frame(reg.chunked.image.index.entries[first_stored(reg.chunked.image.index)]);
  const auto took = std::chrono::steady_clock::now() - start;
  release.set_value();
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.error().message.find("timed out"), std::string::npos) << frame.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(src.counters().errors.load(), 1u);
}

TEST(RegistryChunkSource, BlobStorageRedirectKeepsRangeDropsCredentials) {
  FakeArtifactRegistry reg;
  FakeArtifactRegistry storage;  // another origin, serving the same data blob
  reg.set_hook([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.headers.count("authorization") == 0 || r.headers.at("authorization") != "Basic dTpw") {
      return FakeResponse{401, {{"WWW-Authenticate", "Basic realm=\"fake\""}}, ""};
    }
    if (r.target == reg.blob_target(reg.layers.data.digest)) {
      return FakeResponse{307, {{"Location", storage.server().origin() + "/blob-store/data"}}, ""};
    }
    return std::nullopt;
  });
  storage.set_hook([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.target != "/blob-store/data") return std::nullopt;
    unsigned long long a = 0, b = 0;
    if (r.headers.count("range") == 0 || std::sscanf(r.headers.at("range").c_str(), "bytes=%llu-%llu", &a, &b) != 2) {
      return FakeResponse{200, {}, reg.chunked.data};
    }
    return FakeResponse{206, {}, reg.chunked.data.substr(a, b - a + 1)};
  });
  SourceOptions o = reg.options();
  o.credentials = "u:p";
  RegistryChunkSource src(reg.ref(), o, reg.layers.data);
  const chunks::ChunkIndex& index = reg.chunked.image.index;
  const uint64_t i = first_stored(index);
  auto frame = src.fetch_frame(index.entries[i]);
  ASSERT_TRUE(frame.ok()) << frame.error().message;
  EXPECT_TRUE(chunks::verify_chunk(index, i, *frame).ok());
  auto seen = storage.server().requests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().headers.count("authorization"), 0u);
  EXPECT_EQ(seen.back().headers.count("range"), 1u);
}

}  // namespace
}  // namespace kiln::rootfs::artifact

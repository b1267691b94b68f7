// Blob store: only verified blobs become visible; failures leave nothing behind.
#include "rootfs-builder/digest/blob_store.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

using testing::TempDir;

size_t count_entries(const std::string& dir) {
  size_t n = 0;
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  }
  closedir(d);
  return n;
}

TEST(RootfsBlobStore, CommitsVerifiedBlob) {
  TempDir t;
  auto s = BlobStore::open(t.path());
  ASSERT_TRUE(s.ok());
  std::string data = "hello blob";
  Digest d = sha256_of(data);
  auto w = s->begin(d, data.size());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write(data.data(), data.size()).ok());
  auto c = s->commit(std::move(w).value());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(s->has(d));
  EXPECT_EQ(testing::read_file(s->path(d)), data);
  EXPECT_EQ(count_entries(t.path() + "/tmp"), 0u);
}

TEST(RootfsBlobStore, DigestMismatchLeavesNothing) {
  TempDir t;
  auto s = BlobStore::open(t.path());
  ASSERT_TRUE(s.ok());
  Digest want = sha256_of("expected");
  auto w = s->begin(want, 8);
  ASSERT_TRUE(w->write("tampered", 8).ok());
  auto c = s->commit(std::move(w).value());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("digest mismatch"), std::string::npos);
  EXPECT_FALSE(s->has(want));
  EXPECT_FALSE(s->has(sha256_of("tampered")));
  EXPECT_EQ(count_entries(t.path() + "/sha256"), 0u);
  EXPECT_EQ(count_entries(t.path() + "/tmp"), 0u);
}

TEST(RootfsBlobStore, TruncatedAndOversizedBlobsFail) {
  TempDir t;
  auto s = BlobStore::open(t.path());
  ASSERT_TRUE(s.ok());
  std::string data = "0123456789";
  Digest d = sha256_of(data);
  {
    auto w = s->begin(d, data.size());
    ASSERT_TRUE(w->write(data.data(), 5).ok());
    auto c = s->commit(std::move(w).value());
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message.find("truncated"), std::string::npos);
  }
  {
    auto w = s->begin(d, 4);
    EXPECT_FALSE(w->write(data.data(), data.size()).ok());
  }
  {
    auto w = s->begin(d, data.size());
    ASSERT_TRUE(w->write(data.data(), 3).ok());
    // Abandoned (e.g. interrupted download): destroyed without commit.
  }
  EXPECT_FALSE(s->has(d));
  EXPECT_EQ(count_entries(t.path() + "/tmp"), 0u);
  EXPECT_EQ(count_entries(t.path() + "/sha256"), 0u);
}

TEST(RootfsBlobStore, ImportFileVerifies) {
  TempDir t;
  auto s = BlobStore::open(t / "store");
  ASSERT_TRUE(s.ok());
  testing::write_file(t / "f", "content");
  EXPECT_TRUE(s->import_file(t / "f", sha256_of("content"), 7).ok());
  auto bad = s->import_file(t / "f", sha256_of("other"), 7);
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(s->has(sha256_of("other")));
}

TEST(RootfsDigest, Parse) {
  EXPECT_TRUE(Digest::parse("sha256:" + std::string(64, 'f')).ok());
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(64, 'F')).ok());
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(63, 'f')).ok());
  EXPECT_FALSE(Digest::parse("sha384:" + std::string(96, 'f')).ok());
  EXPECT_EQ(sha256_of("").hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace kiln::rootfs

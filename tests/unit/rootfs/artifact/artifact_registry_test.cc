// Publishing and discovery against a real docker-registry (CNCF distribution 2.8: no referrers
// API, so the tag-schema fallback), with TLS from a test CA and htpasswd basic auth: convert
// --push, discovery, every chunk read back with Range requests and verified, idempotent pushes,
// and an image without an artifact.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/io.h"
#include "rootfs-builder/artifact/artifact_discovery.h"
#include "rootfs-builder/artifact/chunk_artifact.h"
#include "rootfs-builder/artifact/convert.h"
#include "rootfs-builder/artifact/registry_chunk_source.h"
#include "rootfs-builder/chunks/chunk_verifier.h"
#include "tests/support/test_paths.h"
#include "tests/unit/rootfs/chunks/chunk_test_image.h"
#include "tests/unit/rootfs/support/local_registry.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs::artifact {
namespace {

using namespace kiln::rootfs::testing;

constexpr char kUser[] = "kiln";
constexpr char kPassword[] = "s3cret-pw";

class ArtifactRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v docker-registry >/dev/null && command -v skopeo >/dev/null") != 0) {
      skip_ = "docker-registry or skopeo is not installed (scripts/setup installs them)";
      return;
    }
    tmp_ = new TempDir();
    std::string err;
    registry_ = LocalRegistry::start(*tmp_ / "registry", secure_registry(kUser, kPassword), &err).release();
    ASSERT_NE(registry_, nullptr) << err;
    ImageSpec spec;
    spec.layers.push_back(make_tar({dir("bin"), file("bin/server", "#!/bin/sh\n", 0755), dir("srv"),
                                    file("srv/random", chunks::testing::random_bytes(7, 700000)),
                                    file("srv/text", std::string(200000, 't'))}));
    WrittenImage img = write_oci_layout(*tmp_ / "layout", spec, "v1");
    digest_ = img.manifest_digest;
    ASSERT_EQ(registry_->push(*tmp_ / "layout", "v1", "kiln/app", &err), digest_) << err;
    ASSERT_EQ(registry_->push(*tmp_ / "layout", "v1", "kiln/bare", &err), digest_) << err;
    // The same image behind a multi-platform index (linux/amd64 only), pushed with --all.
    const std::string layout = *tmp_ / "layout";
    nlohmann::json top = nlohmann::json::parse(read_file(layout + "/index.json"));
    nlohmann::json entry = top["manifests"][0];
    entry.erase("annotations");
    entry["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
    nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", media_type::kOciIndex}, {"manifests", {entry}}};
    const std::string body = index.dump();
    write_file(layout + "/blobs/sha256/" + sha256_of(body).hex, body);
    top["manifests"].push_back({{"mediaType", media_type::kOciIndex},
                                {"digest", sha256_of(body).str()},
                                {"size", body.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}});
    write_file(layout + "/index.json", top.dump());
    index_digest_ = registry_->push(layout, "multi", "kiln/multi", &err, {"--all"});
    ASSERT_EQ(index_digest_, sha256_of(body).str()) << err;
  }

  static void TearDownTestSuite() {
    delete registry_;
    delete tmp_;
    registry_ = nullptr;
    tmp_ = nullptr;
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_NE(registry_, nullptr);
  }

  BuildRequest request(const std::string& repo_ref) {
    BuildRequest r;
    r.reference = "docker://" + registry_->host() + "/" + repo_ref;
    r.cache_dir = cache_ / "cache";
    r.ca_file = registry_->ca_file();
    r.credentials = std::string(kUser) + ":" + kPassword;
    return r;
  }

  ImageReference ref(const std::string& repo) {
    ImageReference r;
    r.registry = registry_->host();
    r.repository = repo;
    return r;
  }

  // The fallback index's entries (the tag sha256-<hex> of the image).
  size_t fallback_entries(const std::string& repo, const Digest& image) {
    auto client = RegistryClient::open(ref(repo), source_options(request(repo)));
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return 0;
    auto doc = get_manifest(**client, referrers_tag(image), kNoDeadline, media_type::kOciIndex);
    EXPECT_TRUE(doc.ok() && doc->has_value());
    if (!doc.ok() || !doc->has_value()) return 0;
    return nlohmann::json::parse((*doc)->body)["manifests"].size();
  }

  static inline std::string skip_;
  static inline TempDir* tmp_ = nullptr;
  static inline LocalRegistry* registry_ = nullptr;
  static inline std::string digest_, index_digest_;
  TempDir cache_;
};

TEST_F(ArtifactRegistryTest, ConvertPushDiscoverAndReadEveryChunk) {
  ConvertRequest req;
  req.build = request("kiln/app:v1");
  req.out_dir = cache_ / "out";
  req.chunking.chunk_size = 64 * 1024;
  req.push = true;
  auto r = convert(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->image.manifest_digest.str(), digest_);
  ASSERT_TRUE(r->pushed.has_value());
  EXPECT_TRUE(r->pushed->fallback_tag_updated);
  EXPECT_EQ(r->pushed->index, r->chunked.index_digest);
  EXPECT_EQ(r->pushed->subject.digest.str(), digest_);
  EXPECT_EQ(r->pushed->subject.media_type, media_type::kOciManifest);
  EXPECT_GT(r->pushed->uploaded_bytes, r->chunked.index.data_size);

  auto found = discover_artifact(ref("kiln/app"), r->image.manifest_digest, source_options(req.build));
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  const DiscoveredArtifact& a = **found;
  EXPECT_FALSE(a.via_referrers_api);  // distribution 2.8: the fallback tag
  EXPECT_EQ(a.artifact, r->pushed->artifact);
  EXPECT_EQ(a.index_digest, r->chunked.index_digest);
  EXPECT_EQ(a.index, r->chunked.index);

  auto local = io::read_file(req.out_dir + "/chunk-data", 64 << 20);
  ASSERT_TRUE(local.ok());
  RegistryChunkSource src(ref("kiln/app"), source_options(req.build), a.data);
  uint64_t stored = 0;
  for (uint64_t i = 0; i < a.index.entries.size(); ++i) {
    if (a.index.entries[i].zero()) continue;
    auto frame = src.fetch_frame(a.index.entries[i]);
    ASSERT_TRUE(frame.ok()) << "chunk " << i << ": " << frame.error().message;
    auto chunk = chunks::verify_chunk(a.index, i, *frame);
    ASSERT_TRUE(chunk.ok()) << chunk.error().message;
    EXPECT_EQ(*chunk, *chunks::read_chunk(a.index, i, *local)) << "chunk " << i;
    ++stored;
  }
  EXPECT_GT(stored, 10u);
  EXPECT_EQ(src.counters().fetches.load(), stored);
  EXPECT_EQ(src.counters().errors.load(), 0u);

  // Pushing again changes nothing: same blobs, same manifest, listed once.
  auto again = convert(req);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->pushed->artifact, r->pushed->artifact);
  EXPECT_EQ(again->pushed->uploaded_bytes, 0u);
  EXPECT_FALSE(again->pushed->fallback_tag_updated);
  EXPECT_EQ(fallback_entries("kiln/app", r->image.manifest_digest), 1u);
}

TEST_F(ArtifactRegistryTest, MultiPlatformIndexPushesForThePlatformManifest) {
  ConvertRequest req;
  req.build = request("kiln/multi:multi");
  req.push = true;  // no -o: chunks go to a scratch dir under the cache, removed afterwards
  auto r = convert(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->image.manifest_digest.str(), digest_);  // the platform manifest, not the index
  EXPECT_EQ(r->pushed->subject.digest.str(), digest_);
  EXPECT_TRUE(std::filesystem::is_empty(req.build.cache_dir + "/tmp"));
  auto found = discover_artifact(ref("kiln/multi"), r->image.manifest_digest, source_options(req.build));
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->index_digest, r->chunked.index_digest);
  // Nothing refers to the index itself.
  auto none = discover_artifact(ref("kiln/multi"), *Digest::parse(index_digest_), source_options(req.build));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
}

TEST_F(ArtifactRegistryTest, ImageWithoutArtifactIsNotFound) {
  auto d = Digest::parse(digest_);
  ASSERT_TRUE(d.ok());
  auto found = discover_artifact(ref("kiln/bare"), *d, source_options(request("kiln/bare")));
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_FALSE(found->has_value());
}

TEST_F(ArtifactRegistryTest, ConvertWithoutCredentialsIsRefused) {
  ConvertRequest req;
  req.build = request("kiln/app:v1");
  req.build.credentials.clear();
  req.build.auth_file = cache_ / "auth.json";
  ASSERT_TRUE(io::write_file_atomic(req.build.auth_file, R"({"auths": {}})").ok());
  req.push = true;
  auto r = convert(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no credentials"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kiln::rootfs::artifact

// discover_artifact against a fake registry: the referrers API path, the fallback tag, "not
// found", and hostile documents (each a clear error, never a crash or a hang).
#include "rootfs-builder/artifact/artifact_discovery.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/rootfs/artifact/fake_artifact_registry.h"

namespace kiln::rootfs::artifact {
namespace {

using testing::FakeArtifactRegistry;
using Json = nlohmann::json;

Result<std::optional<DiscoveredArtifact>> discover(FakeArtifactRegistry& reg) {
  return discover_artifact(reg.ref(), reg.image, reg.options(), DiscoveryOptions{std::chrono::milliseconds(5000)});
}

std::string error_of(FakeArtifactRegistry& reg) {
  auto r = discover(reg);
  if (r.ok()) return r->has_value() ? "found" : "not found";
  return r.error().message;
}

// The artifact manifest with one change.
std::string edited(const FakeArtifactRegistry& reg, const std::function<void(Json&)>& edit) {
  Json j = Json::parse(reg.manifest);
  edit(j);
  return j.dump();
}

TEST(ArtifactDiscovery, ReferrersApiFindsTheArtifact) {
  FakeArtifactRegistry reg;
  auto r = discover(reg);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  const DiscoveredArtifact& a = **r;
  EXPECT_TRUE(a.via_referrers_api);
  EXPECT_EQ(a.artifact, reg.manifest_digest);
  EXPECT_EQ(a.index_digest, reg.chunked.image.index_digest);
  EXPECT_EQ(a.index, reg.chunked.image.index);
  EXPECT_EQ(a.data.digest, reg.layers.data.digest);
  EXPECT_EQ(a.data.size, reg.chunked.data.size());
  EXPECT_EQ(a.data.media_type, kDataMediaType);
}

TEST(ArtifactDiscovery, FallbackTagWhenTheReferrersApiIs404) {
  FakeArtifactRegistry reg;
  reg.serve_manifest(reg.manifest, /*via_api=*/false);
  auto r = discover(reg);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_FALSE((*r)->via_referrers_api);
  EXPECT_EQ((*r)->index, reg.chunked.image.index);
}

TEST(ArtifactDiscovery, NoArtifactIsNotFoundNotAnError) {
  FakeArtifactRegistry reg;
  reg.remove(reg.referrers_target());  // 404 and no fallback tag
  EXPECT_EQ(error_of(reg), "not found");
  // A referrers API answer that lists only other artifacts.
  reg.route(
      reg.referrers_target(),
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
          reg.manifest_digest.str() + R"(","size":10,"artifactType":"application/vnd.example.sbom"}]})",
      std::string(media_type::kOciIndex));
  EXPECT_EQ(error_of(reg), "not found");
}

TEST(ArtifactDiscovery, RegistryErrorsAreErrors) {
  FakeArtifactRegistry reg;
  reg.route(reg.referrers_target(), "", "", 500);
  EXPECT_NE(error_of(reg).find("HTTP 500"), std::string::npos) << error_of(reg);
  ImageReference down = reg.ref();
  down.registry = "127.0.0.1:1";
  auto r = discover_artifact(down, reg.image, reg.options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not reachable"), std::string::npos) << r.error().message;
}

TEST(ArtifactDiscovery, HostileReferrersIndexes) {
  FakeArtifactRegistry reg;
  const std::string t = reg.referrers_target();
  reg.route(t, "{not json", std::string(media_type::kOciIndex));
  EXPECT_NE(error_of(reg).find("not valid JSON"), std::string::npos) << error_of(reg);
  reg.route(t, R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}})");
  EXPECT_NE(error_of(reg).find("is not an OCI image index"), std::string::npos) << error_of(reg);
  reg.route(
      t,
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:12","size":1}]})");
  EXPECT_NE(error_of(reg).find("manifests[0].digest"), std::string::npos) << error_of(reg);
  reg.route(t, std::string(5 << 20, ' '));  // over kMaxDocumentSize
  EXPECT_NE(error_of(reg).find("is larger than"), std::string::npos) << error_of(reg);
  // A kiln entry whose descriptor announces an oversized manifest is refused before fetching.
  auto index = add_referrer(std::nullopt, "", referrer_descriptor(reg.manifest_digest, 64 << 20, reg.layers));
  reg.route(t, **index, std::string(media_type::kOciIndex));
  EXPECT_NE(error_of(reg).find("bytes (limit"), std::string::npos) << error_of(reg);
}

TEST(ArtifactDiscovery, HostileArtifactManifests) {
  struct Case {
    const char* name;
    std::function<void(Json&)> edit;
    const char* error;
  };
  const std::string other = sha256_of("another image").str();
  const Case cases[] = {
      {"subject", [&](Json& j) { j["subject"]["digest"] = other; }, "is not the image"},
      {"no subject", [](Json& j) { j.erase("subject"); }, "no subject"},
      {"artifactType", [](Json& j) { j["artifactType"] = "application/x"; }, "is not kiln's"},
      {"manifest type", [](Json& j) { j["mediaType"] = media_type::kDockerManifest; }, "mediaType: is not"},
      {"config", [](Json& j) { j["config"]["mediaType"] = media_type::kOciConfig; }, "not the empty descriptor"},
      {"index type", [](Json& j) { j["layers"][0]["mediaType"] = "application/octet-stream"; },
       "not the chunk index's"},
      {"data type", [](Json& j) { j["layers"][1]["mediaType"] = "application/octet-stream"; }, "not the chunk data's"},
      {"layers", [](Json& j) { j["layers"].erase(1); }, "want 2 layers, got 1"},
      {"index size", [](Json& j) { j["layers"][0]["size"] = 65ull << 20; }, "chunk index of 68157440 bytes (limit"},
      {"bad digest", [](Json& j) { j["layers"][0]["digest"] = "sha256:zz"; }, "layers[0].digest"},
      {"size annotation", [](Json& j) { j["annotations"][std::string(kImageSizeAnnotation)] = "12x"; },
       "is not a number"},
      {"data size", [](Json& j) { j["layers"][1]["size"] = 5; }, "chunk index says data size"},
      {"image size", [](Json& j) { j["annotations"][std::string(kImageSizeAnnotation)] = "4096"; },
       "chunk index says image size"},
  };
  for (const Case& c : cases) {
    FakeArtifactRegistry reg;
    reg.serve_manifest(edited(reg, c.edit));
    EXPECT_NE(error_of(reg).find(c.error), std::string::npos) << c.name << ": " << error_of(reg);
  }
}

TEST(ArtifactDiscovery, ManifestOrIndexBytesThatAreNotTheirDigest) {
  {
    FakeArtifactRegistry reg;  // the registry serves other bytes under the manifest's digest
    std::string body = reg.manifest;
    body.back() = ' ';
    reg.route("/v2/kiln/app/manifests/" + reg.manifest_digest.str(), body, std::string(media_type::kOciManifest));
    EXPECT_NE(error_of(reg).find("digest mismatch"), std::string::npos) << error_of(reg);
  }
  {
    FakeArtifactRegistry reg;
    std::string bytes = reg.chunked.image.index_bytes;
    bytes[60] ^= 1;
    reg.route(reg.blob_target(reg.layers.index.digest), bytes);
    EXPECT_NE(error_of(reg).find("chunk index: blob " + reg.layers.index.digest.str() + ": content is"),
              std::string::npos)
        << error_of(reg);
    reg.route(reg.blob_target(reg.layers.index.digest), reg.chunked.image.index_bytes + "x");
    EXPECT_NE(error_of(reg).find("more than"), std::string::npos) << error_of(reg);
  }
  {
    FakeArtifactRegistry reg;  // an index blob that is its digest but not a chunk index
    std::string junk(100, 'j');
    reg.layers.index.digest = sha256_of(junk);
    reg.layers.index.size = junk.size();
    reg.route(reg.blob_target(reg.layers.index.digest), junk);
    Descriptor subject;
    subject.media_type = std::string(media_type::kOciManifest);
    subject.digest = reg.image;
    subject.size = 17;
    reg.serve_manifest(artifact_manifest_json(subject, reg.layers));
    EXPECT_NE(error_of(reg).find("bad magic"), std::string::npos) << error_of(reg);
  }
}

TEST(ArtifactDocuments, AddReferrerKeepsOtherEntriesAndListsOnce) {
  FakeArtifactRegistry reg;
  const Descriptor mine = referrer_descriptor(reg.manifest_digest, reg.manifest.size(), reg.layers);
  const std::string other =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      sha256_of("sbom").str() + R"(","size":3,"artifactType":"application/spdx+json","x-extra":[1,2]}]})";
  auto added = add_referrer(other, std::string(media_type::kOciIndex), mine);
  ASSERT_TRUE(added.ok()) << added.error().message;
  ASSERT_TRUE(added->has_value());
  Json j = Json::parse(**added);
  ASSERT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][0]["x-extra"], Json::parse("[1,2]"));
  EXPECT_EQ(j["manifests"][1]["artifactType"], kArtifactType);
  auto again = add_referrer(**added, "", mine);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());  // already listed
  auto picked = pick_artifact(**added, "");
  ASSERT_TRUE(picked.ok() && picked->has_value());
  EXPECT_EQ((*picked)->digest, reg.manifest_digest);
  EXPECT_FALSE(add_referrer(std::string("[]"), "", mine).ok());
}

}  // namespace
}  // namespace kiln::rootfs::artifact

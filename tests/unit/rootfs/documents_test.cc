// Manifest / index / config validation against well-formed and hostile documents.
#include "rootfs-builder/oci/image_documents.h"

#include <gtest/gtest.h>

namespace kiln::rootfs {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

std::string oci_manifest(const std::string& extra = "") {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kD1 +
         R"(","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
         kD2 + R"(","size":20}])" + extra + "}";
}

TEST(OciDocuments, ParsesOciManifest) {
  std::string mt;
  auto k = classify_document(oci_manifest(), "", &mt);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(*k, DocumentKind::kManifest);
  auto m = parse_manifest(oci_manifest(), mt);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->config.digest.str(), kD1);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 20u);
}

TEST(OciDocuments, ParsesDockerManifestUsingTransportType) {
  std::string body = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" +
                     kD1 + R"(","size":10},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
                     kD2 + R"(","size":20}]})";
  std::string mt;
  auto k = classify_document(body, "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", &mt);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(mt, media_type::kDockerManifest);
  EXPECT_TRUE(parse_manifest(body, mt).ok());
}

TEST(OciDocuments, RejectsMissingAndConflictingMediaTypes) {
  std::string no_type = R"({"schemaVersion":2,"config":{},"layers":[]})";
  EXPECT_FALSE(classify_document(no_type, "", nullptr).ok());
  EXPECT_FALSE(classify_document(no_type, "application/octet-stream", nullptr).ok());
  auto conflict = classify_document(oci_manifest(), media_type::kDockerManifest, nullptr);
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("conflict"), std::string::npos);
  auto both = classify_document(oci_manifest(R"(,"manifests":[])"), "", nullptr);
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.error().message.find("ambiguous"), std::string::npos);
  std::string index_with_layers =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","layers":[]})";
  EXPECT_FALSE(classify_document(index_with_layers, "", nullptr).ok());
}

TEST(OciDocuments, RejectsSchema1) {
  auto r = classify_document(R"({"schemaVersion":1,"fsLayers":[]})", "", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("schema 1"), std::string::npos);
}

TEST(OciDocuments, RejectsHostileManifests) {
  std::string mt(media_type::kOciManifest);
  auto bad = [&](const std::string& body) {
    auto r = parse_manifest(body, mt);
    EXPECT_FALSE(r.ok()) << body;
  };
  bad("not json");
  bad("[]");
  bad(R"({"schemaVersion":3})");
  bad(R"({"schemaVersion":"2"})");
  std::string base = oci_manifest();
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  bad(replace("\"size\":20", "\"size\":-20"));
  bad(replace("\"size\":20", "\"size\":\"20\""));
  bad(replace("\"size\":20", "\"size\":2.5"));
  bad(replace(kD2, "sha256:abc"));
  bad(replace(kD2, "sha512:" + std::string(128, 'a')));
  bad(replace("application/vnd.oci.image.layer.v1.tar+gzip", "application/x-evil"));
  bad(replace("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"));
  bad(replace(R"("layers":[)", R"("layers":{"x":[)") + "}");
  bad(replace("\"size\":10", "\"size\":99999999999"));  // config larger than the document cap
  bad(std::string(kMaxDocumentSize + 1, ' '));
  // Deep nesting must be an error or a value, never a crash.
  std::string deep = R"({"schemaVersion":2,"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  bad(deep);
}

TEST(OciDocuments, IndexSelectsLinuxAmd64) {
  std::string body =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kD1 +
      R"(","size":1,"platform":{"os":"linux","architecture":"arm64"}},)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kD2 +
      R"(","size":2,"platform":{"os":"linux","architecture":"amd64"}}]})";
  std::string mt;
  auto k = classify_document(body, "", &mt);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, DocumentKind::kIndex);
  auto idx = parse_index(body, mt);
  ASSERT_TRUE(idx.ok()) << idx.error().message;
  auto d = select_platform(*idx, "linux", "amd64");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest.str(), kD2);
  auto none = select_platform(*idx, "linux", "s390x");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("linux/arm64"), std::string::npos);
}

// Labels (Lambda detection reads them): string values kept, others skipped, saved and read back.
TEST(OciDocuments, ConfigLabels) {
  std::string body = R"({"os":"linux","architecture":"amd64","config":{"Labels":{"com.amazonaws.lambda":"1",)"
                     R"("n":7,"maintainer":"me"}},"rootfs":{"type":"layers","diff_ids":[")" + kD1 + R"("]}})";
  auto c = parse_config(body);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->labels, (std::map<std::string, std::string>{{"com.amazonaws.lambda", "1"}, {"maintainer", "me"}}));
  auto saved = parse_saved_config(image_config_json(*c, c->diff_ids[0], c->diff_ids[0]));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->labels, c->labels);
  EXPECT_FALSE(parse_config(R"({"os":"linux","architecture":"amd64","config":{"Labels":[]},)"
                            R"("rootfs":{"type":"layers","diff_ids":[]}})").ok());
}

TEST(OciDocuments, Config) {
  std::string body = R"({"os":"linux","architecture":"amd64","config":{"Entrypoint":null,"Cmd":["/srv/app"],)"
                     R"("Env":["A=1"],"WorkingDir":"/srv","User":"app","ExposedPorts":{"9000/tcp":{},"80/tcp":{}}},)"
                     R"("rootfs":{"type":"layers","diff_ids":[")" + kD1 + R"("]}})";
  auto c = parse_config(body);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->entrypoint.empty());
  EXPECT_EQ(c->cmd, std::vector<std::string>{"/srv/app"});
  EXPECT_EQ(c->exposed_ports, (std::vector<std::string>{"80/tcp", "9000/tcp"}));
  ASSERT_EQ(c->diff_ids.size(), 1u);
  auto saved = parse_saved_config(image_config_json(*c, c->diff_ids[0], c->diff_ids[0]));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->working_dir, "/srv");
  EXPECT_EQ(saved->user, "app");

  EXPECT_FALSE(parse_config(R"({"os":"linux","architecture":"amd64"})").ok());
  EXPECT_FALSE(parse_config(R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["x"]}})").ok());
  EXPECT_FALSE(parse_config(R"({"os":"linux","architecture":"amd64","config":{"Cmd":"sh"},"rootfs":{"type":"layers","diff_ids":[]}})").ok());
  EXPECT_FALSE(parse_config(R"({"os":1,"architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}})").ok());
}

}  // namespace
}  // namespace kiln::rootfs

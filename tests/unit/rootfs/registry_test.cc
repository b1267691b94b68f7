// Pulls from a real local docker-registry (CNCF distribution): TLS from a test CA + htpasswd
// basic auth, and a plain-HTTP one; images built by the test and pushed with skopeo.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/registry/error_hints.h"
#include "tests/unit/rootfs/support/local_registry.h"
#include "tests/unit/rootfs/support/test_image.h"
#include "tests/support/test_paths.h"

namespace kiln::rootfs {
namespace {

namespace fs = std::filesystem;
using namespace kiln::rootfs::testing;

constexpr char kUser[] = "kiln";
constexpr char kPassword[] = "s3cret-pw";

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v docker-registry >/dev/null && command -v skopeo >/dev/null") != 0) {
      skip_ = "docker-registry or skopeo is not installed (scripts/setup installs them)";
      return;
    }
    tmp_ = new TempDir();
    std::string err;
    secure_ = LocalRegistry::start(*tmp_ / "secure", secure_registry(kUser, kPassword), &err).release();
    ASSERT_NE(secure_, nullptr) << err;
    plain_ = LocalRegistry::start(*tmp_ / "plain", {}, &err).release();
    ASSERT_NE(plain_, nullptr) << err;

    ImageSpec spec;
    spec.layers.push_back(make_tar({dir("bin"), file("bin/server", "#!/bin/sh\n", 0755), dir("etc"),
                                    file("etc/motd", "from the registry")}));
    spec.layers.push_back(make_tar({file("etc/motd", "layer two"), file("srv-data", std::string(300000, 'd'))}));
    WrittenImage img = write_oci_layout(*tmp_ / "layout", spec, "v1");
    digest_ = img.manifest_digest;
    layer_digest_ = img.layer_digests[1];
    ASSERT_EQ(secure_->push(*tmp_ / "layout", "v1", "kiln/app", &err), digest_) << err;
    ASSERT_EQ(plain_->push(*tmp_ / "layout", "v1", "kiln/app", &err), digest_) << err;
    ASSERT_EQ(plain_->push(*tmp_ / "layout", "v1", "kiln/victim", &err), digest_) << err;
    docker_digest_ = plain_->push(*tmp_ / "layout", "v1", "kiln/docker", &err, {"--format", "v2s2"});
    ASSERT_FALSE(docker_digest_.empty()) << err;
  }

  static void TearDownTestSuite() {
    delete secure_;  // kills the registries
    delete plain_;
    delete tmp_;
    secure_ = plain_ = nullptr;
    tmp_ = nullptr;
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_NE(secure_, nullptr);
    ASSERT_NE(plain_, nullptr);
  }

  BuildRequest secure_request(const std::string& ref_suffix) {
    BuildRequest r;
    r.reference = "docker://" + secure_->host() + "/kiln/app" + ref_suffix;
    r.cache_dir = cache_ / "cache";
    r.ca_file = secure_->ca_file();
    r.credentials = std::string(kUser) + ":" + kPassword;
    return r;
  }

  BuildRequest plain_request(const std::string& repo_ref) {
    BuildRequest r;
    r.reference = plain_->host() + "/" + repo_ref;
    r.cache_dir = cache_ / "cache";
    r.tls_verify = false;
    return r;
  }

  void expect_no_cache_entry(const std::string& cache) {
    if (!fs::exists(cache + "/images")) return;
    for (auto& e : fs::directory_iterator(cache + "/images")) {
      EXPECT_NE(e.path().extension(), ".ext4") << e.path();
    }
    if (fs::exists(cache + "/blobs/tmp")) {
      EXPECT_TRUE(fs::is_empty(cache + "/blobs/tmp"));
    }
  }

  static inline std::string skip_;
  static inline TempDir* tmp_ = nullptr;
  static inline LocalRegistry* secure_ = nullptr;
  static inline LocalRegistry* plain_ = nullptr;
  static inline std::string digest_, layer_digest_, docker_digest_;
  TempDir cache_;
};

TEST_F(RegistryTest, TlsBasicAuthPullByTagThenByDigest) {
  auto r = build(secure_request(":v1"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->manifest_digest.str(), digest_);
  EXPECT_EQ(debugfs_cat(r->image_path, "/etc/motd"), "layer two");
  EXPECT_EQ(debugfs_cat(r->image_path, "/bin/server"), "#!/bin/sh\n");

  BuildRequest by_digest = secure_request("@" + digest_);
  by_digest.cache_dir = cache_ / "cache2";
  auto d = build(by_digest);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_FALSE(d->cache_hit);
  EXPECT_EQ(d->manifest_digest.str(), digest_);
  EXPECT_EQ(read_file(d->image_path), read_file(r->image_path));  // reproducible across pulls
  auto again = build(by_digest);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cache_hit);
  // A cached by-digest reference needs no registry at all (port 1 is closed).
  BuildRequest offline = by_digest;
  offline.reference = "docker://127.0.0.1:1/kiln/app@" + digest_;
  auto off = build(offline);
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_TRUE(off->cache_hit);
}

TEST_F(RegistryTest, WrongPasswordIsRefused) {
  BuildRequest req = secure_request(":v1");
  req.credentials = std::string(kUser) + ":wrong";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("authentication"), std::string::npos) << r.error().message;
  expect_no_cache_entry(req.cache_dir);
}

TEST_F(RegistryTest, MissingCredentialsAreReported) {
  BuildRequest req = secure_request(":v1");
  req.credentials.clear();
  req.auth_file = cache_ / "no-auth.json";
  write_file(req.auth_file, R"({"auths":{}})");
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("requires authentication"), std::string::npos) << r.error().message;
  // Neutral: kiln takes --username/--password, kiln-rootfs --creds/--authfile; each adds its own.
  EXPECT_NE(r.error().message.find(kNoCredentialsHint), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("--"), std::string::npos) << r.error().message;
}

TEST_F(RegistryTest, AuthFileCredentials) {
  BuildRequest req = secure_request(":v1");
  req.credentials.clear();
  req.auth_file = cache_ / "auth.json";
  std::string b64 = std::string("a2lsbjpzM2NyZXQtcHc=");  // base64("kiln:s3cret-pw")
  write_file(req.auth_file, R"({"auths":{")" + secure_->host() + R"(":{"auth":")" + b64 + R"("}}})");
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(RegistryTest, UntrustedCertificateNeedsTlsVerifyFalse) {
  BuildRequest req = secure_request(":v1");
  req.ca_file.clear();
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not reachable"), std::string::npos) << r.error().message;
  req.tls_verify = false;
  auto ok = build(req);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
}

TEST_F(RegistryTest, PlainHttpNeedsTlsVerifyFalse) {
  BuildRequest req = plain_request("kiln/app:v1");
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->manifest_digest.str(), digest_);
  req.tls_verify = true;
  req.cache_dir = cache_ / "strict";
  EXPECT_FALSE(build(req).ok());
}

// A plain-HTTP registry reached with TLS: OpenSSL's bare "wrong version number" comes with a
// hint; the front end names its own flag (kiln-rootfs: --tls-verify=false).
TEST_F(RegistryTest, PlainHttpWithTlsSaysSo) {
  BuildRequest req = plain_request("kiln/app:v1");
  req.tls_verify = true;
  req.cache_dir = cache_ / "hint";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("wrong version number (" + std::string(kPlainHttpHint) + ")"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.find("--"), std::string::npos) << r.error().message;  // no front end's flag
}

TEST_F(RegistryTest, CliNamesItsFlagsInHints) {
  std::string bin = kiln::testing::build_path("rootfs-builder/kiln-rootfs");
  if (!fs::exists(bin)) GTEST_SKIP() << "kiln-rootfs binary not built at " << bin;
  std::string out;
  int rc = run({bin, "inspect", plain_->host() + "/kiln/app:v1", "--cache-dir", cache_ / "c"}, &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("the registry may speak plain HTTP: use --tls-verify=false"), std::string::npos) << out;
  std::string empty_auth = cache_ / "empty-auth.json";
  write_file(empty_auth, R"({"auths":{}})");
  rc = run({bin, "inspect", secure_->host() + "/kiln/app:v1", "--cache-dir", cache_ / "c", "--ca-file",
            secure_->ca_file(), "--authfile", empty_auth},
           &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no credentials were given (use --creds USER:PASS or --authfile FILE)"), std::string::npos) << out;
}

TEST_F(RegistryTest, DockerSchema2Image) {
  ASSERT_NE(docker_digest_, digest_);  // skopeo converted the manifest to Docker schema 2
  BuildRequest req = plain_request("kiln/docker:v1");
  auto i = inspect(req);
  ASSERT_TRUE(i.ok()) << i.error().message;
  EXPECT_EQ(i->manifest_media_type, "application/vnd.docker.distribution.manifest.v2+json");
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->manifest_digest.str(), docker_digest_);
  EXPECT_EQ(debugfs_cat(r->image_path, "/etc/motd"), "layer two");
  req = plain_request("kiln/docker@" + docker_digest_);
  req.cache_dir = cache_ / "by-digest";
  auto d = build(req);
  ASSERT_TRUE(d.ok()) << d.error().message;
}

TEST_F(RegistryTest, UnknownDigestAndTag) {
  BuildRequest req = plain_request("kiln/app@sha256:" + std::string(64, '0'));
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not found"), std::string::npos) << r.error().message;
  req = plain_request("kiln/app:nope");
  EXPECT_FALSE(build(req).ok());
  expect_no_cache_entry(req.cache_dir);
}

TEST_F(RegistryTest, TamperedThenTruncatedBlobIsRefused) {
  std::string data_path = plain_->blob_data_path(layer_digest_);
  std::string original = read_file(data_path);
  ASSERT_FALSE(original.empty());
  std::string tampered = original;
  tampered[tampered.size() / 2] ^= 0x5a;
  write_file(data_path, tampered);
  BuildRequest req = plain_request("kiln/victim:v1");
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("digest mismatch"), std::string::npos) << r.error().message;
  expect_no_cache_entry(req.cache_dir);
  EXPECT_FALSE(fs::exists(req.cache_dir + "/blobs/sha256/" + layer_digest_.substr(7)));

  write_file(data_path, original.substr(0, original.size() / 2));
  r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().message.find("truncated") != std::string::npos ||
              r.error().message.find("failed") != std::string::npos)
      << r.error().message;
  expect_no_cache_entry(req.cache_dir);
  EXPECT_FALSE(fs::exists(req.cache_dir + "/blobs/sha256/" + layer_digest_.substr(7)));
  write_file(data_path, original);
}

TEST_F(RegistryTest, CliBuildAndInspect) {
  std::string bin = kiln::testing::build_path("rootfs-builder/kiln-rootfs");
  if (!fs::exists(bin)) GTEST_SKIP() << "kiln-rootfs binary not built at " << bin;
  std::string ref = plain_->host() + "/kiln/app:v1";
  std::string out;
  int rc = run({bin, "build", ref, "-o", cache_ / "cli.ext4", "--cache-dir", cache_ / "c", "--tls-verify=false"}, &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(digest_), std::string::npos) << out;
  EXPECT_EQ(debugfs_cat(cache_ / "cli.ext4", "/etc/motd"), "layer two");
  rc = run({bin, "inspect", ref, "--cache-dir", cache_ / "c", "--tls-verify=false"}, &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ManifestDigest\": \"" + digest_ + "\""), std::string::npos) << out;
  rc = run({bin, "build", ref, "-o", cache_ / "x.ext4", "--cache-dir", cache_ / "c"}, &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("kiln-rootfs: "), std::string::npos);
  rc = run({bin, "inspect", ref, "--cache-dir", cache_ / "c", "--tls-verify=false", "--platform", "linux/arm64"}, &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("not linux/arm64"), std::string::npos) << out;
}

}  // namespace
}  // namespace kiln::rootfs

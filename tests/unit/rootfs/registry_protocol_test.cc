// Registry protocol details staged with a fake server: the bearer-token flow, a redirect of
// blobs to another origin (credentials must not follow), image index resolution, and lies.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/registry/auth.h"
#include "tests/unit/rootfs/support/fake_http_server.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

namespace fs = std::filesystem;
using namespace kiln::rootfs::testing;
using nlohmann::json;

constexpr char kToken[] = "tok-123";

class RegistryProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    ImageSpec spec;
    // Three layers, so blobs are fetched by parallel downloaders.
    spec.layers.push_back(make_tar({dir("etc"), file("etc/motd", "first")}));
    spec.layers.push_back(make_tar({file("etc/two", std::string(200000, '2'))}));
    spec.layers.push_back(make_tar({file("etc/motd", "via bearer")}));
    img_ = write_oci_layout(t_ / "layout", spec, "v1");
    // An index naming an arm64 image (absent) and our amd64 one.
    std::string man = read_file(blob(img_.manifest_digest));
    json index = {{"schemaVersion", 2},
                  {"mediaType", "application/vnd.oci.image.index.v1+json"},
                  {"manifests",
                   {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"digest", "sha256:" + std::string(64, 'a')},
                     {"size", 10},
                     {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}},
                    {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"digest", img_.manifest_digest},
                     {"size", man.size()},
                     {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
    index_ = index.dump();
    storage_ = std::make_unique<FakeHttpServer>([this](const FakeRequest& r) { return serve_storage(r); });
    registry_ = std::make_unique<FakeHttpServer>([this](const FakeRequest& r) { return serve_registry(r); });
  }

  std::string blob(const std::string& digest) { return t_ / ("layout/blobs/sha256/" + digest.substr(7)); }

  FakeResponse serve_storage(const FakeRequest& r) {
    std::string prefix = "/storage/";
    if (r.target.rfind(prefix, 0) != 0) return {404, {}, ""};
    FakeResponse resp{200, {}, read_file(blob("sha256:" + r.target.substr(prefix.size())))};
    if (blob_mode_ == BlobMode::kCutShort) {  // connection drops mid-body
      resp.content_length = static_cast<long>(resp.body.size());
      resp.body.resize(resp.body.size() / 2);
    } else if (blob_mode_ == BlobMode::kTooLong) {
      resp.body += "trailing junk";
    }
    return resp;
  }

  FakeResponse serve_registry(const FakeRequest& r) {
    auto auth = r.headers.find("authorization");
    if (r.target.rfind("/token", 0) == 0) {
      std::string want = "Basic a2lsbjpwdw==";  // base64("kiln:pw")
      if (auth == r.headers.end() || auth->second != want) return {401, {}, R"({"errors":[{"code":"DENIED"}]})"};
      return {200, {{"Content-Type", "application/json"}}, std::string(R"({"access_token":")") + kToken + "\"}"};
    }
    if (auth == r.headers.end() || auth->second != std::string("Bearer ") + kToken) {
      return {401,
              {{"WWW-Authenticate", "Bearer realm=\"" + registry_->origin() +
                                        "/token\",service=\"fake\",scope=\"repository:kiln/app:pull\""}},
              R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})"};
    }
    if (r.target == "/v2/") return {200, {}, "{}"};
    std::string man_prefix = "/v2/kiln/app/manifests/";
    std::string blob_prefix = "/v2/kiln/app/blobs/";
    if (r.target.rfind(man_prefix, 0) == 0) {
      std::string ref = r.target.substr(man_prefix.size());
      if (ref == "multi" || ref == sha256_of(index_).str()) {
        return {200, {{"Content-Type", "application/vnd.oci.image.index.v1+json"}}, index_};
      }
      if (ref == "huge") {
        return {200, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, std::string(5 << 20, ' ')};
      }
      std::string digest_header;
      if (ref == "liar") {
        ref = img_.manifest_digest;
        digest_header = "sha256:" + std::string(64, 'b');
      }
      if (ref == "v1") ref = img_.manifest_digest;
      if (!fs::exists(blob(ref))) return {404, {}, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})"};
      FakeResponse resp{200, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, read_file(blob(ref))};
      if (!digest_header.empty()) resp.headers.push_back({"Docker-Content-Digest", digest_header});
      return resp;
    }
    if (r.target.rfind(blob_prefix, 0) == 0) {
      std::string digest = r.target.substr(blob_prefix.size());
      if (loop_redirects_) return {307, {{"Location", r.target}}, ""};
      // Blobs live on "object storage" at another origin.
      return {307, {{"Location", storage_->origin() + "/storage/" + digest.substr(7)}}, ""};
    }
    return {404, {}, ""};
  }

  BuildRequest request(const std::string& ref) {
    BuildRequest req;
    req.reference = "127.0.0.1:" + std::to_string(registry_->port()) + "/kiln/app" + ref;
    req.cache_dir = t_ / "cache";
    req.tls_verify = false;
    req.credentials = "kiln:pw";
    return req;
  }

  TempDir t_;
  WrittenImage img_;
  std::string index_;
  bool loop_redirects_ = false;
  enum class BlobMode { kNormal, kCutShort, kTooLong } blob_mode_ = BlobMode::kNormal;

  void expect_no_blobs_or_images() {
    std::string cache = t_ / "cache";
    for (const auto& sub : {"/images", "/blobs/tmp"}) {
      if (!fs::exists(cache + sub)) continue;
      for (auto& e : fs::directory_iterator(cache + sub)) {
        EXPECT_NE(e.path().extension(), ".ext4") << e.path();
        EXPECT_NE(e.path().extension(), ".partial") << e.path();
      }
    }
    for (const auto& l : img_.layer_digests) {
      EXPECT_FALSE(fs::exists(cache + "/blobs/sha256/" + l.substr(7))) << l;
    }
  }
  std::unique_ptr<FakeHttpServer> storage_, registry_;
};

TEST_F(RegistryProtocol, BearerTokenAndCrossOriginRedirectWithoutCredentials) {
  auto r = build(request(":v1"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->manifest_digest.str(), img_.manifest_digest);
  EXPECT_EQ(debugfs_cat(r->image_path, "/etc/motd"), "via bearer");
  EXPECT_EQ(debugfs_cat(r->image_path, "/etc/two"), std::string(200000, '2'));
  auto storage_requests = storage_->requests();
  ASSERT_FALSE(storage_requests.empty());
  for (const auto& req : storage_requests) {
    EXPECT_EQ(req.headers.count("authorization"), 0u) << "credentials leaked to " << req.target;
  }
  bool token_asked = false;
  for (const auto& req : registry_->requests()) {
    if (req.target.rfind("/token?", 0) == 0) {
      token_asked = true;
      EXPECT_NE(req.target.find("service=fake"), std::string::npos) << req.target;
      EXPECT_NE(req.target.find("scope=repository%3Akiln%2Fapp%3Apull"), std::string::npos) << req.target;
    }
  }
  EXPECT_TRUE(token_asked);
}

TEST_F(RegistryProtocol, WrongPasswordAtTheTokenEndpoint) {
  BuildRequest req = request(":v1");
  req.credentials = "kiln:nope";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("authentication"), std::string::npos) << r.error().message;
}

TEST_F(RegistryProtocol, IndexResolvesToLinuxAmd64) {
  auto r = build(request(":multi"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->manifest_digest.str(), img_.manifest_digest);
  // By the index's digest: resolved once, then served from the cache without the registry.
  std::string index_digest = sha256_of(index_).str();
  auto by_digest = build(request("@" + index_digest));
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().message;
  EXPECT_TRUE(by_digest->cache_hit);
  BuildRequest offline = request("@" + index_digest);
  offline.reference = "docker://127.0.0.1:1/kiln/app@" + index_digest;
  auto off = build(offline);
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_EQ(off->manifest_digest.str(), img_.manifest_digest);
  offline.architecture = "arm64";  // the alias is per platform
  EXPECT_FALSE(build(offline).ok());
}

TEST_F(RegistryProtocol, ConflictingDigestHeaderIsRefused) {
  auto r = build(request(":liar"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("digest mismatch"), std::string::npos) << r.error().message;
}

TEST_F(RegistryProtocol, RedirectLoopIsBounded) {
  loop_redirects_ = true;
  auto r = build(request(":v1"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("too many redirects"), std::string::npos) << r.error().message;
}

TEST_F(RegistryProtocol, InterruptedBlobDownloadLeavesNothing) {
  blob_mode_ = BlobMode::kCutShort;
  auto r = build(request(":v1"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("blob"), std::string::npos) << r.error().message;
  expect_no_blobs_or_images();
}

TEST_F(RegistryProtocol, BlobLongerThanItsDescriptorIsRefused) {
  blob_mode_ = BlobMode::kTooLong;
  auto r = build(request(":v1"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larger than its descriptor"), std::string::npos) << r.error().message;
  expect_no_blobs_or_images();
}

TEST_F(RegistryProtocol, OversizedManifestIsRefused) {
  auto r = build(request(":huge"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larger than"), std::string::npos) << r.error().message;
}

TEST_F(RegistryProtocol, ConcurrentBuildsOfOneImage) {
  Result<BuiltImage> a = make_error("not run"), b = make_error("not run");
  std::thread ta([&] { a = build(request(":v1")); });
  std::thread tb([&] { b = build(request(":v1")); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->image_path, b->image_path);
  EXPECT_TRUE(a->cache_hit != b->cache_hit);  // the second waited on the lock and found it
}

TEST(RegistryAuth, ParsesChallenges) {
  auto c = parse_www_authenticate(R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull,push");
  auto b = parse_www_authenticate(R"(Basic realm="x \"quoted\"")");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->scheme, "basic");
  EXPECT_EQ(b->params["realm"], "x \"quoted\"");
  EXPECT_FALSE(parse_www_authenticate(R"(Bearer realm="unterminated)").ok());
  EXPECT_FALSE(parse_www_authenticate("").ok());
  EXPECT_FALSE(parse_www_authenticate(std::string(10000, 'a')).ok());
}

TEST(RegistryAuth, AuthFile) {
  TempDir t;
  write_file(t / "auth.json", R"({"auths":{"https://reg.example:5000/v1/":{"auth":"dTpw"},"other":{"auth":"eDp5"}}})");
  auto c = credentials_from_auth_file(t / "auth.json", "reg.example:5000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, "u:p");
  auto none = credentials_from_auth_file(t / "auth.json", "nowhere");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
  write_file(t / "bad.json", "[1,2");
  EXPECT_FALSE(credentials_from_auth_file(t / "bad.json", "x").ok());
}

TEST(RegistryAuth, AuthFileIgnoresWhatItDoesNotUseAndNamesTheBadField) {
  TempDir t;
  // Other tools' members and other registries' entries, however odd, are not read.
  write_file(t / "auth.json", R"({"credsStore":"desktop","auths":{"other":42,)"
                              R"("reg.example":{"identitytoken":"x"},"https://reg.example/v1/":{"auth":"dTpw"}}})");
  auto c = credentials_from_auth_file(t / "auth.json", "reg.example");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(*c, "u:p");
  write_file(t / "no-auths.json", R"({"credHelpers":{}})");
  auto none = credentials_from_auth_file(t / "no-auths.json", "reg.example");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
  // This registry's entry is read strictly, and the error names the field.
  write_file(t / "typed.json", R"({"auths":{"reg.example":{"auth":5}}})");
  auto typed = credentials_from_auth_file(t / "typed.json", "reg.example");
  ASSERT_FALSE(typed.ok());
  EXPECT_EQ(typed.error().message, "auth file " + (t / "typed.json") +
                                       ": auths.reg.example.auth: invalid type: expected a string, got integer");
  write_file(t / "array.json", "[]");
  auto array = credentials_from_auth_file(t / "array.json", "reg.example");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.error().message, "auth file " + (t / "array.json") + ": invalid type: expected an object, got array");
}

}  // namespace
}  // namespace kiln::rootfs

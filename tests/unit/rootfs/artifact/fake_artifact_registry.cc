// FakeArtifactRegistry: the chunk test image (chunk_test_image.h) published as kiln's artifact.
#include "tests/unit/rootfs/artifact/fake_artifact_registry.h"

#include <cstdio>

#include "common/percent_encode.h"

namespace kiln::rootfs::artifact::testing {

FakeArtifactRegistry::FakeArtifactRegistry() {
  image = sha256_of("an image manifest");
  chunked = chunks::testing::chunk_bytes(chunks::testing::mixed_image());
  layers.index.digest = chunked.image.index_digest;
  layers.index.size = chunked.image.index_bytes.size();
  layers.data.digest = sha256_of(chunked.data);
  layers.data.size = chunked.data.size();
  layers.image_size = chunked.image.index.image_size;
  layers.chunk_size = chunked.image.index.chunk_size;
  server_ = std::make_unique<rootfs::testing::FakeHttpServer>([this](const FakeRequest& r) { return handle(r); });
  route("/v2/", "{}");
  route(blob_target(layers.index.digest), chunked.image.index_bytes);
  Descriptor subject;
  subject.media_type = std::string(media_type::kOciManifest);
  subject.digest = image;
  subject.size = 17;
  serve_manifest(artifact_manifest_json(subject, layers));
}

void FakeArtifactRegistry::route(const std::string& target, std::string body, std::string content_type, int status) {
  FakeResponse r;
  r.status = status;
  r.body = std::move(body);
  if (!content_type.empty()) r.headers.emplace_back("Content-Type", content_type);
  std::lock_guard<std::mutex> l(mu_);
  routes_[target] = std::move(r);
}

void FakeArtifactRegistry::remove(const std::string& target) {
  std::lock_guard<std::mutex> l(mu_);
  routes_.erase(target);
}

void FakeArtifactRegistry::set_hook(std::function<std::optional<FakeResponse>(const FakeRequest&)> hook) {
  std::lock_guard<std::mutex> l(mu_);
  hook_ = std::move(hook);
}

void FakeArtifactRegistry::serve_manifest(const std::string& body, bool via_api) {
  manifest = body;
  manifest_digest = sha256_of(body);
  route("/v2/kiln/app/manifests/" + manifest_digest.str(), body, std::string(media_type::kOciManifest));
  auto index = add_referrer(std::nullopt, "", referrer_descriptor(manifest_digest, body.size(), layers));
  remove(referrers_target());
  remove(tag_target());
  route(via_api ? referrers_target() : tag_target(), **index, std::string(media_type::kOciIndex));
}

std::string FakeArtifactRegistry::referrers_target() const {
  return "/v2/kiln/app/referrers/" + image.str() + "?artifactType=" + percent_encode(kArtifactType);
}

std::string FakeArtifactRegistry::tag_target() const { return "/v2/kiln/app/manifests/" + referrers_tag(image); }

ImageReference FakeArtifactRegistry::ref() const {
  ImageReference r;
  r.registry = "127.0.0.1:" + std::to_string(server_->port());
  r.repository = "kiln/app";
  r.tag = "v1";
  return r;
}

SourceOptions FakeArtifactRegistry::options() const {
  SourceOptions o;
  o.tls_verify = false;  // plain HTTP
  return o;
}

FakeResponse FakeArtifactRegistry::handle(const FakeRequest& r) {
  std::function<std::optional<FakeResponse>(const FakeRequest&)> hook;
  {
    std::lock_guard<std::mutex> l(mu_);
    hook = hook_;
  }
  if (hook) {
    if (auto answer = hook(r)) return *answer;
  }
  // Range reads of the data blob (bytes=A-B only, as kiln asks).
  if (r.target == blob_target(layers.data.digest)) {
    auto range = r.headers.find("range");
    if (range == r.headers.end()) return {200, {}, chunked.data};
    unsigned long long a = 0, b = 0;
    if (std::sscanf(range->second.c_str(), "bytes=%llu-%llu", &a, &b) != 2 || b < a || b >= chunked.data.size()) {
      return {416, {}, ""};
    }
    std::string cr = "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(chunked.data.size());
    return {206, {{"Content-Range", cr}}, chunked.data.substr(a, b - a + 1)};
  }
  std::lock_guard<std::mutex> l(mu_);
  auto it = routes_.find(r.target);
  if (it == routes_.end()) return {404, {}, R"({"errors":[{"code":"NOT_FOUND","message":"no such thing"}]})"};
  return it->second;
}

}  // namespace kiln::rootfs::artifact::testing

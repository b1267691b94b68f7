// A fake registry (FakeHttpServer) serving one chunked image's artifact for the discovery and
// RegistryChunkSource tests: routes by request target, Range reads of the data blob, and hooks
// to serve hostile answers.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "rootfs-builder/artifact/chunk_artifact.h"
#include "rootfs-builder/reference/image_reference.h"
#include "rootfs-builder/source/image_source.h"
#include "tests/unit/rootfs/chunks/chunk_test_image.h"
#include "tests/unit/rootfs/support/fake_http_server.h"

namespace kiln::rootfs::artifact::testing {

using rootfs::testing::FakeRequest;
using rootfs::testing::FakeResponse;

class FakeArtifactRegistry {
 public:
  FakeArtifactRegistry();

  // The image manifest the artifact refers to, and the artifact's parts.
  Digest image;
  chunks::testing::Chunked chunked;
  ArtifactLayers layers;
  std::string manifest;  // the artifact manifest
  Digest manifest_digest;

  // Serves `body` for GET target (exact match, query included).
  void route(const std::string& target, std::string body, std::string content_type = {}, int status = 200);
  void remove(const std::string& target);
  // Called first for every request; an answer replaces the routes'.
  void set_hook(std::function<std::optional<FakeResponse>(const FakeRequest&)> hook);
  // Replaces the artifact manifest (and the referrers index entry pointing at it).
  void serve_manifest(const std::string& body, bool via_api = true);

  std::string referrers_target() const;
  std::string tag_target() const;
  std::string blob_target(const Digest& d) const { return "/v2/kiln/app/blobs/" + d.str(); }
  ImageReference ref() const;
  SourceOptions options() const;
  rootfs::testing::FakeHttpServer& server() { return *server_; }

 private:
  FakeResponse handle(const FakeRequest& r);

  std::mutex mu_;
  std::map<std::string, FakeResponse> routes_;
  std::function<std::optional<FakeResponse>(const FakeRequest&)> hook_;
  std::unique_ptr<rootfs::testing::FakeHttpServer> server_;
};

}  // namespace kiln::rootfs::artifact::testing

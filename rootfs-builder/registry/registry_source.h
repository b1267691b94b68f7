// Pulls from an OCI distribution-spec registry: manifests by tag or digest, blobs streamed into
// the verified blob store. Auth: anonymous, basic, and the bearer-token flow.
#pragma once

#include <string>

#include "rootfs-builder/registry/registry_client.h"
#include "rootfs-builder/source/image_source.h"

namespace kiln::rootfs {

class RegistrySource : public ImageSource {
 public:
  static Result<std::unique_ptr<ImageSource>> open(const ImageReference& ref, const SourceOptions& opts);

  Result<ManifestDoc> root_manifest() override;
  Result<ManifestDoc> manifest(const Descriptor& d) override;
  Status fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) override;
  std::unique_ptr<ImageSource> clone_for_download() override;

 private:
  explicit RegistrySource(std::unique_ptr<RegistryClient> client) : client_(std::move(client)) {}

  Result<HttpResponse> get(const std::string& path, const std::vector<std::string>& headers, size_t max_body,
                           const BodySink& sink = {}, std::string* sink_error = nullptr);
  Result<ManifestDoc> fetch_manifest(const std::string& ref, const std::string& expected_type);

  std::unique_ptr<RegistryClient> client_;
};

}  // namespace kiln::rootfs

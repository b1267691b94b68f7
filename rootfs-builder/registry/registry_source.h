// Pulls from an OCI distribution-spec registry: manifests by tag or digest, blobs streamed into
// the verified blob store. Auth: anonymous, basic, and the bearer-token flow.
#pragma once

#include <string>

#include "rootfs-builder/registry/http_client.h"
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
  RegistrySource(ImageReference ref, SourceOptions opts);

  // GET base_+path: answers one 401 by authenticating and retrying, follows up to 5 redirects
  // and sends credentials only to the registry's own origin.
  Result<HttpResponse> get(const std::string& path, const std::vector<std::string>& headers,
                           size_t max_body, const std::function<bool(const char*, size_t)>& sink = {},
                           std::string* sink_error = nullptr);
  Status authenticate(const HttpResponse& challenge);
  Result<ManifestDoc> fetch_manifest(const std::string& ref, const std::string& expected_type);

  ImageReference ref_;
  SourceOptions opts_;
  std::string creds_;
  std::string base_;    // "https://host:port"
  std::string origin_;  // url_origin(base_)
  std::string auth_header_;
  HttpClient http_;
};

// A readable message from a registry error response (distribution-spec "Error Codes").
std::string registry_error_message(const HttpResponse& r);

}  // namespace kiln::rootfs

// Pushes blobs and manifests into one repository (distribution-spec "Pushing blobs": POST then
// a monolithic PUT ?digest=, skipped when a HEAD finds the blob; "Pushing manifests"), over the
// same RegistryClient (auth, credentials) as pulls.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "rootfs-builder/digest/digest.h"
#include "rootfs-builder/registry/registry_client.h"

namespace kiln::rootfs {

struct PushedManifest {
  Digest digest;  // sha256 of the body (checked against the registry's Docker-Content-Digest)
  // The registry answered with an OCI-Subject header: it indexes `subject` itself (referrers
  // API), so the pusher need not maintain the tag-schema fallback (distribution-spec 1.1).
  bool subject_indexed = false;
};

class RegistryPusher {
 public:
  // Opens REF's registry asking for push access. Errors as RegistryClient::open.
  static Result<std::unique_ptr<RegistryPusher>> open(const ImageReference& ref, const SourceOptions& opts);
  explicit RegistryPusher(std::unique_ptr<RegistryClient> client) : client_(std::move(client)) {}

  RegistryClient& client() { return *client_; }

  // HEAD /v2/NAME/blobs/D: true for 200, false for 404, an error for anything else.
  Result<bool> has_blob(const Digest& digest);
  // Uploads `body` as blob `digest` unless the registry has it; true when it was uploaded.
  // Errors: "pushing blob D: HTTP N ..." (with the registry's error code, e.g. DIGEST_INVALID).
  Result<bool> push_blob(const Digest& digest, const RequestBody& body);
  // PUT /v2/NAME/manifests/REFERENCE (a tag, or the body's digest) with Content-Type media_type.
  Result<PushedManifest> push_manifest(const std::string& reference, std::string_view media_type,
                                       const std::string& body);

 private:
  std::unique_ptr<RegistryClient> client_;
};

}  // namespace kiln::rootfs

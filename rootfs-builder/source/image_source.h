// Where image documents and blobs come from: a registry, an OCI layout directory, or an
// oci-archive / docker-archive tarball. Every byte handed out is verified against its digest.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "rootfs-builder/digest/blob_store.h"
#include "rootfs-builder/oci/image_documents.h"
#include "rootfs-builder/reference/image_reference.h"

namespace kiln::rootfs {

struct ManifestDoc {
  std::string body;
  std::string media_type;  // from the transport (Content-Type / descriptor); may be empty
  Digest digest;           // sha256 of body
};

using ByteProgress = std::function<void(uint64_t done)>;

struct SourceOptions {
  bool tls_verify = true;
  std::string credentials;  // "user:password", overrides the auth file
  std::string auth_file;    // Docker-style config.json / containers auth.json
  std::string ca_file;      // extra CA bundle for registry TLS
  std::string work_dir;     // scratch space for archive sources (removed by the caller)
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The document the reference names (manifest or index), digest-verified when the reference
  // carries a digest.
  virtual Result<ManifestDoc> root_manifest() = 0;
  // A manifest named by an index entry, verified against the descriptor.
  virtual Result<ManifestDoc> manifest(const Descriptor& d) = 0;
  // Puts the blob, verified, into the store (no-op when already there).
  virtual Status fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) = 0;
  // Local sources hand out layer blobs in place (the caller verifies them while reading),
  // which saves copying them into the store. Remote sources answer nullopt.
  virtual std::optional<Result<UniqueFd>> open_local_blob(const Descriptor&) { return std::nullopt; }
  // A second handle for downloading blobs on another thread (sharing credentials, not
  // connections); nullptr when the source cannot download in parallel.
  virtual std::unique_ptr<ImageSource> clone_for_download() { return nullptr; }
};

Result<std::unique_ptr<ImageSource>> open_source(const ImageReference& ref, const SourceOptions& opts);

// Checks a fetched document against its descriptor (size and digest).
Status verify_document(std::string_view body, const Descriptor& d);

}  // namespace kiln::rootfs

// Publishing a chunked image next to its image: pushes `kiln-rootfs chunk`'s output as kiln's
// OCI artifact into the image's repository (docs/lazy-images.md), with the image manifest as
// its subject, and keeps the referrers tag-schema fallback up to date for registries without
// the referrers API.
#pragma once

#include <string>

#include "common/result.h"
#include "rootfs-builder/oci/image_documents.h"
#include "rootfs-builder/registry/registry_pusher.h"

namespace kiln::rootfs::artifact {

struct PushedArtifact {
  Digest artifact;                    // the artifact manifest
  Digest index;                       // the chunk index (the pinned digest)
  Descriptor subject;                 // the image manifest it refers to
  uint64_t uploaded_bytes = 0;        // blobs the registry did not have yet
  bool fallback_tag_updated = false;  // the sha256-<hex> index was written (false: already listed,
                                      // or the registry indexes referrers itself: OCI-Subject)
};

// Pushes CHUNK_DIR/chunk-index and CHUNK_DIR/chunk-data (the index is parsed first and must
// describe the data file's size) as the artifact of manifest `subject` of the pusher's
// repository (fetched to learn its media type and size). Idempotent: blobs present are skipped,
// the manifest is the same bytes, the fallback index lists it once. Errors: reading or parsing
// the chunk files, "image manifest D not found in NAME", the registry's (pushing blob/manifest ...).
Result<PushedArtifact> push_artifact(RegistryPusher& pusher, const Digest& subject, const std::string& chunk_dir);

}  // namespace kiln::rootfs::artifact

// Finding an image's chunked rootfs in its registry (docs/lazy-images.md "Published next to the
// image"): the referrers API, else the tag-schema fallback; then the artifact manifest and the
// chunk index, each verified. What kilnd calls before serving an image lazily.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "rootfs-builder/chunks/chunk_index.h"
#include "rootfs-builder/oci/image_documents.h"
#include "rootfs-builder/reference/image_reference.h"
#include "rootfs-builder/registry/registry_client.h"

namespace kiln::rootfs::artifact {

struct DiscoveredArtifact {
  Digest artifact;                 // the artifact manifest
  Digest index_digest;             // the chunk index's: what a function pins
  chunks::ChunkIndex index;        // parsed (chunks::parse), and consistent with the manifest
  Descriptor data;                 // the chunk data blob (RegistryChunkSource reads ranges of it)
  bool via_referrers_api = false;  // false: found through the fallback tag
};

struct DiscoveryOptions {
  std::chrono::milliseconds timeout{30000};  // for the whole discovery, all requests included
};

// The kiln artifact of image manifest `image` in REF's repository (REF's tag/digest are not
// used). nullopt: the registry lists no kiln artifact for it (referrers API answered without
// one, or 404 and no fallback tag): build the image locally. An error: the registry could not
// be asked (unreachable, auth, timeout, an unexpected status) or served something wrong:
//  - a referrers index that is not an OCI image index or is malformed ("index: ..."),
//  - a listed artifact it does not have ("artifact manifest D not found"), or whose bytes are
//    not its digest or size ("artifact manifest D: ..."),
//  - an artifact manifest that check_artifact_manifest refuses (chunk_artifact.h),
//  - a chunk index blob that is too large, not its digest (get_small_blob), or that
//    chunks::parse refuses ("chunk index: ..."),
//  - an index that disagrees with the manifest ("chunk index says ..., the manifest says ...").
// Every document is capped (kMaxDocumentSize, chunks::kMaxIndexBytes) and parsed without throwing.
Result<std::optional<DiscoveredArtifact>> discover_artifact(const ImageReference& ref, const Digest& image,
                                                            const SourceOptions& opts,
                                                            const DiscoveryOptions& options = {});
// The same over an open client (its repository).
Result<std::optional<DiscoveredArtifact>> discover_artifact(RegistryClient& client, const Digest& image,
                                                            Deadline deadline);

}  // namespace kiln::rootfs::artifact

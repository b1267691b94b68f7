// The documents of kiln's chunked-rootfs OCI artifact (docs/lazy-images.md): the artifact
// manifest (image-spec 1.1 artifact usage, `subject` = the image manifest) and the referrers
// index that lists it (the referrers API answer, or the tag-schema fallback the pusher keeps).
// Pure functions over untrusted bytes: strict, bounded (kMaxDocumentSize), never throwing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "rootfs-builder/oci/image_documents.h"

namespace kiln::rootfs::artifact {

inline constexpr std::string_view kArtifactType = "application/vnd.kiln.chunked-rootfs.v1";
inline constexpr std::string_view kIndexMediaType = "application/vnd.kiln.chunk-index.v1";
inline constexpr std::string_view kDataMediaType = "application/vnd.kiln.chunk-data.v1+zstd";
inline constexpr std::string_view kImageSizeAnnotation = "dev.kiln.image.size";
inline constexpr std::string_view kChunkSizeAnnotation = "dev.kiln.chunk.size";
// The config of an artifact (image-spec manifest.md "Guidance for an Empty Descriptor").
inline constexpr std::string_view kEmptyJson = "{}";
Descriptor empty_descriptor();

// What the artifact manifest says about the chunked image.
struct ArtifactLayers {
  Descriptor index;         // layers[0]: the chunk index; its digest is the one a function pins
  Descriptor data;          // layers[1]: the chunk data (zstd frames at the index's offsets)
  uint64_t image_size = 0;  // annotation dev.kiln.image.size
  uint32_t chunk_size = 0;  // annotation dev.kiln.chunk.size
};

// The artifact manifest (canonical JSON: sorted keys, no whitespace; same inputs, same digest).
std::string artifact_manifest_json(const Descriptor& subject, const ArtifactLayers& layers);

// Checks an artifact manifest fetched for image manifest `subject`. Errors:
//  "manifest: ..." (not an OCI image manifest, a bad field: parse_artifact_manifest),
//  "artifactType 'X' is not kiln's", "config is not the empty descriptor",
//  "want 2 layers, got N", "layers[0] media type 'X' is not the chunk index's",
//  "layers[1] media type 'X' is not the chunk data's", "chunk index of N bytes (limit M)",
//  "no subject", "subject D is not the image D'", "annotation dev.kiln.image.size ..." /
//  "annotation dev.kiln.chunk.size ..." (missing or not a number in range).
Result<ArtifactLayers> check_artifact_manifest(std::string_view body, const Digest& subject);

// The referrers index entry of an artifact manifest (descriptor + artifactType + annotations).
Descriptor referrer_descriptor(const Digest& manifest, uint64_t size, const ArtifactLayers& layers);

// The kiln artifact listed in a referrers index (an OCI image index: the referrers API answer or
// the fallback tag): the last entry with kArtifactType (the pusher appends, so the newest);
// nullopt when there is none. `content_type` is the transport's (may be empty). Errors:
// "index: ..." (not an OCI image index, malformed), "referrer D: media type 'X' is not an OCI
// image manifest", "referrer D: N bytes (limit M)".
Result<std::optional<Descriptor>> pick_artifact(std::string_view index_body, std::string_view content_type);

// The fallback index (distribution-spec 1.1 "Referrers Tag Schema") with `entry` added: a new
// index when `existing` is nullopt, nullopt when `existing` already lists entry's digest.
// Other entries are kept byte for byte as JSON values. Errors: those of pick_artifact's index.
Result<std::optional<std::string>> add_referrer(const std::optional<std::string>& existing,
                                                std::string_view content_type, const Descriptor& entry);

// "sha256-<hex>": the fallback tag of the referrers of `subject`.
std::string referrers_tag(const Digest& subject);

}  // namespace kiln::rootfs::artifact

// OCI image-spec / Docker schema2 documents: descriptors, manifests, indexes (manifest lists)
// and the image config. Parsers are pure functions that validate hostile input and never throw.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "rootfs-builder/digest/digest.h"

namespace kiln::rootfs {

namespace media_type {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";  // "{}"
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
// The Accept header for manifest requests (distribution-spec "Pulling manifests").
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media_type

// Documents (manifests, indexes, configs) larger than this are refused.
inline constexpr size_t kMaxDocumentSize = 4 << 20;

// image-spec descriptor.md
struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::string os, architecture, variant;  // from "platform" (index entries only)
  std::string ref_name;  // annotation org.opencontainers.image.ref.name (index entries only)
  std::string artifact_type;  // "artifactType" (image-spec 1.1; referrers index entries)
  std::map<std::string, std::string> annotations;  // string values only (others are skipped)
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

// An image manifest used as an artifact (image-spec 1.1 manifest.md "Guidelines for Artifact
// Usage"): any config and layer media types, an optional subject, annotations.
struct ArtifactManifest {
  std::string media_type;  // always kOciManifest
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

// The parts of the image config (image-spec config.md) a function launch needs.
struct ImageConfig {
  std::string os, architecture;
  std::vector<std::string> entrypoint, cmd, env;
  std::string working_dir, user;
  std::vector<std::string> exposed_ports;  // "9000/tcp", sorted
  std::map<std::string, std::string> labels;  // config.Labels (string values only; others skipped)
  std::vector<Digest> diff_ids;
};

enum class DocumentKind { kManifest, kIndex };
enum class LayerCompression { kNone, kGzip, kZstd };

// Works out what a manifest-ish document is. The media type comes from the document's own
// "mediaType" and/or the transport's (Content-Type or descriptor); a document with neither, or
// with two that disagree, is rejected. Docker schema1 is refused with a clear message.
Result<DocumentKind> classify_document(std::string_view body, std::string_view transport_type,
                                       std::string* media_type_out);

Result<Manifest> parse_manifest(std::string_view body, std::string_view media_type);
Result<Index> parse_index(std::string_view body, std::string_view media_type);
// An OCI image manifest (mediaType must be kOciManifest, schemaVersion 2) read as an artifact.
// Errors name the field ("manifest: layers[1].digest: ...").
Result<ArtifactManifest> parse_artifact_manifest(std::string_view body);
Result<ImageConfig> parse_config(std::string_view body);

// The manifest for os/arch from an index (image-spec image-index.md "platform").
Result<Descriptor> select_platform(const Index& index, std::string_view os, std::string_view arch);

Result<LayerCompression> layer_compression(std::string_view layer_media_type);

// The saved launch config: {"Entrypoint", "Cmd", "Env", "WorkingDir", "User", "ExposedPorts"}
// plus the manifest and config digests.
std::string image_config_json(const ImageConfig& c, const Digest& manifest, const Digest& config);
Result<ImageConfig> parse_saved_config(std::string_view text);

}  // namespace kiln::rootfs

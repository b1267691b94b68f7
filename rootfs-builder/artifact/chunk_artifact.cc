// kiln's chunked-rootfs artifact documents: image-spec 1.1 manifest.md (artifactType, subject,
// the empty descriptor), image-index.md, distribution-spec 1.1 "Listing Referrers" and its
// "Referrers Tag Schema" fallback. Reading goes through oci/image_documents (kiln_json).
#include "rootfs-builder/artifact/chunk_artifact.h"

#include <charconv>

#include "common/json/field_reader.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::rootfs::artifact {

namespace {

using kiln::json::Json;

Json descriptor_json(const Descriptor& d) {
  Json j = Json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

std::map<std::string, std::string> size_annotations(const ArtifactLayers& l) {
  return {{std::string(kImageSizeAnnotation), std::to_string(l.image_size)},
          {std::string(kChunkSizeAnnotation), std::to_string(l.chunk_size)}};
}

Result<uint64_t> annotation_number(const std::map<std::string, std::string>& a, std::string_view key, uint64_t lo,
                                   uint64_t hi) {
  auto it = a.find(std::string(key));
  if (it == a.end()) return make_error("annotation " + std::string(key) + " is missing");
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v < lo || v > hi) {
    return make_error("annotation " + std::string(key) + " '" + s.substr(0, 40) + "' is not a number from " +
                      std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

// A referrers index must be an OCI image index (distribution-spec "Listing Referrers").
Result<Index> read_referrers_index(std::string_view body, std::string_view content_type) {
  std::string mt;
  auto kind = classify_document(body, content_type, &mt);
  if (!kind.ok()) return kind.error().wrap("index");
  if (*kind != DocumentKind::kIndex || mt != media_type::kOciIndex) {
    return make_error("index: media type '" + mt + "' is not an OCI image index");
  }
  return parse_index(body, mt);
}

}  // namespace

Descriptor empty_descriptor() {
  Descriptor d;
  d.media_type = std::string(media_type::kOciEmpty);
  d.digest = sha256_of(kEmptyJson);
  d.size = kEmptyJson.size();
  return d;
}

std::string referrers_tag(const Digest& subject) { return "sha256-" + subject.hex; }

std::string artifact_manifest_json(const Descriptor& subject, const ArtifactLayers& layers) {
  Json j = Json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = media_type::kOciManifest;
  j["artifactType"] = kArtifactType;
  j["config"] = descriptor_json(empty_descriptor());
  Descriptor index = layers.index, data = layers.data;
  index.media_type = std::string(kIndexMediaType);
  data.media_type = std::string(kDataMediaType);
  j["layers"] = Json::array({descriptor_json(index), descriptor_json(data)});
  Descriptor s;
  s.media_type = subject.media_type;
  s.digest = subject.digest;
  s.size = subject.size;
  j["subject"] = descriptor_json(s);
  j["annotations"] = size_annotations(layers);
  return kiln::json::dump(j);
}

Result<ArtifactLayers> check_artifact_manifest(std::string_view body, const Digest& subject) {
  KILN_ASSIGN_OR_RETURN(ArtifactManifest m, parse_artifact_manifest(body));
  if (m.artifact_type != kArtifactType) return make_error("artifactType '" + m.artifact_type + "' is not kiln's");
  const Descriptor empty = empty_descriptor();
  if (m.config.media_type != empty.media_type || m.config.digest != empty.digest || m.config.size != empty.size) {
    return make_error("config is not the empty descriptor");
  }
  if (m.layers.size() != 2) return make_error("want 2 layers, got " + std::to_string(m.layers.size()));
  ArtifactLayers out;
  out.index = m.layers[0];
  out.data = m.layers[1];
  if (out.index.media_type != kIndexMediaType) {
    return make_error("layers[0] media type '" + out.index.media_type + "' is not the chunk index's");
  }
  if (out.data.media_type != kDataMediaType) {
    return make_error("layers[1] media type '" + out.data.media_type + "' is not the chunk data's");
  }
  if (out.index.size < chunks::kHeaderBytes || out.index.size > chunks::kMaxIndexBytes) {
    return make_error("chunk index of " + std::to_string(out.index.size) + " bytes (limit " +
                      std::to_string(chunks::kMaxIndexBytes) + ")");
  }
  if (!m.subject) return make_error("no subject");
  if (m.subject->digest != subject) {
    return make_error("subject " + m.subject->digest.str() + " is not the image " + subject.str());
  }
  KILN_ASSIGN_OR_RETURN(out.image_size,
                        annotation_number(m.annotations, kImageSizeAnnotation, 1, chunks::kMaxImageSize));
  KILN_ASSIGN_OR_RETURN(uint64_t cs, annotation_number(m.annotations, kChunkSizeAnnotation, chunks::kMinChunkSize,
                                                       chunks::kMaxChunkSize));
  out.chunk_size = static_cast<uint32_t>(cs);
  return out;
}

Descriptor referrer_descriptor(const Digest& manifest, uint64_t size, const ArtifactLayers& layers) {
  Descriptor d;
  d.media_type = std::string(media_type::kOciManifest);
  d.digest = manifest;
  d.size = size;
  d.artifact_type = std::string(kArtifactType);
  d.annotations = size_annotations(layers);
  return d;
}

Result<std::optional<Descriptor>> pick_artifact(std::string_view index_body, std::string_view content_type) {
  KILN_ASSIGN_OR_RETURN(Index idx, read_referrers_index(index_body, content_type));
  for (auto it = idx.manifests.rbegin(); it != idx.manifests.rend(); ++it) {
    if (it->artifact_type != kArtifactType) continue;
    if (it->media_type != media_type::kOciManifest) {
      return make_error("referrer " + it->digest.str() + ": media type '" + it->media_type +
                        "' is not an OCI image manifest");
    }
    if (it->size > kMaxDocumentSize) {
      return make_error("referrer " + it->digest.str() + ": " + std::to_string(it->size) + " bytes (limit " +
                        std::to_string(kMaxDocumentSize) + ")");
    }
    return std::optional<Descriptor>(*it);
  }
  return std::optional<Descriptor>();
}

Result<std::optional<std::string>> add_referrer(const std::optional<std::string>& existing,
                                                std::string_view content_type, const Descriptor& entry) {
  Json j;
  if (existing) {
    KILN_ASSIGN_OR_RETURN(Index idx, read_referrers_index(*existing, content_type));
    for (const auto& d : idx.manifests) {
      if (d.digest == entry.digest) return std::optional<std::string>();
    }
    KILN_ASSIGN_OR_RETURN(j, kiln::json::parse(*existing));  // valid: read_referrers_index parsed it
    j["mediaType"] = media_type::kOciIndex;  // it may have come from the transport only
  } else {
    j = Json::object();
    j["schemaVersion"] = 2;
    j["mediaType"] = media_type::kOciIndex;
    j["manifests"] = Json::array();
  }
  j["manifests"].push_back(descriptor_json(entry));
  return std::optional<std::string>(kiln::json::dump(j));
}

}  // namespace kiln::rootfs::artifact

// Discovery per distribution-spec 1.1 "Listing Referrers" (GET /v2/NAME/referrers/D with the
// artifactType filter; 404 = unsupported -> the "Referrers Tag Schema" fallback tag).
#include "rootfs-builder/artifact/artifact_discovery.h"

#include "common/percent_encode.h"
#include "rootfs-builder/artifact/chunk_artifact.h"

namespace kiln::rootfs::artifact {

namespace {

struct Referrers {
  std::string body, content_type;
  bool via_api = false;
};

// The referrers index of `image`, or nullopt when the registry has none.
Result<std::optional<Referrers>> fetch_referrers(RegistryClient& client, const Digest& image, Deadline deadline) {
  RegistryCall c;
  c.target = client.repo_path() + "/referrers/" + image.str() + "?artifactType=" + percent_encode(kArtifactType);
  c.headers = {"Accept: " + std::string(media_type::kOciIndex)};
  c.max_body = kMaxDocumentSize;
  c.deadline = deadline;
  KILN_ASSIGN_OR_RETURN(HttpResponse r, client.call(c));
  Referrers out;
  if (r.status == 200) {
    out.body = std::move(r.body);
    if (auto ct = r.headers.find("content-type"); ct != r.headers.end()) out.content_type = ct->second;
    out.via_api = true;
    return std::optional<Referrers>(std::move(out));
  }
  if (r.status != 404) return make_error("referrers of " + image.str() + ": " + registry_error_message(r));
  KILN_ASSIGN_OR_RETURN(std::optional<ManifestDoc> tag,
                        get_manifest(client, referrers_tag(image), deadline, media_type::kOciIndex));
  if (!tag) return std::optional<Referrers>();
  out.body = std::move(tag->body);
  out.content_type = std::move(tag->media_type);
  return std::optional<Referrers>(std::move(out));
}

}  // namespace

Result<std::optional<DiscoveredArtifact>> discover_artifact(RegistryClient& client, const Digest& image,
                                                            Deadline deadline) {
  KILN_ASSIGN_OR_RETURN(std::optional<Referrers> referrers, fetch_referrers(client, image, deadline));
  if (!referrers) return std::optional<DiscoveredArtifact>();
  KILN_ASSIGN_OR_RETURN(std::optional<Descriptor> picked, pick_artifact(referrers->body, referrers->content_type));
  if (!picked) return std::optional<DiscoveredArtifact>();

  DiscoveredArtifact out;
  out.artifact = picked->digest;
  out.via_referrers_api = referrers->via_api;
  const std::string what = "artifact manifest " + picked->digest.str();
  KILN_ASSIGN_OR_RETURN(std::optional<ManifestDoc> doc,
                        get_manifest(client, picked->digest.str(), deadline, media_type::kOciManifest));
  if (!doc) return make_error(what + " not found in " + client.repository());
  if (Status s = verify_document(doc->body, *picked); !s.ok()) return s.error().wrap(what);
  auto layers = check_artifact_manifest(doc->body, image);
  if (!layers.ok()) return layers.error().wrap(what);

  auto index_bytes = get_small_blob(client, layers->index, chunks::kMaxIndexBytes, deadline);
  if (!index_bytes.ok()) return index_bytes.error().wrap("chunk index");
  auto index = chunks::parse(*index_bytes);
  if (!index.ok()) return index.error().wrap("chunk index " + layers->index.digest.str());
  auto disagree = [&](const char* field, uint64_t in_index, uint64_t in_manifest) {
    return make_error("chunk index says " + std::string(field) + " " + std::to_string(in_index) +
                      ", the manifest says " + std::to_string(in_manifest));
  };
  if (index->data_size != layers->data.size) return disagree("data size", index->data_size, layers->data.size);
  if (index->image_size != layers->image_size) return disagree("image size", index->image_size, layers->image_size);
  if (index->chunk_size != layers->chunk_size) return disagree("chunk size", index->chunk_size, layers->chunk_size);
  out.index_digest = layers->index.digest;
  out.index = std::move(index).value();
  out.data = layers->data;
  return std::optional<DiscoveredArtifact>(std::move(out));
}

Result<std::optional<DiscoveredArtifact>> discover_artifact(const ImageReference& ref, const Digest& image,
                                                            const SourceOptions& opts,
                                                            const DiscoveryOptions& options) {
  const Deadline deadline = deadline_after(options.timeout);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> client,
                        RegistryClient::open(ref, opts, RegistryAccess::kPull, deadline));
  return discover_artifact(*client, image, deadline);
}

}  // namespace kiln::rootfs::artifact
